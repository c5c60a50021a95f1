# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-work report`` and the add-on's "Open Report": a job's report (``shared.jobs.report``)
written to a file on the workstation. No bpy module use."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from ..core.config import Config
from ..core.errors import BrendaError
from ..core.progress import Progress
from ..jobs.registry import JobRegistry, report_name
from ..jobs.report import gather, report_html


@dataclass(frozen=True)
class WrittenReport:
    path: Path
    job: str
    thumbnails: int
    stored: int
    frames: int
    failures: int

    def summary(self) -> str:
        return (
            f"Wrote {self.path}: the report of job {self.job}, {self.stored} of {self.frames} "
            f"frames stored ({self.thumbnails} thumbnails), {self.failures} failed tasks."
        )


def write_job_report(
    config: Config, job_id: str, target: Path | None = None, progress: Progress | None = None
) -> WrittenReport:
    """Write the report of job ``job_id`` (or the one job whose id starts so) to ``target``
    (replaced; default ``<job id>-report.html`` here), whole or not at all."""
    registry = JobRegistry(config)
    job = registry.job(job_id)
    data = gather(registry, job, progress or Progress())
    target = target or Path(report_name(job))
    partial = target.with_name(f".partial-{target.name}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(report_html(data), encoding="utf-8")
        partial.replace(target)
    except OSError as error:
        raise BrendaError(f"Could not write the report {target}: {error}.") from error
    finally:
        with suppress(OSError):  # a folder that could not be made holds no partial page
            partial.unlink(missing_ok=True)
    report = data.details.report
    return WrittenReport(
        target,
        job.id,
        sum(frame.thumbnail is not None for frame in data.frames),
        report.stored,
        report.frames,
        len(data.details.failures),
    )
