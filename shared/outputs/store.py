# SPDX-License-Identifier: GPL-3.0-or-later
"""Where rendered frames are stored (``RENDER_OUTPUT``): an S3 prefix or a local folder.

No bpy module use. Names are relative POSIX paths (``frame_000001.png``, ``shot/frame.exr``).
A stored file appears whole or not at all: S3 objects are atomic, and the folder store writes a
hidden temporary file and renames it into place. Brenda's own records (the last error of a task)
live under ``.brenda/`` and are not listed as outputs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from ..aws import s3
from ..aws.session import cloud_errors, make_client
from ..core.config import Config
from ..core.errors import BrendaError, StoreError
from ..core.progress import Progress
from ..core.urls import FileUrl, S3Url, parse_url

RECORDS = ".brenda/"
FAILURES = RECORDS + "failures/"
LEDGERS = RECORDS + "nodes/"
VIDEO_CLAIM = RECORDS + "video-claim.txt"
"""Which node took a farm job's video to encode (stored once: only that node encodes it)."""
VIDEO_SUFFIX = ".mp4"
"""The container of a farm job's video, ``<job id>.mp4`` among its frames."""
REPORT_SUFFIX = "-report.html"
"""A farm job's report, ``<job id>-report.html`` among its frames (``shared.jobs.report``)."""
EVENTS = RECORDS + "events/"
"""Markers of the notifications sent (``shared.jobs.notify``), in each job's outputs."""


class OutputStore(Protocol):
    def put(self, path: Path, name: str, progress: Progress | None = None) -> bool:
        """Store the file ``path`` as ``name``; False where the store keeps what it holds
        (``keep_stored``: a farm of jobs' frames) and ``name`` is stored already."""

    def get(self, name: str, path: Path) -> None:
        """Copy the stored ``name`` to ``path``."""

    def names(self, prefix: str = "") -> list[str]:
        """Stored outputs whose names start with ``prefix``, sorted; Brenda's records (under
        ``.brenda/``) are left out unless ``prefix`` is among them."""

    def put_text(self, name: str, text: str) -> None: ...

    def get_text(self, name: str) -> str | None:
        """The text stored as ``name``, or None if there is none."""


def check_name(name: str) -> str:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name:
        raise BrendaError(f"'{name}' is not a file name inside the render output.")
    return path.as_posix()


class FolderStore:
    """Outputs in a local folder (``file:///path``)."""

    def __init__(self, root: Path, *, keep_stored: bool = False) -> None:
        self.root = root
        self.keep_stored = keep_stored

    def __str__(self) -> str:
        return f"file://{self.root}"

    def _target(self, name: str) -> Path:
        return self.root / check_name(name)

    def put(self, path: Path, name: str, progress: Progress | None = None) -> bool:
        stored = self._write(path, name, keep=self.keep_stored)
        if stored and progress is not None:
            progress.advance(self._target(name).stat().st_size)
        return stored

    def _write(self, path: Path, name: str, *, keep: bool) -> bool:
        """Copy ``path`` beside its target, then move it into place (``keep``: link it, which
        fails where the target exists, so that what is stored stays)."""
        target = self._target(name)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".partial-", dir=target.parent)
            os.close(handle)
            try:
                shutil.copyfile(path, temporary)
                if not keep:
                    os.replace(temporary, target)
                    return True
                try:
                    os.link(temporary, target)
                except FileExistsError:
                    return False
                return True
            finally:
                Path(temporary).unlink(missing_ok=True)
        except OSError as error:
            raise StoreError(
                f"Could not store {name} in {self}: {error.strerror or error}."
            ) from error

    def get(self, name: str, path: Path) -> None:
        try:
            shutil.copyfile(self._target(name), path)
        except OSError as error:
            raise StoreError(
                f"Could not read {name} from {self}: {error.strerror or error}."
            ) from error

    def names(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.rglob("*"):
            name = path.relative_to(self.root).as_posix()
            if (
                path.is_file()
                and name.startswith(prefix)
                and (prefix.startswith(RECORDS) or not name.startswith(RECORDS))
                and not path.name.startswith(".partial-")
            ):
                found.append(name)
        return sorted(found)

    def put_text(self, name: str, text: str) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            source = Path(scratch) / "text"
            source.write_text(text, encoding="utf-8")
            self._write(source, name, keep=False)

    def get_text(self, name: str) -> str | None:
        target = self._target(name)
        return target.read_text(encoding="utf-8") if target.is_file() else None


class S3Store:
    """Outputs under an S3 prefix (``s3://bucket/prefix``)."""

    def __init__(
        self, client: Any, url: S3Url, *, concurrency: int = 10, keep_stored: bool = False
    ) -> None:
        self.client = client
        self.url = url
        self.concurrency = concurrency
        self.keep_stored = keep_stored

    def __str__(self) -> str:
        return str(self.url)

    def put(self, path: Path, name: str, progress: Progress | None = None) -> bool:

        key = self.url.key(check_name(name))
        with cloud_errors(f"storing {name} in {self.url}"):
            return s3.upload_file(
                self.client,
                path,
                self.url.bucket,
                key,
                progress,
                concurrency=self.concurrency,
                only_new=self.keep_stored,
            )

    def get(self, name: str, path: Path) -> None:

        with cloud_errors(f"fetching {name} from {self.url}"):
            s3.download_file(
                self.client,
                self.url.bucket,
                self.url.key(check_name(name)),
                path,
                concurrency=self.concurrency,
            )

    def names(self, prefix: str = "") -> list[str]:

        start = len(self.url.prefix)
        with cloud_errors(f"listing {self.url}"):
            keys = [
                item.key[start:]
                for item in s3.list_objects(self.client, self.url.bucket, self.url.key(prefix))
            ]
        if prefix.startswith(RECORDS):
            return sorted(keys)
        return sorted(key for key in keys if not key.startswith(RECORDS))

    def put_text(self, name: str, text: str) -> None:

        with cloud_errors(f"storing {name} in {self.url}"):
            s3.write_text(self.client, self.url.bucket, self.url.key(check_name(name)), text)

    def get_text(self, name: str) -> str | None:

        with cloud_errors(f"reading {name} from {self.url}"):
            return s3.read_text(self.client, self.url.bucket, self.url.key(check_name(name)))


def open_store(config: Config, *, concurrency: int = 10) -> FolderStore | S3Store:
    """The configured RENDER_OUTPUT."""
    url = config.get("RENDER_OUTPUT")
    if not isinstance(url, FileUrl | S3Url):
        raise config.missing("RENDER_OUTPUT")
    return _store(config, url, concurrency)


def open_store_at(
    config: Config, url: str, *, concurrency: int = 10, keep_stored: bool = False
) -> FolderStore | S3Store:
    """The store at ``url`` (a job's output), with the configuration's connection settings;
    ``keep_stored``: a file is stored once, never replaced (a job's frames)."""
    parsed = parse_url(url, allowed=("s3", "file"))
    assert isinstance(parsed, FileUrl | S3Url)
    return _store(config, parsed, concurrency, keep_stored=keep_stored)


def _store(
    config: Config, parsed: FileUrl | S3Url, concurrency: int, *, keep_stored: bool = False
) -> FolderStore | S3Store:
    if isinstance(parsed, FileUrl):
        return FolderStore(parsed.path, keep_stored=keep_stored)
    with cloud_errors("connecting to S3"):
        client = make_client("s3", config, pool=max(10, concurrency))
    return S3Store(client, parsed, concurrency=concurrency, keep_stored=keep_stored)


def failure_name(message_id: str) -> str:
    return f"{FAILURES}{message_id}.txt"
