# SPDX-License-Identifier: GPL-3.0-or-later
"""Packing a .blend with everything it uses into one project archive. No bpy module use.

blender-asset-tracer (BAT, what Flamenco packs with) reads every data-block of the .blend and of
the libraries it links, recursively, without opening them in Blender; it expands UDIM tiles,
image and cache sequences and cache folders, and rewrites the paths inside every packed .blend.
Brenda adds to BAT's model what it misses (movie clips made of image sequences), decides which
files belong to the project (everything under the project root keeps its place; files outside it
go to ``_outside_project/``), reports what it found before anything is written, and writes the
archive atomically.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blender_asset_tracer import blendfile, trace
from blender_asset_tracer import pack as bat_pack
from blender_asset_tracer.blendfile.exceptions import BlendFileError
from blender_asset_tracer.trace import blocks2assets, expanders, result

from ..core.blend_header import saved_by, version_key
from ..core.errors import BrendaError, Cancelled
from ..core.progress import Progress
from ..core.text import counted
from .content import folder_files

log = logging.getLogger(__name__)

# A pointer to nothing is skipped, as ``bat pack`` skips it (strict pointers are off there unless
# asked for): Blender writes such pointers (Blender 4.5 leaves one in a Geometry Nodes modifier
# that has no bakes) and opens and renders those files, so the tracer must not stop at them.
blendfile.set_strict_pointer_mode(False)

PROJECT_MARKERS = (".blender_project", ".git", ".svn")
ADDONS_FOLDER = "addons"
"""Where the add-ons a job needs go in the project; a node that allows the job's Python enables
each one there."""
OUTSIDE_FOLDER = "_outside_project"
ARCHIVE_SUFFIX = ".tar.gz"

# Blender's data-block codes (the first two bytes of an ID name), as the artist calls them.
KINDS = {
    "CF": "cache file",
    "IM": "image",
    "LA": "light",
    "LI": "library",
    "MC": "movie clip",
    "ME": "mesh",
    "OB": "object",
    "SC": "scene",
    "SO": "sound",
    "VF": "font",
    "VO": "volume",
}
# DNA's pointcache flag PTCACHE_BAKED: the cache on disk is the simulation, not a leftover.
PTCACHE_BAKED = 1 << 0
# DNA's MovieClip source MCLIP_SRC_SEQUENCE.
MOVIE_CLIP_SEQUENCE = 1
CACHE_FOLDER_TYPES = {
    "FluidDomainSettings",
    "FluidsimSettings",
    "NodesModifierBake",
    "NodesModifierData",
    "OceanModifierData",
}


@dataclass(frozen=True)
class Addon:
    """An add-on (or extension) packed with the project: its module name and its source, a
    package folder or a single ``.py`` file."""

    name: str
    source: Path

    @classmethod
    def at(cls, source: Path) -> Addon:
        """The add-on whose source is ``source``; one sentence naming it when it is none."""
        source = Path(os.path.abspath(source))
        name = source.stem if source.suffix == ".py" else source.name
        is_package = source.is_dir() and (source / "__init__.py").is_file()
        if not (is_package or (source.is_file() and source.suffix == ".py")):
            raise BrendaError(
                f"{source} is not an add-on: give its package folder (with __init__.py) or its "
                ".py file."
            )
        if not name.isidentifier():
            raise BrendaError(f"{source} is not an add-on: '{name}' is not a Python module name.")
        return cls(name, source)

    @property
    def packed_as(self) -> str:
        return f"{ADDONS_FOLDER}/{self.name}{'.py' if self.source.is_file() else ''}"


def check_addons(addons: tuple[Addon, ...]) -> None:
    """Refuse two add-ons of one name: both would be ``addons/NAME`` on the node."""
    seen: dict[str, Path] = {}
    for addon in addons:
        if addon.name in seen:
            raise BrendaError(
                f"Two add-ons are named {addon.name} ({seen[addon.name]} and {addon.source}): "
                "give each once."
            )
        seen[addon.name] = addon.source


def _copy_addons(addons: tuple[Addon, ...], staging: Path) -> None:
    check_addons(addons)
    for addon in addons:
        target = staging / addon.packed_as
        target.parent.mkdir(parents=True, exist_ok=True)
        if addon.source.is_file():
            shutil.copy2(addon.source, target)
        else:
            ignored = shutil.ignore_patterns("__pycache__", "*.pyc", ".git")
            shutil.copytree(addon.source, target, ignore=ignored)


def find_project_root(blend: Path) -> Path:
    """The nearest folder above ``blend`` marked as a project (``.blender_project``, ``.git`` or
    ``.svn``, as Flamenco looks for), else the .blend's own folder."""
    folder = blend.resolve().parent
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).exists() for marker in PROJECT_MARKERS):
            return candidate
    return folder


@dataclass(frozen=True)
class MissingFile:
    """A file the project refers to that is not on disk, with every data-block that uses it."""

    path: str
    users: tuple[str, ...]
    read_by_render: bool
    """False for what a render never reads: cache folders left from an unfinished bake."""

    def describe(self) -> str:
        return f"{self.path} ({', '.join(self.users)})"


@dataclass(frozen=True)
class PackReport:
    """What packing found: the preflight report, shown before anything is uploaded."""

    root: Path
    blend: str
    """The .blend to render, relative to the root (POSIX), as the tasks name it."""
    files: int
    bytes: int
    missing: tuple[MissingFile, ...]
    outside: tuple[str, ...]
    """Files outside the root, copied into ``_outside_project/``."""
    rewritten: tuple[str, ...]
    """Absolute paths that the packed .blend files refer to by a relative path instead."""
    blender: str = ""
    """The Blender version (major.minor) that saved the .blend, from its header."""
    addons: tuple[str, ...] = ()
    """The add-ons packed with the project, as ``addons/NAME``: a job needs Python for them."""
    libraries: tuple[tuple[str, str], ...] = ()
    """Each linked .blend (as ``lines`` shows its path) and the version that saved it."""
    archive: Path | None = None

    @property
    def blocking(self) -> tuple[MissingFile, ...]:
        return tuple(item for item in self.missing if item.read_by_render)

    @property
    def warnings(self) -> tuple[MissingFile, ...]:
        return tuple(item for item in self.missing if not item.read_by_render)

    def lines(self) -> list[str]:
        """The report as short lines, for the panel and the terminal."""
        lines = [
            f"Project root: {self.root}",
            f"Render: {self.blend}",
            f"{counted(self.files, 'file')}, {human_bytes(self.bytes)} to pack",
            f"Saved by Blender {self.blender}",
        ]
        lines += [f"Library {path}: saved by Blender {version}" for path, version in self.libraries]
        lines += [
            f"Add-on {name}, packed as {ADDONS_FOLDER}/{name}: the job runs its Python"
            for name in self.addons
        ]
        lines += [
            f"Newer than the file: library {path} was saved by Blender {version}, which the "
            f"nodes' Blender {self.blender} may not read"
            for path, version in self.libraries
            if version_key(version) > version_key(self.blender)
        ]
        lines += [f"Missing: {item.describe()}" for item in self.blocking]
        lines += [f"Missing, not read by the render: {item.describe()}" for item in self.warnings]
        lines += [f"From outside the root: {path}" for path in self.outside]
        lines += [f"Absolute path made relative: {path}" for path in self.rewritten]
        return lines

    def summary(self) -> str:
        """One sentence for a status line."""
        parts = [f"{counted(self.files, 'file')} ({human_bytes(self.bytes)})"]
        if self.outside:
            parts.append(f"{len(self.outside)} copied in from outside the project root")
        if self.rewritten:
            parts.append(f"{counted(len(self.rewritten), 'absolute path')} made relative")
        if self.missing:
            parts.append(f"{len(self.missing)} missing")
        where = f" into {self.archive.name}" if self.archive else ""
        return f"Packed {', '.join(parts)}{where}."


def human_bytes(size: int) -> str:
    """``950 bytes``, ``1.3 MB``: decimal units, as file managers show sizes."""
    if size < 1000:
        return f"{size} bytes"
    value, unit = size / 1000, "KB"
    for bigger in ("MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}"


@functools.cache
def _bat() -> Any:
    """BAT's tracer, with Brenda's additions to its model registered once."""

    # BAT warns about each missing file on stderr; Brenda's report says it once, better.
    logging.getLogger("blender_asset_tracer").addHandler(logging.NullHandler())
    logging.getLogger("blender_asset_tracer").propagate = False

    @blocks2assets.dna_code("MC")  # type: ignore[untyped-decorator]
    def movie_clip(block: Any) -> Iterator[Any]:
        # BAT packs only the first image of a clip made of an image sequence.
        path, path_field = block.get(b"name", return_field=True)
        is_sequence = block.get(b"source", default=0) == MOVIE_CLIP_SEQUENCE
        yield result.BlockUsage(block, path, is_sequence, path_full_field=path_field)

    _follow_node_trees_by_their_field()
    return trace


# Data-blocks that own a node tree: lights, materials, textures and worlds in ``nodetree``, the
# scene's compositor in ``nodetree`` before Blender 5.0 and ``compositing_node_group`` from 5.0.
NODE_TREE_OWNERS = ("LA", "MA", "SC", "TE", "WO")
NODE_TREE_FIELDS = (b"nodetree", b"compositing_node_group")


def _follow_node_trees_by_their_field() -> None:
    """BAT 1.23 picks the node-tree field by the file's version, not by the data-block: in a
    5.0 file it reads ``compositing_node_group`` for every data-block, so it never follows a
    material's, world's or light's node tree (a library's textures were not packed), and in a
    5.1 or 5.2 file (whose subversion starts again at 0) it misses the compositor's. Each owner's
    expander is wrapped to follow the tree in whichever field its DNA has; BAT reports each
    data-block once, so a tree it did follow is not counted twice."""

    for code in NODE_TREE_OWNERS:
        found = expanders._funcs_for_code[code.encode()]

        def expand(block: Any, found: Any = found) -> Iterator[Any]:
            yield from found(block)
            for name in NODE_TREE_FIELDS:
                tree = block.get_pointer(name, None) if block.dna_type.has_field(name) else None
                if tree is not None:
                    yield from expanders._expand_generic_nodetree(tree)

        expanders.dna_code(code)(expand)


def _user(usage: Any, root: Path) -> str:
    """Who uses a file, as the artist knows it: "image 'wood' in shots/shot1.blend"."""
    raw = usage.block_name.decode("utf-8", "replace")
    kind = KINDS.get(raw[:2])
    name = f"{kind} '{raw[2:]}'" if kind else usage.block.dna_type_name
    modifier = _MODIFIER.match(raw[2:])
    if kind and modifier:
        name = f"modifier {int(modifier.group(2)) + 1} of {kind} '{modifier.group(1)}'"
    return f"{name} in {_shown(Path(usage.block.bfile.filepath), root)}"


_MODIFIER = re.compile(r"^(.*)\.modifiers\[(\d+)\]")


def _shown(path: Path, root: Path) -> str:
    resolved = path.absolute()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else str(path)


def _read_by_render(usage: Any) -> bool:
    block_type = usage.block.dna_type_name
    if block_type == "PointCache":
        return bool(usage.block.get(b"flag", default=0) & PTCACHE_BAKED)
    return block_type not in CACHE_FOLDER_TYPES


@dataclass
class _Trace:
    """Every file the .blend and its libraries use, gathered from BAT's block usages."""

    root: Path
    files: set[Path] = field(default_factory=set)
    missing: dict[str, tuple[list[str], bool]] = field(default_factory=dict)
    outside: set[str] = field(default_factory=set)
    rewritten: set[str] = field(default_factory=set)

    def add(self, usage: Any) -> None:
        path = Path(usage.abspath)
        user = _user(usage, self.root)
        found = [item for item in usage.files() if item.is_file()]
        if not found:
            users, read = self.missing.setdefault(str(path), ([], False))
            if user not in users:
                users.append(user)
            self.missing[str(path)] = (users, read or _read_by_render(usage))
            return
        self.files.update(found)
        if not all(item.absolute().is_relative_to(self.root) for item in found):
            self.outside.add(str(path))
        if not usage.asset_path.is_blendfile_relative():
            self.rewritten.add(f"{path} ({user})")


def _trace(blend: Path, root: Path, progress: Progress) -> _Trace:
    trace = _bat()
    found = _Trace(root)
    for usage in trace.deps(blend):
        progress.check()
        found.add(usage)
    return found


def _locate(blend: Path, root: Path | None) -> tuple[Path, Path]:
    blend = Path(os.path.abspath(blend))
    if not blend.is_file():
        raise BrendaError(f"{blend} does not exist or is not a file.")
    if blend.suffix != ".blend":
        raise BrendaError(f"{blend} is not a .blend file.")
    root = find_project_root(blend) if root is None else Path(os.path.abspath(root))
    if not root.is_dir():
        raise BrendaError(f"The project root {root} is not a folder.")
    if not blend.is_relative_to(root):
        raise BrendaError(f"{blend} is not inside the project root {root}.")
    return blend, root


def scene_frames(blend: Path) -> tuple[int, int, int]:
    """The frame range (start, end, step) of the scene the .blend opens with."""

    blend, _ = _locate(blend, Path(os.path.abspath(blend)).parent)
    try:
        opened = blendfile.open_cached(blend)
        scene = opened.find_blocks_from_code(b"GLOB")[0].get_pointer(b"curscene")
        if scene is None:
            scene = opened.find_blocks_from_code(b"SC")[0]
        return (
            int(scene[b"r", b"sfra"]),
            int(scene[b"r", b"efra"]),
            max(1, int(scene[b"r", b"frame_step"])),
        )
    except (BlendFileError, OSError, ValueError, KeyError, IndexError) as error:
        raise BrendaError(f"{blend} cannot be read as a .blend file ({error}).") from error
    finally:
        _close_files()


def inspect(
    blend: Path,
    *,
    root: Path | None = None,
    progress: Progress | None = None,
    addons: tuple[Addon, ...] = (),
) -> PackReport:
    """The preflight report for ``blend`` (and the add-ons to pack with it): what packing it
    would do. Writes nothing."""

    progress = progress or Progress()
    blend, root = _locate(blend, root)
    check_addons(addons)
    progress.start(f"Tracing {blend.name}", None)
    try:
        found = _trace(blend, root, progress)
    except (BlendFileError, OSError, ValueError, KeyError) as error:
        raise BrendaError(f"{blend} cannot be read as a .blend file ({error}).") from error
    finally:
        _close_files()
    found.files.add(blend)
    libraries = sorted(path for path in found.files if path.suffix == ".blend" and path != blend)
    return PackReport(
        addons=tuple(addon.name for addon in addons),
        blender=saved_by(blend),
        libraries=tuple((_shown(path, root), saved_by(path)) for path in libraries),
        root=root,
        blend=blend.relative_to(root).as_posix(),
        files=len(found.files),
        bytes=sum(path.stat().st_size for path in found.files),
        missing=tuple(
            MissingFile(path, tuple(users), read)
            for path, (users, read) in sorted(found.missing.items())
        ),
        outside=tuple(sorted(found.outside)),
        rewritten=tuple(sorted(found.rewritten)),
    )


RENDER_ANYWAY = "pack with 'render anyway'"
"""How to render without missing files, as the add-on asks for it (its Render Anyway box)."""


def refuse_missing(report: PackReport, render_anyway: str = RENDER_ANYWAY) -> None:
    """Stop with one sentence naming the missing files a render reads, and saying how to render
    without them (``render_anyway``: each interface has its own way)."""
    blocking = report.blocking
    if not blocking:
        return
    shown = "; ".join(item.describe() for item in blocking[:5])
    more = f" and {len(blocking) - 5} more" if len(blocking) > 5 else ""
    noun = "file the render reads is" if len(blocking) == 1 else "files the render reads are"
    raise BrendaError(
        f"{len(blocking)} {noun} missing: {shown}{more}. Put them back, or {render_anyway} to "
        "render without them."
    )


def _checked(
    blend: Path,
    root: Path | None,
    *,
    render_anyway: bool,
    progress: Progress,
    report: PackReport | None,
    addons: tuple[Addon, ...],
) -> tuple[Path, Path, PackReport]:
    """The .blend and root located, and the preflight report (``report`` if already made);
    missing files a render reads stop here unless ``render_anyway``."""
    blend, located_root = _locate(blend, root)
    report = report or inspect(blend, root=located_root, progress=progress, addons=addons)
    if not render_anyway:
        refuse_missing(report)
    return blend, located_root, report


def pack(
    blend: Path,
    archive: Path,
    *,
    root: Path | None = None,
    render_anyway: bool = False,
    progress: Progress | None = None,
    report: PackReport | None = None,
    addons: tuple[Addon, ...] = (),
) -> PackReport:
    """Write ``archive`` (tar.gz): ``blend`` and every file it uses, paths rewritten so the
    project renders from the archive's top folder (the root), and ``addons`` in ``addons/``.
    Missing files a render reads stop packing unless ``render_anyway``. The archive appears
    whole or not at all. ``report`` is the preflight report already made for the same file,
    root and add-ons, if any."""
    progress = progress or Progress()
    blend, root, report = _checked(
        blend, root, render_anyway=render_anyway, progress=progress, report=report, addons=addons
    )
    archive = Path(os.path.abspath(archive))
    if archive.is_relative_to(root) and archive.suffix == ".blend":
        raise BrendaError(f"The archive {archive} would overwrite a .blend file.")
    _make_folder_of(archive)
    with tempfile.TemporaryDirectory(prefix="brenda-pack-") as staging:
        _stage(blend, root, Path(staging), progress)
        _copy_addons(addons, Path(staging))
        _write_archive(Path(staging), archive, progress)
    return PackReport(**{**report.__dict__, "archive": archive})


def _make_folder_of(archive: Path) -> None:
    """The archive's folder, made if needed; one that cannot be is said in one sentence."""
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as error:
        raise BrendaError(
            f"Could not write the project archive {archive}: {error.filename} is a file, "
            "not a folder."
        ) from error
    except OSError as error:
        raise BrendaError(
            f"Could not write the project archive {archive}: {error.strerror or error}."
        ) from error


def stage(
    blend: Path,
    folder: Path,
    *,
    root: Path | None = None,
    render_anyway: bool = False,
    progress: Progress | None = None,
    report: PackReport | None = None,
    addons: tuple[Addon, ...] = (),
) -> tuple[PackReport, list[tuple[str, Path, Path]]]:
    """Pack into ``folder`` as files, for a content-addressed upload: the report, and each file
    as (path in the project, the packed file, the file whose bytes it copies). BAT copies every
    file unchanged but the .blend files whose paths it rewrites, so the hashes of the others can
    be cached on their source. ``report`` is the preflight report already made for the same file
    and root, if any; ``addons`` go in ``addons/``."""
    progress = progress or Progress()
    blend, root, report = _checked(
        blend, root, render_anyway=render_anyway, progress=progress, report=report, addons=addons
    )
    verbatim = _stage(blend, root, folder, progress)
    _copy_addons(addons, folder)

    files = []
    for name, path, _ in folder_files(folder):
        source = _source_of(name, root)
        same = (
            source
            if (path.suffix != ".blend" or source.resolve() in verbatim)
            and source.is_file()
            and source.stat().st_size == path.stat().st_size
            else path
        )
        files.append((name, path, same))
    return report, files


def _source_of(name: str, root: Path) -> Path:
    """Where a packed file came from: its place under the root, or its absolute path for a file
    packed into ``_outside_project/``."""
    outside = f"{OUTSIDE_FOLDER}/"
    return Path("/" + name[len(outside) :]) if name.startswith(outside) else root / name


def _stage(blend: Path, root: Path, staging: Path, progress: Progress) -> frozenset[Path]:
    """BAT copies every file into ``staging`` and rewrites the paths in the copied .blend files;
    returns the .blend files (resolved) it copied as they are, rewriting no path in them.

    BAT's ``pack-info.txt`` (which .blend to open) stays at the top, which also keeps a node from
    taking a project whose files all sit in one folder for a folder-wrapped archive."""

    _bat()
    packer = _packer_class()(blend, root, str(staging))
    packer.progress_cb = _ProgressAdapter(progress)
    try:
        with packer:
            packer.strategise()
            progress.check()
            packer.execute()
            # BAT copies a file its actions rewrite nothing in byte for byte (its read_from
            # stays unset); any other .blend is hashed as packed.
            return frozenset(
                Path(path).resolve()
                for path, action in packer._actions.items()
                if Path(path).suffix == ".blend" and not action.rewrites
            )
    except bat_pack.Aborted as error:
        raise Cancelled(f"Packing {blend.name} was cancelled.") from error
    except OSError as error:
        raise BrendaError(f"Packing {blend.name} failed: {error}.") from error
    finally:
        _close_files()


def _write_archive(staging: Path, archive: Path, progress: Progress) -> None:
    # The .blend files first, the top ones first: reading which Blender saved the file a job
    # renders (project_blender) then stops at the archive's first members.
    files = sorted(
        (path for path in staging.rglob("*") if path.is_file()),
        key=lambda path: (path.suffix != ".blend", len(path.parts), path),
    )
    progress.start(f"Writing {archive.name}", sum(path.stat().st_size for path in files))
    partial = archive.with_name(f".{archive.name}.partial")
    try:
        with tarfile.open(partial, "w:gz") as bundle:
            for path in files:
                progress.check()
                bundle.add(path, arcname=path.relative_to(staging).as_posix(), recursive=False)
                progress.advance(path.stat().st_size)
        partial.replace(archive)
    except OSError as error:
        raise BrendaError(f"Could not write the project archive {archive}: {error}.") from error
    finally:
        partial.unlink(missing_ok=True)


def _packer_class() -> Any:

    class Packer(bat_pack.Packer):  # type: ignore[misc]
        """BAT's packer, keeping files that are used by an absolute path inside the root in their
        place (BAT moves every file used by an absolute path to ``_outside_project/``)."""

        def _find_new_paths(self) -> None:
            super()._find_new_paths()
            root = Path(self.project).absolute()
            for path in self._new_location_paths:
                if Path(path).absolute().is_relative_to(root):
                    target = Path(self._target_path) / Path(path).absolute().relative_to(root)
                    self._actions[path].new_path = target

    return Packer


class _ProgressAdapter:
    """BAT's progress callbacks, turned into Brenda's Progress (and its cancel)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __getattr__(self, name: str) -> Any:
        def check(*_: Any) -> None:
            self.progress.check()

        return check

    def pack_start(self) -> None:
        self.progress.start("Copying files", None)

    def transfer_file(self, *_: Any) -> None:
        self.progress.advance()
        self.progress.check()


def _close_files() -> None:

    blendfile.close_all_cached()
