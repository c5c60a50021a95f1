# SPDX-License-Identifier: GPL-3.0-or-later
"""Progress reporting and cancellation for long operations. No bpy module use.

Workers call ``advance`` from any thread; the owner shows the figures however it likes (a rich
progress bar in a terminal, a message queue read by a Blender timer) and may ``cancel`` at any
time; workers call ``check`` between units of work, which then raises ``Cancelled``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import Cancelled


def _ignore(_progress: Progress) -> None:
    return None


@dataclass
class Progress:
    """Units done out of a total for one operation, shared between threads."""

    description: str = ""
    total: int | None = None
    on_change: Callable[[Progress], None] = _ignore
    done: int = 0
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self, description: str, total: int | None) -> None:
        with self._lock:
            self.description = description
            self.total = total
            self.done = 0
        self.on_change(self)
        self.check()

    def advance(self, amount: int = 1) -> None:
        with self._lock:
            self.done += amount
        self.on_change(self)

    def cancel(self) -> None:
        self._cancelled.set()

    def wait_for_cancel(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True as soon as the operation is cancelled."""
        return self._cancelled.wait(timeout)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise Cancelled if the owner cancelled the operation."""
        if self._cancelled.is_set():
            raise Cancelled(f"{self.description or 'The operation'} was cancelled.")
