# SPDX-License-Identifier: GPL-3.0-or-later
"""Waits between retries of errors that are not the task's. No bpy module use."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from shared.core.config import Config
from shared.core.errors import BrendaError

log = logging.getLogger(__name__)


class Backoff:
    """Waits between retries of errors that are not the task's: the network, AWS, the store.

    Pauses start at ``FIRST_PAUSE`` and double up to ``ERROR_PAUSE``, each drawn between half and
    all of that (jitter, so nodes cut off together do not come back in step); a success resets
    them. A node gives up only after ``N_RETRIES`` failures in a row spanning ``RESET_PERIOD``
    seconds (an hour by default), so it rides out a long outage and scattered errors never add up.
    """

    FIRST_PAUSE = 1.0

    def __init__(
        self, config: Config, stop: threading.Event, *, draw: Callable[[], float] = random.random
    ) -> None:
        self.limit = config.integer("N_RETRIES")
        self.longest = float(config.integer("ERROR_PAUSE"))
        self.period = config.integer("RESET_PERIOD")
        self.stop = stop
        self.draw = draw
        self.failures = 0
        self.since = 0.0

    def pause(self) -> float:
        """The pause after the current run of failures."""
        ceiling = min(self.longest, self.FIRST_PAUSE * float(2 ** min(self.failures - 1, 30)))
        return ceiling * (0.5 + 0.5 * self.draw())

    def succeeded(self) -> None:
        self.failures = 0

    def failed(self, error: BrendaError, *, give_up: bool = True) -> None:
        """Count a failure and pause (less if the node stops); with ``give_up``, raise once the
        failures have lasted ``RESET_PERIOD`` seconds and number at least ``N_RETRIES``."""
        now = time.monotonic()
        if self.failures == 0:
            self.since = now
        self.failures += 1
        lasted = now - self.since
        if give_up and self.failures >= self.limit and lasted >= self.period:
            raise BrendaError(
                f"Giving up after {self.failures} failures in a row over {lasted:.0f} s: {error}"
            )
        pause = self.pause()
        log.warning("retry %d in %.1f s: %s", self.failures, pause, error)
        self.stop.wait(pause)
