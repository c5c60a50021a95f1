# SPDX-License-Identifier: GPL-3.0-or-later
"""The projects of a node serving its farm's jobs: one folder per project URL under
``WORK_DIR/projects``, checked by content at each fetch (ETag, or size and time for files), so
jobs of one project share one fetch. The last few stay on disk, fewer when they are big; the
least recently used go first, the one in use never. No bpy module use."""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from pathlib import Path

from shared.core.config import Config
from shared.core.urls import parse_url

from .project import fetch_url

log = logging.getLogger(__name__)

JOB_PROJECTS_KEPT = 3
PROJECTS_DISK_SHARE = 0.5
"""Kept projects may fill at most this share of the work disk (what they use plus what is free);
the least recently used go first, the one in use never."""


def folder_bytes(folder: Path) -> int:
    """What the files under ``folder`` take (links not followed)."""
    return sum(
        path.lstat().st_size
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink()
    )


class ProjectCache:
    """Project folders under ``folder``, each named after its project's URL."""

    def __init__(self, folder: Path, config: Config) -> None:
        self.folder = folder
        self.config = config
        self._used: dict[str, float] = {}
        """Project folders on disk (named after their URL) to when a task last used them."""

    @staticmethod
    def name_of(url: str) -> str:
        """The folder name of the project at ``url``."""
        return hashlib.sha256(url.encode()).hexdigest()[:16]

    def use(self, url: str) -> str:
        """The project at ``url`` is used now (it goes last in eviction order); its folder name."""
        name = self.name_of(url)
        self._used[name] = time.monotonic()
        return name

    def fetch(self, url: str) -> Path:
        """The project at ``url`` on disk: fetched unless its folder holds it unchanged."""
        folder = self.folder / self.use(url)
        folder.mkdir(parents=True, exist_ok=True)
        return fetch_url(parse_url(url, allowed=("s3", "file")), self.config, folder)

    def evict(self, keep: str) -> list[str]:
        """Remove the least recently used projects beyond JOB_PROJECTS_KEPT, or beyond
        PROJECTS_DISK_SHARE of the work disk; never ``keep``. The names of those removed."""
        sizes = {name: folder_bytes(self.folder / name) for name in self._used}
        room = (shutil.disk_usage(self.folder).free + sum(sizes.values())) * PROJECTS_DISK_SHARE
        removed: list[str] = []
        for name in sorted(self._used, key=self._used.__getitem__):
            if len(sizes) <= JOB_PROJECTS_KEPT and sum(sizes.values()) <= room:
                break
            if name == keep:
                continue
            log.info("project folder %s removed to make room", name)
            shutil.rmtree(self.folder / name, ignore_errors=True)
            del self._used[name], sizes[name]
            removed.append(name)
        return removed
