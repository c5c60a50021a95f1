# SPDX-License-Identifier: GPL-3.0-or-later
"""A node's ledger of one job: what it is working on and what each task took and cost (the
format is ``shared.jobs.costs.Ledger``). No bpy module use."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

from shared.core.errors import CloudError, StoreError
from shared.jobs.costs import Ledger, Machine, TaskCost, ledger_name
from shared.outputs.store import OutputStore
from shared.tasks.task import Task

log = logging.getLogger(__name__)


class LedgerWriter:
    """This node run's ledger of one job, in the job's output store; rewritten whole at each
    change, so a write the store refused is made good by the next."""

    def __init__(
        self, store: OutputStore, owner: str | None, node: str, machine: Machine, started: float
    ) -> None:
        self.store = store
        self.ledger = Ledger(node, machine)
        self.name = ledger_name(owner, node, started)
        self._lock = threading.Lock()

    def working_on(self, task: str, *, since: float, dollars_per_hour: float | None) -> None:
        with self._lock:
            self.ledger.working_on = task
            self.ledger.working_since = since
            self.ledger.dollars_per_hour = dollars_per_hour
            self._write()

    def add(self, cost: TaskCost, outcome: str) -> None:
        """Record a finished task (stored, failed or given back); the node is no longer on the
        job unless it began another of its tasks. Only stored tasks' frames count."""
        stored = outcome == "stored"
        with self._lock:
            self.ledger.tasks.append(replace(cost, outcome=outcome, frames=cost.frames * stored))
            if self.ledger.working_on == cost.task:
                self.ledger.working_on = self.ledger.working_since = None
            self._write()

    def _write(self) -> None:
        self.ledger.updated = time.time()
        try:
            self.store.put_text(self.name, self.ledger.to_json())
        except (CloudError, StoreError) as problem:
            log.warning(
                "ledger %s not written now (the next write makes it good): %s", self.name, problem
            )


def frames_of(task: Task) -> float:
    """The frames a task renders; a tile counts as its share of its frames."""
    frames = float(len(task.chunk.frames()))
    tile = task.tile
    if tile is not None:
        frames *= (tile.max_x - tile.min_x) * (tile.max_y - tile.min_y)
    return frames
