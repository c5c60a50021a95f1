# SPDX-License-Identifier: GPL-3.0-or-later
"""The node's files in its work folder: ``DONE``, ``task_count``, ``task_last`` and
``status.json`` (what the node is doing, for progress displays). No bpy module use."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DONE_MODES = ("exit", "shutdown", "poll")
STATUS_INTERVAL = 0.5


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


@dataclass
class NodeState:
    """The node's files in its work folder, as the original kept them: ``DONE`` (read again at
    every idle decision, so it can be changed live), ``task_count``, ``task_last``; plus
    ``status.json`` with what the node is doing, for progress displays."""

    folder: Path
    tasks_done: int = 0
    render_seconds: float = 0.0
    activity: dict[str, Any] = field(default_factory=dict)
    _written: float = 0.0
    _held_back: threading.Timer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, done_mode: str) -> None:
        for name in ("task_count", "task_last"):
            (self.folder / name).unlink(missing_ok=True)
        write_atomically(self.folder / "DONE", done_mode + "\n")
        self.show(state="starting")

    def done_mode(self) -> str:
        try:
            mode = (self.folder / "DONE").read_text(encoding="utf-8").strip()
        except OSError:
            return "exit"
        if mode not in DONE_MODES:
            log.warning("DONE file says '%s', not one of %s: exiting", mode, ", ".join(DONE_MODES))
            return "exit"
        return mode

    def task_stored(self, render_seconds: float) -> None:
        with self._lock:
            self.tasks_done += 1
            self.render_seconds += render_seconds
            try:
                write_atomically(self.folder / "task_count", f"{self.tasks_done}\n")
                write_atomically(self.folder / "task_last", f"{int(time.time())}\n")
            except OSError as error:
                log.warning("task_count not written: %s", error.strerror or error)
        self.show(force=True)

    def show(self, *, force: bool = True, **activity: Any) -> None:
        """Record what the node does now; writes at most every STATUS_INTERVAL unless forced.

        A change held back by the interval is written when it ends, so the last progress line
        of a quiet stretch (Blender reports samples in bursts) still reaches status.json."""
        with self._lock:
            self.activity.update(activity)
            wait = self._written + STATUS_INTERVAL - time.monotonic()
            if not force and wait > 0:
                if self._held_back is None:
                    self._held_back = threading.Timer(wait, self._write_held_back)
                    self._held_back.daemon = True
                    self._held_back.start()
                return
            self._write()

    def _write_held_back(self) -> None:
        with self._lock:
            self._held_back = None
            self._write()

    def _write(self) -> None:
        """Write status.json; the caller holds the lock."""
        if self._held_back is not None:
            self._held_back.cancel()
            self._held_back = None
        self._written = time.monotonic()
        status = {
            **self.activity,
            "pid": os.getpid(),
            "tasks_done": self.tasks_done,
            "render_seconds": round(self.render_seconds, 3),
        }
        try:
            write_atomically(self.folder / "status.json", json.dumps(status))
        except OSError as error:
            # Only a display: a full disk is noticed where it matters, at the next task.
            log.warning("status.json not written: %s", error.strerror or error)
