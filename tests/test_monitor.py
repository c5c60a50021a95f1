# SPDX-License-Identifier: GPL-3.0-or-later
"""What the add-on's Jobs panel reads, against moto's server: every job's line, the selected
job's newest frames fetched once each, and a refresh schedule that backs off when idle."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from shared.core.config import load_config
from shared.core.progress import Progress
from shared.jobs.registry import JobRegistry, make_job
from shared.services.monitor import FarmMonitor, RefreshSchedule
from shared.tasks.task import RenderSettings


def test_a_refresh_shows_every_job_and_fetches_the_selected_jobs_newest_frames_once(
    aws: str, boto_client: Any, tmp_path: Path
) -> None:
    s3 = boto_client("s3")
    s3.create_bucket(Bucket="studio")
    environ = {**os.environ, "BRENDA_FARM": "studio", "BRENDA_FARM_OUTPUTS": "s3://studio/frames/"}
    config = load_config(environ=environ)
    registry = JobRegistry(config)

    def submit(frames: str) -> str:
        settings = RenderSettings(blend="shot.blend")
        job = make_job(config, project="s3://p/shot.tar.gz", frames=frames, settings=settings)
        return registry.submit(job).id

    older, newer = submit("1-5"), submit("1-2")
    for frame in range(1, 6):
        s3.put_object(
            Bucket="studio", Key=f"frames/{older}/frame_{frame:06d}.png", Body=b"f%d" % frame
        )
    monitor = FarmMonitor(config, tmp_path / "thumbnails")
    views = monitor.refresh(older, Progress())
    assert [(view.id, view.stored, view.frames, view.rendering) for view in views] == [
        (newer, 0, 2, True),
        (older, 5, 5, False),
    ]
    # Stored in frame order, all in the same second: the newest by S3's clock come first.
    shown = [path.name for path in views[1].latest]
    assert len(shown) == 3 and set(shown) <= {f"frame_{n:06d}.png" for n in range(1, 6)}
    assert views[1].latest[0].read_bytes().startswith(b"f")
    assert views[0].latest == ()
    assert views[0].summary == (
        "2 waiting, 0 rendering, 0 failed; 0 nodes; $0.00 so far, - a frame, - in all; ETA -"
    )

    # Fetched once: a frame replaced in the store is not downloaded again for its thumbnail.
    first = views[1].latest[0]
    first.write_bytes(b"kept")
    again = monitor.refresh(older, Progress())
    assert again[1].latest[0] == first and first.read_bytes() == b"kept"
    # An unknown selection shows the newest job's frames.
    assert monitor.refresh("gone", Progress())[0].id == newer


def test_the_refresh_backs_off_when_nobody_looks_or_nothing_renders() -> None:
    schedule = RefreshSchedule(fastest=5, slowest=300)
    assert schedule.next_wait(rendering=True, watched=True) == 5
    waits = [schedule.next_wait(rendering=True, watched=False) for _ in range(8)]
    assert waits == [10, 20, 40, 80, 160, 300, 300, 300]
    assert schedule.next_wait(rendering=True, watched=True) == 5
    assert schedule.next_wait(rendering=False, watched=True) == 10


def test_a_crafted_record_writes_no_thumbnail_outside_the_folder_nor_selects_itself(
    aws: str, boto_client: Any, tmp_path: Path
) -> None:
    s3 = boto_client("s3")
    s3.create_bucket(Bucket="studio")
    environ = {**os.environ, "BRENDA_FARM": "studio", "BRENDA_FARM_OUTPUTS": "s3://studio/frames/"}
    config = load_config(environ=environ)
    registry = JobRegistry(config)
    settings = RenderSettings(blend="shot.blend")
    job = registry.submit(
        make_job(config, project="s3://p/shot.tar.gz", frames="1", settings=settings)
    )
    s3.put_object(Bucket="studio", Key=f"frames/{job.id}/frame_000001.png", Body=b"frame")
    future = "2999-01-01T00:00:00.000+00:00"
    escaping = replace(job, id="../../../Pictures", created=future)
    s3.put_object(Bucket="studio", Key="frames/.brenda/jobs/pictures.json", Body=escaping.to_json())
    later = replace(job, id="later-20991231-000000-abcd", created=future)
    later = replace(later, output=f"s3://studio/frames/{later.id}/")
    s3.put_object(Bucket="studio", Key=f"frames/.brenda/jobs/{later.id}.json", Body=later.to_json())

    thumbnails = tmp_path / "tmp" / "brenda" / "frames"
    views = FarmMonitor(config, thumbnails).refresh("", Progress())
    assert [view.id for view in views] == [job.id]  # neither crafted record is selected
    assert views[0].latest == (thumbnails / job.id / "frame_000001.png",)
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written == [thumbnails / job.id / "frame_000001.png"]
