# SPDX-License-Identifier: GPL-3.0-or-later
"""Long work off Blender's main thread. The worker thread never touches bpy: it reports through
a ``Progress`` (bytes or items done), and the operator's modal timer copies that into the UI;
Esc cancels through the same ``Progress``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .shared.core.errors import BrendaError
from .shared.core.progress import Progress


@dataclass
class BackgroundWork:
    """One function running in a thread, with its progress, result and error."""

    work: Callable[[Progress], Any]
    progress: Progress = field(default_factory=Progress)
    result: Any = None
    error: BrendaError | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="brenda-addon-work", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self.work(self.progress)
        except BrendaError as error:
            self.error = error
        except Exception as error:  # a bug: say so in one line instead of losing it in a thread
            self.error = BrendaError(f"Brenda failed unexpectedly: {type(error).__name__}: {error}")

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    @property
    def fraction(self) -> float:
        total = self.progress.total
        return min(1.0, self.progress.done / total) if total else 0.0
