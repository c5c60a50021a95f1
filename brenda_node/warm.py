# SPDX-License-Identifier: GPL-3.0-or-later
"""Warm Blender: one Blender process kept loaded with a .blend, rendering task after task.

No bpy module use. Loading Blender and the file often costs as much as rendering a frame; a warm
process pays it once per (project, its version, .blend, scene, Python allowed, Blender). The
render script's ``serve`` mode reads one task's JSON per line on stdin and answers
``BRENDA-TASK-DONE`` once its frames are written. The process is replaced when a task needs
another file or another version of it (the project was fetched again, or a file:// folder's
.blend was saved again: a warm process would render the file it loaded), after any failure or
stop (it is killed with its process group, as a cold Blender is), after ``WARM_TASKS`` tasks, and
when its memory passes ``WARM_MEMORY``. A node keeps at most one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shared.core.errors import BrendaError

from .processes import kill_group, stop_process_group
from .project import fetched_version

log = logging.getLogger(__name__)

CLOSE_GRACE_SECONDS = 5.0
"""How long a warm Blender may take to exit once its stdin is closed."""


@dataclass(frozen=True)
class WarmKey:
    """What a warm process has loaded: tasks with another key need another process."""

    project: Path
    version: str
    """The project's version and the .blend's identity on disk (``project_version``)."""
    blend: Path
    scene: str | None
    allow_python: bool
    blender: Path
    """The launcher of the Blender it runs (one per version)."""


def project_version(project: Path, blend: Path) -> str:
    """What tells the loaded file from a newer one at the same place: the version the project
    was fetched as (its ETag or manifest hash: a texture may change alone), and the .blend's
    file on disk, which a new fetch or a save in a file:// folder replaces or rewrites."""
    try:
        info = blend.stat()
    except OSError:
        return "no .blend"  # the Blender started for it says what is missing
    fetched = fetched_version(project) or "a folder used where it is"
    return f"{fetched}; .blend inode {info.st_ino}, {info.st_size} bytes, {info.st_mtime_ns} ns"


@dataclass
class WarmBlender:
    """A running Blender in serve mode, its output lines read into a queue (None: it ended)."""

    key: WarmKey
    process: subprocess.Popen[bytes]
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    tasks: int = 0

    @classmethod
    def start(cls, key: WarmKey, command: Sequence[str], environ: Mapping[str, str]) -> WarmBlender:
        try:
            process = subprocess.Popen(
                list(command),
                cwd=key.project,
                env=dict(environ),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            raise BrendaError(f"Could not start {command[0]}: {error.strerror}.") from error
        warm = cls(key, process)
        threading.Thread(target=warm._read, name="brenda-warm-output", daemon=True).start()
        log.info("warm Blender %d started for %s", process.pid, key.blend.name)
        return warm

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip())
        self.lines.put(None)

    def send(self, line: str) -> bool:
        """Hand it a task; False if it is gone."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(line.encode() + b"\n")
            self.process.stdin.flush()
        except OSError:
            return False
        return True

    def memory_bytes(self) -> int:
        """Its resident memory (0 when unknown)."""
        with contextlib.suppress(OSError, ValueError):
            status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="utf-8")
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def close(self) -> None:
        """End it: stdin closed (it exits after its task), then its group killed after a grace."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=CLOSE_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("warm Blender %d did not exit: killed", self.process.pid)
        kill_group(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=CLOSE_GRACE_SECONDS)


class WarmPool:
    """The node's one warm Blender, shared by every job's runner."""

    def __init__(self, max_tasks: int, max_memory: int) -> None:
        self.max_tasks = max_tasks
        self.max_memory = max_memory
        self.current: WarmBlender | None = None

    def take(self, key: WarmKey, command: Sequence[str], environ: Mapping[str, str]) -> WarmBlender:
        """The warm process for ``key``: the current one if it has that key and still runs."""
        current = self.current
        if current is not None and (current.key != key or current.process.poll() is not None):
            self.discard()
        if self.current is None:
            self.current = WarmBlender.start(key, command, environ)
        return self.current

    def finished(self, warm: WarmBlender) -> None:
        """A task succeeded on ``warm``: keep it unless it did enough tasks or grew too big."""
        warm.tasks += 1
        memory = warm.memory_bytes()
        if warm.tasks >= self.max_tasks or (self.max_memory and memory > self.max_memory):
            log.info(
                "warm Blender %d replaced after %d tasks (%d MB)",
                warm.process.pid,
                warm.tasks,
                memory >> 20,
            )
            self.discard()

    def discard(self) -> None:
        """End the current one, letting it finish what it is doing first."""
        if self.current is not None:
            self.current.close()
            self.current = None

    def kill(self) -> None:
        """Stop the current one at once (its task is stopped), with its process group."""
        if self.current is not None:
            stop_process_group(self.current.process)
            self.current = None


def default_memory_limit() -> int:
    """Half of this machine's memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
