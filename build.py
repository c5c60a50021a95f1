# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the Blender extension zip: ``python build.py`` writes
``dist/brenda-<version>-python<X.Y>.zip``, for the Blenders that run this Python.

Standard library only. Stages ``brenda_addon/`` as the extension's root and, as its ``shared``
subpackage, the modules of ``shared/`` the add-on imports (followed through their own imports,
those inside functions included; never the command-line front-ends), bundles boto3,
blender-asset-tracer and the pure-Python packages they need as wheels (the exact versions
installed here, repacked from this environment, so the build needs no network), writes the wheel
list into the staged copy of ``blender_manifest.toml`` only, zips the stage and checks the zip.
Packages Blender ships itself (urllib3 and the like) are not bundled.

Blender 4.2 to 5.0 run Python 3.11, 5.1 and newer Python 3.13, and the bundled wheels are those
installed for this Python: run it with each Python for each zip. The staged manifest's
``blender_version_min`` and ``blender_version_max`` say which Blenders take it, so a Blender
refuses the other zip.
"""

from __future__ import annotations

import ast
import re
import shutil
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent
STAGE = ROOT / "build" / "extension"
DIST = ROOT / "dist"
MANIFEST = "blender_manifest.toml"
SKIPPED_PARTS = ("__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "tests")
SKIPPED_SUFFIXES = (".pyc", ".pyo")
PACKAGE_DATA = {"shared/tasks/task.py": ("shared/tasks/task_scripts",)}
"""Data files a staged module reads, by the module."""
NEVER_SHIPPED = ("paramiko", "moto")
"""What the add-on must never load: a module importing one of these must not be in the zip."""
BUNDLED_ROOTS = ("boto3", "blender-asset-tracer")
SHIPPED_WITH_BLENDER = {
    "urllib3",
    "numpy",
    "requests",
    "certifi",
    "idna",
    "charset-normalizer",
    "zstandard",
}


# Python (major.minor) -> the Blenders that run it: first supported, first not supported.
BLENDERS_OF_PYTHON = {"3.11": ("4.2.0", "5.1.0"), "3.13": ("5.1.0", None)}
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


class BuildError(Exception):
    pass


def blender_range() -> tuple[str, str | None]:
    """The Blender versions whose Python is this one."""
    if PYTHON not in BLENDERS_OF_PYTHON:
        known = " or ".join(BLENDERS_OF_PYTHON)
        raise BuildError(f"Python {PYTHON} is no Blender's Python: run build.py with {known}.")
    return BLENDERS_OF_PYTHON[PYTHON]


def _wanted(path: Path) -> bool:
    return not any(part in SKIPPED_PARTS for part in path.parts) and (
        path.suffix not in SKIPPED_SUFFIXES
    )


def read_manifest(path: Path) -> dict[str, object]:
    try:
        manifest = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise BuildError(f"{path} cannot be read as TOML: {error}") from error
    for key in ("schema_version", "id", "version", "name", "type", "blender_version_min"):
        if key not in manifest:
            raise BuildError(f"{path} lacks the required key '{key}'.")
    return manifest


def _imported(path: Path, module: str) -> set[str]:
    """The absolute names ``path`` (the module ``module``) imports, at any depth of its code."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _module_path(module: str) -> Path | None:
    """The file of ``module`` (``shared...``) in the source tree, or None if it is not one."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def addon_files() -> list[Path]:
    """The files of ``shared/`` the add-on needs: every module it imports, their imports in
    turn, the packages holding them and the data files they read."""
    wanted: set[Path] = set()
    pending = [
        (path, "brenda_addon." + ".".join(path.relative_to(ROOT / "brenda_addon").parts)[:-3])
        for path in (ROOT / "brenda_addon").glob("*.py")
    ]
    while pending:
        path, module = pending.pop()
        for imported in _imported(path, module.removesuffix(".__init__")):
            name = imported.removeprefix("brenda_addon.")
            if not name.startswith("shared"):
                continue
            found = _module_path(name)
            if found is None or found in wanted:
                continue
            wanted.add(found)
            pending.append((found, name + (".__init__" if found.name == "__init__.py" else "")))
    for path in list(wanted):
        for parent in path.relative_to(ROOT).parents:
            if parent.parts and (ROOT / parent / "__init__.py").is_file():
                wanted.add(ROOT / parent / "__init__.py")
    for module, folders in PACKAGE_DATA.items():
        if ROOT / module in wanted:
            wanted.update(path for folder in folders for path in (ROOT / folder).rglob("*"))
    wanted.add(ROOT / "shared" / "py.typed")
    return sorted(path for path in wanted if path.is_file() and _wanted(path.relative_to(ROOT)))


def stage() -> Path:
    """Copy the extension's files into a clean staging folder."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    copies = [
        (path, STAGE / path.relative_to(ROOT / "brenda_addon"))
        for path in sorted((ROOT / "brenda_addon").rglob("*"))
        if path.is_file() and _wanted(path.relative_to(ROOT))
    ]
    copies += [(path, STAGE / path.relative_to(ROOT)) for path in addon_files()]
    for source, destination in copies:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
    write_staged_manifest(STAGE, bundle_wheels(STAGE))
    return STAGE


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_closure(roots: tuple[str, ...]) -> list[metadata.Distribution]:
    """The installed distributions ``roots`` need (no extras), less what Blender ships."""
    found: dict[str, metadata.Distribution] = {}
    pending = list(roots)
    while pending:
        name = _canonical(pending.pop())
        if name in found or name in SHIPPED_WITH_BLENDER:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError as error:
            raise BuildError(f"{name} is not installed: pip install -e '.[test]' first.") from error
        found[name] = distribution
        for requirement in distribution.requires or []:
            if "extra ==" in requirement:
                continue
            needed = re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0]
            # pip installed what a marker asks for on this Python: one not installed is not.
            if ";" in requirement and not _installed(needed):
                continue
            pending.append(needed)
    return sorted(found.values(), key=lambda item: _canonical(item.metadata["Name"]))


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def repack_wheel(distribution: metadata.Distribution, folder: Path) -> Path:
    """A wheel of an installed pure-Python distribution, made from its installed files."""
    name = re.sub(r"[-.]+", "_", distribution.metadata["Name"])
    wheel = folder / f"{name}-{distribution.version}-py3-none-any.whl"
    files = [item for item in distribution.files or [] if not str(item).startswith("..")]
    info = next((item for item in files if item.name == "WHEEL"), None)
    if info is None or "Root-Is-Purelib: true" not in (info.read_text() or ""):
        raise BuildError(f"{name} is not a pure-Python package and cannot be bundled.")
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for item in files:
            if "__pycache__" not in item.parts:
                bundle.write(item.locate(), item.as_posix())
    return wheel


def bundle_wheels(staged: Path) -> list[str]:
    folder = staged / "wheels"
    folder.mkdir()
    return [
        f"./wheels/{repack_wheel(item, folder).name}" for item in dependency_closure(BUNDLED_ROOTS)
    ]


def write_staged_manifest(staged: Path, wheels: list[str]) -> None:
    """The manifest with the wheel list and this Python's Blenders, placed before the first
    table so they stay top-level."""
    lowest, beyond = blender_range()
    lines = [
        f'blender_version_min = "{lowest}"' if line.startswith("blender_version_min") else line
        for line in (ROOT / MANIFEST).read_text(encoding="utf-8").splitlines()
    ]
    first_table = next(index for index, line in enumerate(lines) if line.startswith("["))
    listed = "wheels = [\n" + "".join(f'    "{wheel}",\n' for wheel in wheels) + "]\n"
    if beyond is not None:
        listed = f'blender_version_max = "{beyond}"\n' + listed
    lines.insert(first_table, listed)
    (staged / MANIFEST).write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_zip(staged: Path, version: str) -> Path:
    DIST.mkdir(exist_ok=True)
    archive = DIST / f"brenda-{version}-python{PYTHON}.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(staged.rglob("*")):
            if path.is_file():
                bundle.write(path, path.relative_to(staged).as_posix())
    return archive


def check_zip(archive: Path) -> list[str]:
    """The zip's names, after checking it holds a manifest, the add-on and nothing stray."""
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        if MANIFEST not in names or "__init__.py" not in names:
            raise BuildError(f"{archive} lacks {MANIFEST} or __init__.py at its top level.")
        manifest = tomllib.loads(bundle.read(MANIFEST).decode("utf-8"))
        absent = [wheel for wheel in manifest.get("wheels", []) if wheel[2:] not in names]
        if absent:
            raise BuildError(f"{archive} lists wheels it does not hold: {', '.join(absent)}")
        stray = [name for name in names if not _wanted(Path(name))]
        stray += [name for name in names if name.startswith("shared/cli/")]
        stray += [
            name
            for name in names
            if name.endswith(".py")
            and not name.startswith("wheels/")
            and any(
                imported.split(".")[0] in NEVER_SHIPPED
                for imported in _imported_text(bundle.read(name).decode("utf-8"))
            )
        ]
    if stray:
        raise BuildError(f"{archive} holds files that must not ship: {', '.join(stray)}")
    return names


def _imported_text(source: str) -> set[str]:
    """The absolute modules a source text imports (relative imports left out)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
    return names


def build() -> Path:
    manifest = read_manifest(ROOT / MANIFEST)
    blender_range()
    archive = make_zip(stage(), str(manifest["version"]))
    check_zip(archive)
    return archive


def main() -> int:
    try:
        archive = build()
    except BuildError as error:
        print(f"build.py: {error}", file=sys.stderr)
        return 1
    print(f"Built {archive.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
