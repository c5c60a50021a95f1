# SPDX-License-Identifier: GPL-3.0-or-later
"""Fetch the project (``BLENDER_PROJECT``) into the node's work folder. No bpy module use.

``s3://bucket/key``  a tarball or zip, downloaded once per ETag and extracted;
``file:///path``     a folder used where it is, or a tarball or zip extracted like an S3 one;
``ebs://snapshot``   an EBS volume made from the snapshot, mounted read-only (see ``ebs``).

Archives are checked before anything is written, as the tree they would make on disk: members
with absolute paths or ``..`` parts, members reached through a link of the archive, links that
point outside the project or through another link, hard links to anything but a file, device
files and more bytes than the disk has free are refused, and a damaged or truncated archive is
an error. Brenda writes every member itself (never through a link), so nothing depends on the
interpreter's tar filters, which some Python 3.11 releases let links escape. Extraction goes
to a staging folder that replaces the project only once complete, so a failed fetch leaves the
previous project (or none) and nothing half-written.
Like the original, a project whose top level holds a single folder (``tar czf p.tgz myproject``)
is that folder.
"""

from __future__ import annotations

import errno
import logging
import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from shared.aws import s3
from shared.aws.session import cloud_errors, make_client
from shared.core.config import Config
from shared.core.errors import BrendaError
from shared.core.text import counted
from shared.core.urls import EbsUrl, FileUrl, S3Url
from shared.project.content import (
    PARALLEL,
    ContentStore,
    Entry,
    ProjectVersion,
    file_hash,
    pieces_where,
)

from .ebs import EbsVolumes

log = logging.getLogger(__name__)

PROJECT_FOLDER = "project"
EBS_PROJECT_FOLDER = "project-ebs"
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
IGNORED_AT_TOP = ("lost+found",)


class ProjectError(BrendaError):
    """The project cannot be fetched or is unsafe to extract."""


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


MAX_LINK_BYTES = 4096
"""The longest link target a system accepts (PATH_MAX); a longer "link" is an attack."""


@dataclass(frozen=True)
class Member:
    """One archive member, as it would be on disk."""

    name: str
    kind: Literal["dir", "file", "symlink", "hardlink"]
    size: int = 0
    target: str = ""


def _unsafe(origin: str, name: str, problem: str) -> ProjectError:
    return ProjectError(f"Project archive {origin} is unsafe: '{name}' {problem}.")


def _path(origin: str, name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
        raise _unsafe(origin, name, "has an absolute path")
    if ".." in path.parts:
        raise _unsafe(origin, name, "climbs out of the project with '..'")
    return path


def check_members(members: Sequence[Member], origin: str, free_bytes: int) -> None:
    """Refuse the archive unless its whole tree, as it would be on disk, stays in the project.

    No member may pass through a link of the archive or replace one, a symbolic link may point
    only inside the project and not through another link, a hard link only at a regular file,
    and the files must fit on the disk. Checked in memory, before anything is written, without
    relying on the interpreter's extraction filters."""
    kinds: dict[PurePosixPath, str] = {}
    for member in members:
        path = _path(origin, member.name)
        if path in kinds and "symlink" in (member.kind, kinds[path]):
            raise _unsafe(origin, member.name, "appears twice, once as a link")
        kinds[path] = member.kind
    links = {path for path, kind in kinds.items() if kind == "symlink"}
    total = 0
    for member in members:
        path = PurePosixPath(member.name)
        through = next((parent for parent in path.parents if parent in links), None)
        if through is not None:
            raise _unsafe(origin, member.name, f"is reached through the link '{through}'")
        if member.kind == "symlink":
            _check_link_target(member, path.parent, links, origin)
        elif member.kind == "hardlink":
            target = PurePosixPath(member.target)
            if target.is_absolute() or ".." in target.parts:
                raise _unsafe(
                    origin, member.name, f"is a link to {member.target}, outside the project"
                )
            if kinds.get(target) not in ("file", "hardlink"):
                raise _unsafe(origin, member.name, f"is a hard link to {member.target}, not a file")
        total += member.size
        if member.size > free_bytes or total > free_bytes:
            raise ProjectError(
                f"Project archive {origin} holds {total} bytes or more, more than the "
                f"{free_bytes} bytes free for the project."
            )


def _check_link_target(
    member: Member, folder: PurePosixPath, links: set[PurePosixPath], origin: str
) -> None:
    outside = f"is a link to {member.target}, outside the project"
    if len(member.target.encode()) > MAX_LINK_BYTES:
        raise _unsafe(origin, member.name, "is a link longer than any path")
    target = PurePosixPath(member.target)
    if target.is_absolute():
        raise _unsafe(origin, member.name, outside)
    parts = list(folder.parts)
    for part in target.parts:
        if part == "..":
            if not parts:
                raise _unsafe(origin, member.name, outside)
            parts.pop()
        elif part != ".":
            parts.append(part)
            through = PurePosixPath(*parts)
            if through in links:
                raise _unsafe(origin, member.name, f"is a link through the link '{through}'")


def _tar_members(infos: Sequence[tarfile.TarInfo], origin: str) -> list[Member]:
    members = []
    for info in infos:
        if info.isdir():
            members.append(Member(info.name, "dir"))
        elif info.isfile():
            members.append(Member(info.name, "file", info.size))
        elif info.issym():
            members.append(Member(info.name, "symlink", target=info.linkname))
        elif info.islnk():
            members.append(Member(info.name, "hardlink", target=info.linkname))
        else:
            raise _unsafe(origin, info.name, "is a device or other special file")
    return members


def _zip_members(
    archive: zipfile.ZipFile, infos: Sequence[zipfile.ZipInfo], origin: str
) -> list[Member]:
    members = []
    for info in infos:
        if stat.S_ISLNK(info.external_attr >> 16):
            if info.file_size > MAX_LINK_BYTES:
                raise _unsafe(origin, info.filename, "is a link longer than any path")
            target = archive.read(info).decode("utf-8", "replace")
            members.append(Member(info.filename, "symlink", target=target))
        elif info.is_dir():
            members.append(Member(info.filename, "dir"))
        else:
            members.append(Member(info.filename, "file", info.file_size))
    return members


def _write(source: IO[bytes], path: Path, mode: int) -> None:
    """A new file at ``path`` (never through a link) with ``source``'s bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    with os.fdopen(os.open(path, flags, 0o755 if mode & 0o111 else 0o644), "wb") as target:
        shutil.copyfileobj(source, target)


def _place(member: Member, target: Path, opened: Callable[[], IO[bytes]], mode: int) -> None:
    path = target / member.name
    if member.kind == "dir":
        path.mkdir(parents=True, exist_ok=True)
    elif member.kind == "symlink":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(member.target)
    elif member.kind == "hardlink":
        with (target / member.target).open("rb") as source:
            _write(source, path, mode)
    else:
        with opened() as source:
            _write(source, path, mode)


def extract(archive: Path, target: Path, *, origin: str) -> None:
    """Extract ``archive`` into the new folder ``target`` after checking every member."""
    target.mkdir(parents=True)
    free = shutil.disk_usage(target).free
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as bundle:
                entries = bundle.infolist()
                members = _zip_members(bundle, entries, origin)
                check_members(members, origin, free)
                for info, member in zip(entries, members, strict=True):
                    mode = info.external_attr >> 16
                    _place(member, target, partial(bundle.open, info), mode)
        else:
            with tarfile.open(archive) as bundle:
                infos = bundle.getmembers()
                members = _tar_members(infos, origin)
                check_members(members, origin, free)
                for tar_info, member in zip(infos, members, strict=True):
                    _place(member, target, partial(_tar_file, bundle, tar_info), tar_info.mode)
    except ProjectError:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError) as error:
        raise ProjectError(
            f"Project archive {origin} is damaged or truncated and cannot be extracted ({error})."
        ) from error
    except OSError as error:
        raise ProjectError(
            f"Could not write the project from {origin} into {target}: {error.strerror}."
        ) from error


def _tar_file(bundle: tarfile.TarFile, info: tarfile.TarInfo) -> IO[bytes]:
    source = bundle.extractfile(info)
    assert source is not None  # regular members always have contents
    return source


def descend(folder: Path) -> Path:
    """The folder itself, or its only subfolder when that is all its top level holds."""
    entries = [
        entry
        for entry in folder.iterdir()
        if not entry.name.startswith(".")
        and entry.name not in IGNORED_AT_TOP
        and not entry.name.endswith(".etag")
    ]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def _replace(staging: Path, project: Path) -> None:
    if project.exists():
        shutil.rmtree(project)
    staging.rename(project)


def _unpack(archive: Path, work: Path, origin: str, version: str) -> Path:
    """Extract ``archive`` as the work folder's project, remembering ``version``."""
    project = work / PROJECT_FOLDER
    staging = work / (PROJECT_FOLDER + ".staging")
    if staging.exists():
        shutil.rmtree(staging)
    try:
        extract(archive, staging, origin=origin)
        (staging / ".brenda-version").write_text(version, encoding="utf-8")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _replace(staging, project)
    return descend(project)


def _cached(work: Path, version: str) -> Path | None:
    project = work / PROJECT_FOLDER
    marker = project / ".brenda-version"
    if marker.is_file() and marker.read_text(encoding="utf-8") == version:
        return descend(project)
    return None


def fetched_version(project: Path) -> str | None:
    """The version (an ETag, a manifest's hash, an archive file's size and time) the project
    folder ``project`` was fetched as; None for a folder used where it is."""
    for folder in (project, project.parent):  # the archive's single folder is the project
        marker = folder / ".brenda-version"
        if marker.is_file():
            return marker.read_text(encoding="utf-8")
    return None


def fetch_file(url: FileUrl, work: Path) -> Path:
    path = url.path
    if path.is_dir():
        return path
    if not path.is_file():
        raise ProjectError(f"The project {url} does not exist.")
    if not is_archive(path.name):
        raise ProjectError(
            f"The project {url} is neither a folder nor an archive ({', '.join(ARCHIVE_SUFFIXES)})."
        )
    info = path.stat()
    version = f"{path}:{info.st_size}:{info.st_mtime_ns}"
    return _cached(work, version) or _unpack(path, work, str(url), version)


def fetch_s3(url: S3Url, work: Path, config: Config, *, always: bool) -> Path:

    key = url.prefix.rstrip("/")
    name = PurePosixPath(key).name
    origin = f"s3://{url.bucket}/{key}"
    if not key or not is_archive(name):
        raise ProjectError(
            f"BLENDER_PROJECT {origin} must name a tarball or zip, like s3://bucket/project.tar.gz."
        )
    with cloud_errors(f"fetching the project {origin}"):
        client = make_client("s3", config, pool=config.integer("CURL_MAX_THREADS"))
        info = s3.head(client, url.bucket, key)
        if info is None:
            raise ProjectError(f"The project {origin} does not exist.")
        if not always:
            cached = _cached(work, info.etag)
            if cached is not None:
                log.info(
                    "project %s unchanged (ETag %s): using the copy in %s", url, info.etag, work
                )
                return cached
        download = work / (PROJECT_FOLDER + ".download") / name
        download.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(
            client,
            url.bucket,
            key,
            download,
            concurrency=config.integer("CURL_MAX_THREADS"),
            size=info.size,
        )
    try:
        return _unpack(download, work, origin, info.etag)
    finally:
        shutil.rmtree(download.parent, ignore_errors=True)


def fetch_manifest(version: ProjectVersion, work: Path, config: Config) -> Path:
    """The project version, built in ``work`` from the node's content cache
    (``WORK_DIR/content``): only the files the cache lacks are downloaded, each checked against
    its hash; project files are read-only hard links to the cache."""

    origin = version.url
    check_trusted(version, config)
    project = work / PROJECT_FOLDER
    if _cached(work, version.name) is not None:
        # The folder as built, never the one folder it may hold: paths in the job are the
        # manifest's, whatever its top level holds.
        log.info("project %s already built in %s", origin, work)
        return project
    store = Path(config.text("WORK_DIR")).resolve() / "content"
    store.mkdir(parents=True, exist_ok=True)
    with cloud_errors(f"fetching the project {origin}"):
        client = make_client("s3", config, pool=config.integer("CURL_MAX_THREADS"))
        projects = ContentStore(client, version.projects)
        manifest = projects.read_manifest(version)
        if manifest is None:
            raise ProjectError(f"The project {origin} does not exist.")
        lacking = {e.hash: e for e in manifest.files if not (store / e.hash).is_file()}
        needed = pieces_where(lacking.values(), lambda digest: not (store / digest).is_file())

        def fetch(item: tuple[str, tuple[Entry, int]]) -> None:
            digest, (entry, index) = item
            what = f"{entry.path} (block {index})" if entry.blocks else entry.path
            partial = store / f"{digest}.partial"
            projects.download(digest, partial)
            check_content(partial, digest, f"The store's copy of {what} in {origin}")

        with ThreadPoolExecutor(PARALLEL) as pool:
            for _ in pool.map(fetch, needed.items()):
                pass
    for entry in lacking.values():
        if entry.blocks:
            assemble_blocks(store, entry.hash, entry.blocks, entry.path)
    log.info(
        "project %s: %d of %s fetched (%d bytes), the rest from the node's cache",
        origin,
        len(lacking),
        counted(len(manifest.files), "file"),
        sum((store / digest).stat().st_size for digest in needed),
    )
    staging = work / (PROJECT_FOLDER + ".staging")
    if staging.exists():
        shutil.rmtree(staging)
    try:
        for entry in manifest.files:
            _link_or_copy(store / entry.hash, staging / entry.path)
        (staging / ".brenda-version").write_text(version.name, encoding="utf-8")
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ProjectError(
            f"Could not build the project {origin} in {staging}: {error.strerror} "
            f"({error.filename})."
        ) from error
    _replace(staging, project)
    trim_content(store, keep={d for e in manifest.files for d in (e.hash, *e.blocks)})
    return project


def check_trusted(version: ProjectVersion, config: Config) -> None:
    """Refuse a project version outside the farm's projects (``FARM_PROJECTS``, else the store
    of the node's own ``BLENDER_PROJECT``) or inside its outputs (``FARM_OUTPUTS``): nodes may
    write outputs, so a task could have put a manifest there for other jobs to render."""
    own = config.get("BLENDER_PROJECT")
    own_version = ProjectVersion.at(own) if isinstance(own, S3Url) else None
    if version == own_version:
        return  # the node's own setting, not a job's
    trusted = config.optional_url("FARM_PROJECTS", S3Url)
    if trusted is None and own_version is not None:
        trusted = own_version.projects
    outputs = config.optional_url("FARM_OUTPUTS", S3Url)
    if trusted is None or not _within(version.projects, trusted):
        raise ProjectError(
            f"The project {version.url} is not under the farm's projects "
            f"(FARM_PROJECTS={trusted or 'unset'}): a node takes project versions from there only."
        )
    if outputs is not None and _within(version.projects, outputs):
        raise ProjectError(
            f"The project {version.url} is under the farm's outputs (FARM_OUTPUTS={outputs}), "
            "which nodes may write: a node takes project versions from FARM_PROJECTS only."
        )


def _within(url: S3Url, folder: S3Url) -> bool:
    return url.bucket == folder.bucket and url.prefix.startswith(folder.prefix)


def _link_or_copy(cached: Path, target: Path) -> None:
    """``target``, a new file of the project, as a hard link to the cached file, or a copy of it
    where the cache is on another file system; never written through an existing file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(cached, target)
        return
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with cached.open("rb") as source, os.fdopen(os.open(target, flags, 0o444), "wb") as copy:
        shutil.copyfileobj(source, copy)


def assemble_blocks(store: Path, digest: str, blocks: Sequence[str], path: str) -> None:
    """A file stored in blocks, put together in the content cache and checked whole."""
    partial = store / f"{digest}.partial"
    with partial.open("wb") as whole:
        for block in blocks:
            with (store / block).open("rb") as piece:
                shutil.copyfileobj(piece, whole)
    check_content(partial, digest, f"{path} assembled from its blocks")


def check_content(partial: Path, digest: str, what: str) -> None:
    """Keep ``partial`` in the content cache as ``digest`` if its bytes hash to it."""

    actual = file_hash(partial)
    if actual != digest:
        partial.unlink()
        raise ProjectError(f"{what} is corrupt: its bytes hash to {actual}, not {digest}.")
    partial.chmod(0o444)
    partial.replace(partial.with_name(digest))


CONTENT_DISK_SHARE = 0.5
"""The node's content cache may fill at most this share of its disk (what it uses plus what is
free); files the project just built uses are never removed."""


def trim_content(store: Path, keep: set[str]) -> None:
    """Remove the least recently stored content the current project does not use, while the
    cache is over its share of the disk."""
    files = [(path.stat().st_mtime, path) for path in store.iterdir() if path.is_file()]
    used = sum(path.stat().st_size for _, path in files)
    room = (shutil.disk_usage(store).free + used) * CONTENT_DISK_SHARE
    for _, path in sorted(files):
        if used <= room:
            return
        if path.name not in keep:
            used -= path.stat().st_size
            path.unlink()


def fetch_project(config: Config, work: Path, volumes: EbsVolumes | None = None) -> Path:
    """The local folder of the configured project, fetched if needed."""
    url = config.get("BLENDER_PROJECT")
    if url is None:
        raise config.missing("BLENDER_PROJECT")
    return fetch_url(url, config, work, volumes)


def fetch_url(url: object, config: Config, work: Path, volumes: EbsVolumes | None = None) -> Path:
    """The local folder of the project at ``url`` (kept in ``work``), fetched if needed."""
    if isinstance(url, FileUrl):
        return fetch_file(url, work)
    version = ProjectVersion.at(url) if isinstance(url, S3Url) else None
    if version is not None:
        return fetch_manifest(version, work, config)
    if isinstance(url, S3Url):
        always = config.flag("BLENDER_PROJECT_ALWAYS_REFETCH")
        return fetch_s3(url, work, config, always=always)
    if isinstance(url, EbsUrl):
        if volumes is None:
            raise ProjectError(f"BLENDER_PROJECT {url} is an EBS snapshot: only a node mounts it.")
        return descend(volumes.mount(url, work / EBS_PROJECT_FOLDER))
    raise config.missing("BLENDER_PROJECT")
