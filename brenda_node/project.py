# SPDX-License-Identifier: GPL-3.0-or-later
"""Fetch the project (``BLENDER_PROJECT``) into the node's work folder. No bpy module use.

``s3://bucket/key``  a tarball or zip, downloaded once per ETag and extracted;
``file:///path``     a folder used where it is, or a tarball or zip extracted like an S3 one;
``ebs://snapshot``   an EBS volume made from the snapshot, mounted read-only (see ``ebs``).

Archives are checked before anything is written: members with absolute paths, ``..`` parts,
links that point outside the project, or device files are refused, and a damaged or truncated
archive is an error. Extraction goes to a staging folder that replaces the project only once
complete, so a failed fetch leaves the previous project (or none) and nothing half-written.
Like the original, a project whose top level holds a single folder (``tar czf p.tgz myproject``)
is that folder.
"""

from __future__ import annotations

import logging
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from shared.config import Config
from shared.errors import BrendaError
from shared.urls import EbsUrl, FileUrl, S3Url

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


def _member_problem(name: str, link_target: str | None, *, hard_link: bool = False) -> str | None:
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if ".." in path.parts:
        return "climbs out of the project with '..'"
    if link_target is None:
        return None
    target = PurePosixPath(link_target)
    outside = f"is a link to {link_target}, outside the project"
    if target.is_absolute():
        return outside
    # A symbolic link is relative to its folder; a tar hard link names a member from the top.
    depth = 0 if hard_link else len(path.parent.parts)
    for part in target.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return outside
    return None


def check_tar(archive: tarfile.TarFile, origin: str) -> None:
    for member in archive.getmembers():
        link = member.linkname if (member.issym() or member.islnk()) else None
        problem = _member_problem(member.name, link, hard_link=member.islnk())
        if problem is None and not (member.isfile() or member.isdir() or link is not None):
            problem = "is a device or other special file"
        if problem is not None:
            raise ProjectError(f"Project archive {origin} is unsafe: '{member.name}' {problem}.")


def check_zip(archive: zipfile.ZipFile, origin: str) -> None:
    for info in archive.infolist():
        mode = info.external_attr >> 16
        link = archive.read(info).decode("utf-8", "replace") if stat.S_ISLNK(mode) else None
        problem = _member_problem(info.filename, link)
        if problem is not None:
            raise ProjectError(f"Project archive {origin} is unsafe: '{info.filename}' {problem}.")


def extract(archive: Path, target: Path, *, origin: str) -> None:
    """Extract ``archive`` into the new folder ``target`` after checking every member."""
    target.mkdir(parents=True)
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as bundle:
                check_zip(bundle, origin)
                bundle.extractall(target)
        else:
            with tarfile.open(archive) as bundle:
                check_tar(bundle, origin)
                bundle.extractall(target, filter="data")
    except ProjectError:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise ProjectError(
            f"Project archive {origin} is damaged or truncated and cannot be extracted ({error})."
        ) from error


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
    from shared.aws import s3
    from shared.aws.session import cloud_errors, make_client

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


def fetch_project(config: Config, work: Path, volumes: EbsVolumes | None = None) -> Path:
    """The local folder of the configured project, fetched if needed."""
    url = config.get("BLENDER_PROJECT")
    if url is None:
        raise config.missing("BLENDER_PROJECT")
    if isinstance(url, FileUrl):
        return fetch_file(url, work)
    if isinstance(url, S3Url):
        always = bool(config.flag("BLENDER_PROJECT_ALWAYS_REFETCH"))
        return fetch_s3(url, work, config, always=always)
    if isinstance(url, EbsUrl):
        if volumes is None:
            raise ProjectError(f"BLENDER_PROJECT {url} is an EBS snapshot: only a node mounts it.")
        return descend(volumes.mount(url, work / EBS_PROJECT_FOLDER))
    raise config.missing("BLENDER_PROJECT")
