# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the Blender extension zip: ``python build.py`` writes ``dist/brenda-<version>.zip``.

Standard library only. Stages ``brenda_addon/`` as the extension's root and ``shared/`` as its
``shared`` subpackage, copies ``blender_manifest.toml``, zips the stage and checks the zip.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
STAGE = ROOT / "build" / "extension"
DIST = ROOT / "dist"
MANIFEST = "blender_manifest.toml"
SKIPPED_PARTS = ("__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "tests")
SKIPPED_SUFFIXES = (".pyc", ".pyo")


class BuildError(Exception):
    pass


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


def stage() -> Path:
    """Copy the extension's files into a clean staging folder."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    for source, target in ((ROOT / "brenda_addon", STAGE), (ROOT / "shared", STAGE / "shared")):
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(source)
            if path.is_file() and _wanted(relative):
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination)
    shutil.copy2(ROOT / MANIFEST, STAGE / MANIFEST)
    return STAGE


def make_zip(staged: Path, version: str) -> Path:
    DIST.mkdir(exist_ok=True)
    archive = DIST / f"brenda-{version}.zip"
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
        tomllib.loads(bundle.read(MANIFEST).decode("utf-8"))
    stray = [name for name in names if not _wanted(Path(name))]
    if stray:
        raise BuildError(f"{archive} holds files that must not ship: {', '.join(stray)}")
    return names


def build() -> Path:
    manifest = read_manifest(ROOT / MANIFEST)
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
