# SPDX-License-Identifier: GPL-3.0-or-later
"""Blender releases a node fetches from the farm's store when it lacks a job's version. No bpy
module use.

The newest stored release of the series a task needs is downloaded once into the work disk's
``blenders/`` folder, checked against the digest stored beside it, unpacked with tarfile's
``data`` filter (no absolute paths, ``..``, devices or links leaving the folder; a release's
libraries may be chains of links, which the project archives' stricter check refuses), and kept:
later tasks of that version, and later runs of the node, find it there.
"""

from __future__ import annotations

import hashlib
import logging
import lzma
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from shared.aws import s3
from shared.aws.session import cloud_errors, make_client
from shared.core.config import Config
from shared.core.errors import BrendaError
from shared.core.urls import S3Url
from shared.farm.releases import DIGEST_SUFFIX, StoredRelease, releases_url, stored_releases

from .project import descend

log = logging.getLogger(__name__)

UNPACKED_MARK = ".brenda-release"
"""Written into a release's folder once it is whole, with its digest."""


@dataclass(frozen=True)
class Releases:
    """The farm's store of Blender releases, and where this node unpacks them."""

    config: Config
    store: S3Url
    folder: Path

    @classmethod
    def of(cls, config: Config, folder: Path) -> Releases | None:
        url = releases_url(config)
        return None if url is None else cls(config, url, folder)

    def describe(self) -> str:
        return f"s3://{self.store.bucket}/{self.store.prefix}"

    def program(self, series: str) -> Path | None:
        """The ``blender`` program of the newest stored release of ``series``, fetched and
        unpacked once; None when the store holds none."""

        with cloud_errors(f"looking for Blender {series} in {self.describe()}"):
            client = make_client("s3", self.config)
            releases = stored_releases(client, self.store, series)
            if not releases:
                return None
            release = releases[0]
            unpacked = self.folder / release.version
            if not (unpacked / UNPACKED_MARK).is_file():
                self._fetch(client, release, unpacked)
        program = descend(unpacked) / "blender"
        if not program.is_file():
            raise BrendaError(f"The Blender {release.version} release holds no blender program.")
        return program

    def _fetch(self, client: object, release: StoredRelease, unpacked: Path) -> None:

        origin = f"s3://{self.store.bucket}/{release.key}"
        wanted = s3.read_text(client, self.store.bucket, release.key + DIGEST_SUFFIX)
        if wanted is None:
            raise BrendaError(f"{origin} has no {DIGEST_SUFFIX} beside it: it cannot be checked.")
        self.folder.mkdir(parents=True, exist_ok=True)
        archive = self.folder / f".{release.version}.tar.xz"
        log.info("fetching Blender %s from %s", release.version, origin)
        try:
            s3.download_file(client, self.store.bucket, release.key, archive)
            with archive.open("rb") as source:
                found = hashlib.file_digest(source, "sha256").hexdigest()
            if found != wanted.strip():
                raise BrendaError(
                    f"{origin} does not match its SHA-256 ({found}, not {wanted.strip()})."
                )
            partial = self.folder / f".{release.version}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            try:
                with tarfile.open(archive) as bundle:
                    bundle.extractall(partial, filter="data")
            except (tarfile.TarError, OSError, EOFError, lzma.LZMAError) as error:
                shutil.rmtree(partial, ignore_errors=True)
                raise BrendaError(f"{origin} cannot be unpacked: {error}.") from error
            (partial / UNPACKED_MARK).write_text(found, encoding="utf-8")
            shutil.rmtree(unpacked, ignore_errors=True)
            partial.rename(unpacked)
        finally:
            archive.unlink(missing_ok=True)
        log.info("Blender %s is ready in %s", release.version, unpacked)
