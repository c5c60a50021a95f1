# SPDX-License-Identifier: GPL-3.0-or-later
"""The add-on's view of its farm's jobs, read off Blender's main thread. No bpy module use.

A refresh costs one LIST of the job records (and a GET per changed record), then per job its
report (a LIST of its output, its queue's counts, a GET per changed ledger: see
``JobRegistry.report``), and the newest frames of the job being looked at, each downloaded once,
for thumbnails, and its failures as ``brenda-work show`` reads them (a LIST of its failure notes,
a GET per new note, and its dead-lettered tasks when it has some). The add-on refreshes every 5 s
while a job renders and its panel is being drawn, and backs off, doubling to 5 minutes, while
Blender sits idle (the panel not drawn since the last refresh) or no job renders. Each refresh also
reads the farm's self-sizing fleet, if it has one (two Auto Scaling calls: its group and its latest
activities).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from ..core.config import Config
from ..core.errors import BrendaError
from ..core.progress import Progress
from ..farm.autoscale import group_state
from ..jobs.details import FailureReader
from ..jobs.registry import REPORT_COLUMNS, JobRegistry, JobState, frame_names, report_row
from ..outputs.store import open_store_at

log = logging.getLogger(__name__)

THUMBNAILS = 3


@dataclass(frozen=True)
class JobView:
    """One job as the panel shows it."""

    id: str
    state: JobState
    priority: int
    frames: int
    stored: int
    row: tuple[str, ...]
    """Its ``brenda-work jobs`` line (``REPORT_COLUMNS``)."""
    latest: tuple[Path, ...] = ()
    """Its newest stored frames on this machine, newest first (for the job looked at)."""
    details: tuple[str, ...] = ()
    """The job in full as ``brenda-work show`` prints it, failures and their errors included
    (for the job looked at)."""

    @property
    def rendering(self) -> bool:
        return self.state == JobState.ACTIVE and self.stored < self.frames

    @property
    def summary(self) -> str:
        """Its tasks, nodes, cost and ETA in a line."""
        cell = dict(zip(REPORT_COLUMNS, self.row, strict=True))
        return (
            f"{cell['waiting']} waiting, {cell['running']} rendering, {cell['failed']} failed; "
            f"{cell['nodes']} nodes; {cell['cost']} so far, {cell['per frame']} a frame, "
            f"{cell['projected']} in all; ETA {cell['ETA']}"
        )


@dataclass(frozen=True)
class FarmView:
    """What a refresh read: the jobs, and the fleet's lines (none without a fleet)."""

    jobs: list[JobView]
    fleet: tuple[str, ...] = ()


class FarmMonitor:
    """Reads the farm's jobs for the add-on; keeps what it read to read only what changed."""

    def __init__(self, config: Config, thumbnails: Path) -> None:
        self.config = config
        self.registry = JobRegistry(config)
        self.thumbnails = thumbnails
        self.failures = FailureReader(self.registry)
        self._lock = threading.Lock()

    def refresh(self, selected: str, progress: Progress) -> list[JobView]:
        """Every job of the farm, newest first; the newest frames of ``selected`` (else of the
        newest job) fetched for thumbnails."""
        with self._lock:  # the timer's thread and the Refresh button share the caches
            return self._refresh(selected, progress)

    def read(self, selected: str, progress: Progress) -> FarmView:
        """The jobs as ``refresh`` reads them, and the farm's fleet as ``brenda-run status``
        shows it (a fleet that cannot be read is left out: the jobs still show)."""
        jobs = self.refresh(selected, progress)
        try:
            group = group_state(self.config)
        except BrendaError as error:
            log.warning("the farm's fleet cannot be shown: %s", error)
            return FarmView(jobs)
        return FarmView(jobs, tuple(group.lines()) if group else ())

    def _refresh(self, selected: str, progress: Progress) -> list[JobView]:
        jobs = self.registry.jobs()
        if selected not in {job.id for job in jobs} and jobs:
            selected = jobs[0].id
        progress.start("Reading the farm's jobs", len(jobs))
        views = []
        for job in jobs:
            progress.check()
            report = self.registry.report(job)
            looked_at = job.id == selected
            latest = self._fetch(job.id, job.output, report.latest) if looked_at else ()
            details = self.failures.details(job, report).lines() if looked_at else []
            views.append(
                JobView(
                    job.id,
                    report.state,
                    job.priority,
                    report.frames,
                    report.stored,
                    report_row(report),
                    latest,
                    tuple(details),
                )
            )
            progress.advance()
        return views

    def _fetch(self, job_id: str, output: str, names: list[str]) -> tuple[Path, ...]:
        store = open_store_at(self.config, output)
        paths = []
        for name in names[:THUMBNAILS]:
            path = self.thumbnails / job_id / name
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                store.get(name, path)
            paths.append(path)
        return tuple(paths)

    def download(self, job_id: str, folder: Path, progress: Progress) -> list[Path]:
        """Every stored frame of the job into ``folder``; returns their paths in frame order."""
        job = self.registry.job(job_id)
        store = open_store_at(self.config, job.output)
        names = sorted(set(frame_names(job)).intersection(store.names()))
        progress.start(f"Downloading the frames of {job_id}", len(names))
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in names:
            progress.check()
            store.get(name, folder / name)
            paths.append(folder / name)
            progress.advance()
        return paths


@dataclass
class RefreshSchedule:
    """How long to wait before the next refresh: ``fastest`` while a job renders and someone is
    looking, otherwise twice the last wait, up to ``slowest``."""

    fastest: float = 5.0
    slowest: float = 300.0
    interval: float = 5.0

    def next_wait(self, *, rendering: bool, watched: bool) -> float:
        if rendering and watched:
            self.interval = self.fastest
        else:
            self.interval = min(self.slowest, self.interval * 2)
        return self.interval
