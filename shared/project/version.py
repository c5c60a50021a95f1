# SPDX-License-Identifier: GPL-3.0-or-later
"""Which Blender saved the .blend a job renders, read where its project is. No bpy module use.

Read at submit and push (``brenda-work submit``, ``push --render``, the add-on, ``brenda demo
--blend``) so that the job and its tasks carry the version, ``jobs`` shows it, and a node picks
its Blender by it. Only the file's first bytes are read: a folder's file, an uploaded version's
first stored piece (one ranged GET), or a tarball streamed up to that member. A node reads the
header again from the file it fetched, so a version that cannot be read here (a zip, a project
not there yet) costs nothing but the early check.
"""

from __future__ import annotations

import io
import logging
import tarfile
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ..aws import s3
from ..aws.session import cloud_errors, make_client
from ..core.blend_header import COMPRESSED_PREFIX_BYTES, read_version, saved_by
from ..core.config import Config
from ..core.errors import BrendaError
from ..core.urls import FileUrl, S3Url, parse_url
from .content import ContentStore, ProjectVersion

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def _is_wanted(name: str, blend: str | None) -> bool:
    """Whether a project path is the job's .blend (the one at the top when the job names none)."""
    path = PurePosixPath(name)
    if path.suffix != ".blend":
        return False
    return name == blend if blend is not None else len(path.parts) == 1


def _from_tar(stream: IO[bytes], blend: str | None, origin: str) -> str | None:
    """Read up to the job's .blend only (Brenda writes .blend files first, the top ones first).
    An archive may hold the project in one folder, as the node takes it: a member inside that
    folder counts if no member outside it follows (the archive is then read to its end)."""
    tops: set[str] = set()
    inside: str | None = None
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as bundle:
            for info in bundle:
                parts = PurePosixPath(info.name).parts
                tops.add(parts[0] if parts else "")
                if not info.isfile():
                    continue
                if _is_wanted(info.name, blend):
                    return _member_version(bundle, info, origin)
                inner = PurePosixPath(*parts[1:]).as_posix() if len(parts) > 1 else ""
                if inside is None and _is_wanted(inner, blend):
                    inside = _member_version(bundle, info, origin)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise BrendaError(f"{origin} cannot be read as a tarball: {error}.") from error
    return inside if len(tops) == 1 else None


def _member_version(bundle: tarfile.TarFile, info: tarfile.TarInfo, origin: str) -> str | None:
    member = bundle.extractfile(info)
    return None if member is None else read_version(member, f"{origin}:{info.name}")


def _from_folder(folder: Path, blend: str | None) -> str | None:
    if blend is not None:
        return saved_by(folder / blend)
    top = sorted(folder.glob("*.blend"))
    return saved_by(top[0]) if len(top) == 1 else None


def _from_manifest(client: Any, version: ProjectVersion, blend: str | None) -> str | None:
    store = ContentStore(client, version.projects)
    manifest = store.read_manifest(version)
    if manifest is None:
        return None
    wanted = [entry for entry in manifest.files if _is_wanted(entry.path, blend)]
    if len(wanted) != 1:
        return None
    start = store.read_start(wanted[0].stored[0], COMPRESSED_PREFIX_BYTES)
    if start is None:
        return None
    return read_version(io.BytesIO(start), f"{version.url} {wanted[0].path}")


def project_blender(config: Config, project: str, blend: str | None) -> str | None:
    """The version (major.minor) that saved ``blend`` (None: the project's one top .blend) in
    ``project``, a URL; None where it cannot be read. A file that is not a .blend is an error."""
    url = parse_url(project, allowed=("s3", "file"))
    if isinstance(url, FileUrl):
        if url.path.is_dir():
            return _from_folder(url.path, blend)
        if url.path.name.endswith(ARCHIVE_SUFFIXES) and url.path.is_file():
            with url.path.open("rb") as stream:
                return _from_tar(stream, blend, str(url))
        return None
    assert isinstance(url, S3Url)

    key = url.prefix.rstrip("/")
    with cloud_errors(f"reading the Blender version of {project}"):
        client = make_client("s3", config)
        version = ProjectVersion.at(url)
        if version is not None:
            return _from_manifest(client, version, blend)
        if key.endswith(ARCHIVE_SUFFIXES):
            body = s3.open_body(client, url.bucket, key)
            if body is None:
                return None
            try:
                return _from_tar(body, blend, project)
            finally:
                body.close()
    return None


def blend_name(config: Config, project: str, blend: str | None) -> str:
    """The name of the .blend a job renders, for its id (``shot1`` for ``shots/shot1.blend``):
    ``blend`` when given, else the project's one top .blend (a folder's, or an uploaded
    version's, read from its manifest: the version's own name is a hash), else the project's
    name (an archive's, less its suffix); ``job`` where none is found."""
    if blend is not None:
        return PurePosixPath(blend).stem
    url = parse_url(project, allowed=("s3", "file"))
    if isinstance(url, FileUrl):
        if url.path.is_dir():
            blends = sorted(url.path.glob("*.blend"))
            return blends[0].stem if len(blends) == 1 else url.path.name
        return _without_archive_suffix(url.path.name)
    assert isinstance(url, S3Url)
    version = ProjectVersion.at(url)
    if version is None:
        return _without_archive_suffix(PurePosixPath(url.prefix.rstrip("/")).name) or "job"
    with cloud_errors(f"reading the manifest of {project}"):
        manifest = ContentStore(make_client("s3", config), version.projects).read_manifest(version)
    top = (
        [entry.path for entry in manifest.files if _is_wanted(entry.path, None)] if manifest else []
    )
    return PurePosixPath(top[0]).stem if len(top) == 1 else "job"


def _without_archive_suffix(name: str) -> str:
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return PurePosixPath(name).stem


def job_blender(config: Config, project: str, blend: str | None) -> str | None:
    """``project_blender``, or None with a warning where the version cannot be read."""
    try:
        return project_blender(config, project, blend)
    except BrendaError as error:
        log.warning("The Blender version of the job's file is unknown (%s)", error)
        return None
