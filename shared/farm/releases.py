# SPDX-License-Identifier: GPL-3.0-or-later
"""Official Blender releases in the farm's store, for nodes that lack a job's version. No bpy
module use.

``brenda-run blender add VERSION`` downloads the Linux release from download.blender.org
(``BLENDER_DOWNLOAD_URL``), checks it against the SHA-256 that blender.org publishes beside it,
and stores it under ``BLENDER_RELEASES`` (by default ``FARM_PROJECTS/blender/``, which nodes may
already read) with its digest beside it: ``blender-5.2.4-linux-x64.tar.xz`` and
``blender-5.2.4-linux-x64.tar.xz.sha256``. A node fetches the newest stored release of the
series it needs once, checks the digest again and unpacks it on its work disk.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..aws import s3
from ..aws.session import cloud_errors, make_client
from ..core.blend_header import series as blender_series
from ..core.blend_header import version_key
from ..core.config import Config
from ..core.errors import BrendaError, UsageError
from ..core.http import http_session
from ..core.progress import Progress
from ..core.urls import S3Url

log = logging.getLogger(__name__)

PLATFORM = "linux-x64"
RELEASES_FOLDER = "blender/"
"""Where releases go under FARM_PROJECTS when BLENDER_RELEASES is not set."""
DIGEST_SUFFIX = ".sha256"
DOWNLOAD_CHUNK = 1 << 20
DOWNLOAD_TIMEOUT = (10, 120)
"""Seconds to connect and between bytes while downloading a release."""
RELEASE_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
"""A Blender release's version, like 5.2.4."""
_ARCHIVE = re.compile(rf"^blender-(\d+\.\d+\.\d+)-{PLATFORM}\.tar\.xz$")


def archive_name(version: str) -> str:
    return f"blender-{version}-{PLATFORM}.tar.xz"


def releases_url(config: Config) -> S3Url | None:
    """Where the farm keeps its Blender releases; None when it has no store."""
    configured = config.optional_url("BLENDER_RELEASES", S3Url)
    if configured is not None:
        return configured
    projects = config.optional_url("FARM_PROJECTS", S3Url)
    return None if projects is None else S3Url(projects.bucket, projects.prefix + RELEASES_FOLDER)


@dataclass(frozen=True)
class StoredRelease:
    version: str
    key: str
    """The archive's key; its digest is at ``key + DIGEST_SUFFIX``."""


def stored_releases(client: Any, url: S3Url, series: str) -> list[StoredRelease]:
    """The releases of ``series`` (major.minor) in the store, newest first."""

    found = []
    for item in s3.list_objects(client, url.bucket, f"{url.prefix}blender-{series}."):
        match = _ARCHIVE.match(item.key[len(url.prefix) :])
        if match is not None and blender_series(match.group(1)) == series:
            found.append(StoredRelease(match.group(1), item.key))
    return sorted(found, key=lambda release: version_key(release.version), reverse=True)


def published_digest(config: Config, version: str) -> str:
    """The SHA-256 blender.org publishes for the Linux release of ``version``."""

    name = archive_name(version)
    url = f"{_release_folder(config, version)}/blender-{version}{DIGEST_SUFFIX}"
    try:
        response = http_session().get(url, timeout=DOWNLOAD_TIMEOUT)
    except OSError as error:
        raise BrendaError(f"Could not read {url}: {error}.") from error
    if response.status_code == 404:
        raise BrendaError(f"Blender {version} has no published checksums ({url} is not there).")
    if not response.ok:
        raise BrendaError(f"Could not read {url}: HTTP {response.status_code}.")
    for line in response.text.splitlines():
        digest, _, file_name = line.strip().partition("  ")
        if file_name.strip() == name and re.fullmatch(r"[0-9a-f]{64}", digest):
            return digest
    raise BrendaError(f"{url} lists no SHA-256 for {name}.")


def _release_folder(config: Config, version: str) -> str:
    base = config.text("BLENDER_DOWNLOAD_URL").rstrip("/")
    major, minor, _ = version.split(".")
    return f"{base}/Blender{major}.{minor}"


def _download(url: str, target: Path, progress: Progress) -> str:
    """Download ``url`` into ``target``; its SHA-256."""

    digest = hashlib.sha256()
    try:
        with http_session().get(url, stream=True, timeout=DOWNLOAD_TIMEOUT) as response:
            if not response.ok:
                raise BrendaError(f"Could not download {url}: HTTP {response.status_code}.")
            size = int(response.headers.get("Content-Length", 0)) or None
            progress.start(f"Downloading {url.rsplit('/', 1)[-1]}", size)
            with target.open("wb") as written:
                for piece in response.iter_content(DOWNLOAD_CHUNK):
                    progress.check()
                    written.write(piece)
                    digest.update(piece)
                    progress.advance(len(piece))
    except OSError as error:
        raise BrendaError(f"Could not download {url}: {error}.") from error
    return digest.hexdigest()


def add_release(config: Config, version: str, progress: Progress, *, dry_run: bool) -> str:
    """Put the official Linux release of Blender ``version`` in the farm's store, checked; the
    stored archive's URL (what would be stored, with ``dry_run``)."""
    if RELEASE_VERSION.match(version) is None:
        raise UsageError(f"'{version}' is not a Blender release version like 5.2.4.")
    url = releases_url(config)
    if url is None:
        raise config.missing("FARM_PROJECTS")
    key = f"{url.prefix}{archive_name(version)}"
    stored = f"s3://{url.bucket}/{key}"
    source = f"{_release_folder(config, version)}/{archive_name(version)}"
    if dry_run:
        return f"would download {source}, check its SHA-256 and store it as {stored}"
    wanted = published_digest(config, version)

    with tempfile.TemporaryDirectory(prefix="brenda-release-") as scratch:
        archive = Path(scratch) / archive_name(version)
        found = _download(source, archive, progress)
        if found != wanted:
            raise BrendaError(
                f"{source} does not match the SHA-256 blender.org publishes ({found} is not "
                f"{wanted}): nothing was stored."
            )
        with cloud_errors(f"storing Blender {version} in s3://{url.bucket}/{url.prefix}"):
            client = make_client("s3", config)
            s3.upload_file(client, archive, url.bucket, key, progress)
            s3.write_text(client, url.bucket, key + DIGEST_SUFFIX, wanted)
    log.info("stored Blender %s as %s", version, stored)
    return stored
