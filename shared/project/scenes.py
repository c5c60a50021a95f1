# SPDX-License-Identifier: GPL-3.0-or-later
"""What the .blend a job renders holds, read where its project is before a task is queued: that
the project and the .blend are there, which Blender saved it, and its scenes with their frame
ranges. No bpy module use.

``brenda-work submit`` and the add-on's Push Job read it so that a job a node would fail on (a
project that is not there, a .blend not in it, a scene not in the .blend) is refused on the
workstation, not paid for on the farm three tries a frame. Only the .blend is fetched: a
folder's file is read where it is, an uploaded version's .blend alone comes from the content
store (its pieces, not the rest of the project), and a tarball is streamed up to that member.
BAT reads the scene blocks (names and frame ranges) without Blender.
"""

from __future__ import annotations

import shutil
import struct
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from blender_asset_tracer import blendfile
from blender_asset_tracer.blendfile.exceptions import BlendFileError

from ..aws import s3
from ..aws.session import cloud_errors, make_client
from ..core.blend_header import saved_by
from ..core.config import Config
from ..core.errors import BrendaError, UsageError
from ..core.progress import Progress
from ..core.urls import FileUrl, S3Url, parse_url
from .content import ContentStore, ProjectVersion, in_parallel

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
"""The tarballs a node takes (``brenda_node.project``); it takes a ``.zip`` too."""
NAMES_SHOWN = 8
"""Names an error lists at most (the scenes of a .blend, the .blend files of a project)."""


@dataclass(frozen=True)
class Scene:
    name: str
    start: int
    end: int
    step: int


@dataclass(frozen=True)
class BlendContents:
    """The job's .blend as its project holds it."""

    path: str
    """Its path in the project."""
    blender: str | None
    """The Blender version (major.minor) that saved it; None where it is not a .blend."""
    scenes: tuple[Scene, ...] | None
    """Its scenes, the one it opens with first; None where they cannot be read."""

    def scene(self, name: str | None) -> Scene | None:
        """The scene ``name`` (None: the one it opens with); None where unknown. A name the
        .blend does not hold is a UsageError naming it."""
        if self.scenes is None or not self.scenes:
            return None
        if name is None:
            return self.scenes[0]
        for scene in self.scenes:
            if scene.name == name:
                return scene
        names = ", ".join(scene.name for scene in self.scenes[:NAMES_SHOWN])
        raise UsageError(f"{self.path} has no scene '{name}' (its scenes: {names}).")


def read_scenes(path: Path) -> tuple[Scene, ...] | None:
    """The scenes of the .blend at ``path``, the one it opens with first; None where they
    cannot be read (not a .blend, or one whose layout BAT does not know)."""
    try:
        opened = blendfile.BlendFile(path)
    except (BlendFileError, OSError, ValueError, struct.error, EOFError):
        return None
    try:
        blocks = opened.find_blocks_from_code(b"SC")
        globals_ = opened.find_blocks_from_code(b"GLOB")
        current = globals_[0].get_pointer(b"curscene") if globals_ else None
        first = [current] if current is not None else []
        ordered = first + [block for block in blocks if current is None or block != current]
        return tuple(
            Scene(
                name=(block.id_name or b"")[2:].decode("utf-8", "replace"),
                start=int(block[b"r", b"sfra"]),
                end=int(block[b"r", b"efra"]),
                step=max(1, int(block[b"r", b"frame_step"])),
            )
            for block in ordered
        )
    except (BlendFileError, OSError, ValueError, KeyError, IndexError, struct.error):
        return None  # a layout this BAT does not know (a newer Blender's): its nodes will tell
    finally:
        opened.close()


def _contents(path: Path, name: str) -> BlendContents:
    try:
        blender: str | None = saved_by(path)
    except BrendaError:
        blender = None
    return BlendContents(name, blender, read_scenes(path) if blender is not None else None)


def _choose(project: str, names: list[str], blend: str | None) -> str:
    """The job's .blend among the project's file ``names``: ``blend``, or the one at the top."""
    if blend is not None:
        if blend not in names:
            raise UsageError(f"The project {project} has no {blend}.")
        return blend
    top = sorted(name for name in names if name.endswith(".blend") and "/" not in name)
    if len(top) == 1:
        return top[0]
    if not top:
        raise UsageError(
            f"The project {project} has no .blend file at its top level: name one with --blend."
        )
    shown = ", ".join(top[:NAMES_SHOWN])
    raise UsageError(
        f"The project {project} has several .blend files ({shown}): name one with --blend."
    )


@contextmanager
def _scratch() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="brenda-blend-"))
    try:
        yield folder / "file.blend"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _from_folder(folder: Path, project: str, blend: str | None) -> BlendContents:
    if blend is not None:
        if not (folder / blend).is_file():
            raise UsageError(f"The project {project} has no {blend}.")
        return _contents(folder / blend, blend)
    top = [path.name for path in folder.glob("*.blend") if path.is_file()]
    name = _choose(project, top, None)
    return _contents(folder / name, name)


def _from_tar(stream: IO[bytes], project: str, blend: str | None) -> BlendContents:
    """Streamed up to the .blend (Brenda writes .blend files first, the top ones first). An
    archive may hold the project in one folder, as the node takes it: a member inside that folder
    counts if no member outside it follows (the archive is then read to its end)."""
    tops: set[str] = set()
    found: dict[str, Path] = {}
    """The project's .blend files that may be the job's, by their path inside the one folder."""
    with _scratch() as scratch:
        try:
            with tarfile.open(fileobj=stream, mode="r|*") as bundle:
                for info in bundle:
                    parts = PurePosixPath(info.name).parts
                    tops.add(parts[0] if parts else "")
                    if not info.isfile():
                        continue
                    name = PurePosixPath(*parts).as_posix()
                    inner = PurePosixPath(*parts[1:]).as_posix() if len(parts) > 1 else ""
                    if _is_wanted(name, blend):
                        _extract(bundle, info, scratch)
                        return _contents(scratch, name)
                    if _is_wanted(inner, blend) and len(found) < NAMES_SHOWN:
                        found[inner] = scratch.with_name(f"{len(found)}.blend")
                        _extract(bundle, info, found[inner])
        except (tarfile.TarError, OSError, EOFError) as error:
            raise BrendaError(f"{project} cannot be read as a tarball: {error}.") from error
        chosen = _choose(project, list(found) if len(tops) == 1 else [], blend)
        return _contents(found[chosen], chosen)


def _is_wanted(name: str, blend: str | None) -> bool:
    """Whether a project path may be the job's .blend (one at the top when it names none)."""
    path = PurePosixPath(name)
    if path.suffix != ".blend":
        return False
    return name == blend if blend is not None else len(path.parts) == 1


def _extract(bundle: tarfile.TarFile, info: tarfile.TarInfo, path: Path) -> None:
    member = bundle.extractfile(info)
    if member is None:
        raise BrendaError(f"{info.name} cannot be read from its tarball.")
    with path.open("wb") as copy:
        shutil.copyfileobj(member, copy)


def _from_zip(path: Path, project: str, blend: str | None) -> BlendContents:
    try:
        with zipfile.ZipFile(path) as bundle:
            names = [info.filename for info in bundle.infolist() if not info.is_dir()]
            tops = {PurePosixPath(name).parts[0] for name in names}
            wrapped = len(tops) == 1 and all("/" in name for name in names)
            inside = {PurePosixPath(*PurePosixPath(n).parts[1:]).as_posix(): n for n in names}
            listed = list(inside) if wrapped else names
            chosen = _choose(project, listed, blend)
            with _scratch() as copy:
                member_name = inside[chosen] if wrapped else chosen
                with bundle.open(member_name) as member, copy.open("wb") as target:
                    shutil.copyfileobj(member, target)
                return _contents(copy, chosen)
    except (zipfile.BadZipFile, OSError) as error:
        raise BrendaError(f"{project} cannot be read as a zip file: {error}.") from error


def _from_manifest(
    client: Any, version: ProjectVersion, blend: str | None, progress: Progress
) -> BlendContents:
    store = ContentStore(client, version.projects)
    manifest = store.read_manifest(version)
    if manifest is None:
        raise UsageError(
            f"The project version {version.url} does not exist: upload the project first "
            "('brenda upload', or the add-on's Upload Project)."
        )
    entries = {entry.path: entry for entry in manifest.files}
    chosen = entries[_choose(version.url, list(entries), blend)]
    progress.start(f"Fetching {chosen.path}", chosen.size)
    with _scratch() as copy:
        pieces = [copy.with_name(f"piece-{index}") for index in range(len(chosen.stored))]

        def fetch(item: tuple[str, Path]) -> None:
            digest, piece = item
            progress.check()
            store.download(digest, piece)
            progress.advance(piece.stat().st_size)

        in_parallel(fetch, list(zip(chosen.stored, pieces, strict=True)), progress)
        with copy.open("wb") as target:
            for piece in pieces:
                with piece.open("rb") as source:
                    shutil.copyfileobj(source, target)
                piece.unlink()
        return _contents(copy, chosen.path)


def read_blend(
    config: Config, project: str, blend: str | None, progress: Progress | None = None
) -> BlendContents:
    """The .blend ``blend`` (None: the project's one top .blend) of ``project``, a URL. A
    project that is not there, or does not hold that .blend, is a UsageError naming it; a
    project kind this cannot look into (a zip in S3) gives a .blend whose contents are unknown.
    ``progress`` counts the bytes of an uploaded .blend fetched."""
    progress = progress or Progress()
    url = parse_url(project, allowed=("s3", "file"))
    if isinstance(url, FileUrl):
        if url.path.is_dir():
            return _from_folder(url.path, project, blend)
        if not url.path.is_file():
            raise UsageError(f"The project {project} does not exist.")
        if url.path.name.endswith(".zip"):
            return _from_zip(url.path, project, blend)
        with url.path.open("rb") as stream:
            return _from_tar(stream, project, blend)
    assert isinstance(url, S3Url)
    key = url.prefix.rstrip("/")
    with cloud_errors(f"reading the project {project}"):
        client = make_client("s3", config)
        version = ProjectVersion.at(url)
        if version is not None:
            return _from_manifest(client, version, blend, progress)
        if not key.endswith(TAR_SUFFIXES):
            if s3.head(client, url.bucket, key) is None:
                raise UsageError(f"The project {project} does not exist.")
            return BlendContents(blend or "the project's .blend", None, None)
        body = s3.open_body(client, url.bucket, key)
        if body is None:
            raise UsageError(f"The project {project} does not exist.")
        progress.start(f"Reading {PurePosixPath(key).name} up to its .blend", None)
        try:
            return _from_tar(body, project, blend)
        finally:
            body.close()
