# SPDX-License-Identifier: GPL-3.0-or-later
"""A job's frames and video on this machine, for the add-on to play. No bpy module use.

The frames are fetched into a folder that mirrors the job's output (each frame under the name it
is stored as), each once: a frame already in the folder is not fetched again, and a frame stored
only as tiles is assembled as ``brenda-work video`` does. A frame appears under its name only
once whole, so a cancelled fetch leaves no half frame to be taken for a fetched one later.

A job's video is the farm's own encode (``<job>.mp4`` in its output, from ``submit --video``),
fetched, when the farm stored one; else it is encoded here from the stored frames, as
``brenda-work video`` does (which needs PyAV). Either way once, into the same folder.
"""

from __future__ import annotations

import importlib.util
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..core.config import Config
from ..core.errors import BrendaError
from ..core.progress import Progress
from ..core.text import counted
from ..jobs.registry import JobRegistry
from ..outputs.store import VIDEO_SUFFIX, open_store_at
from ..outputs.video import DEFAULT_FPS
from .video import FETCH_AHEAD, fetch_frame, frame_sources, job_video


def farm_video_name(job_id: str) -> str:
    """The name of the farm's own encode of a job, in the job's output (as a node names it:
    ``shared.jobs.registry.video_name``)."""
    return f"{job_id}{VIDEO_SUFFIX}"


@dataclass(frozen=True)
class LocalFrames:
    """A job's stored frames on this machine, in frame order."""

    job: str
    paths: list[Path]
    numbers: list[int]
    fetched: int
    """Frames fetched this time (the others were on this machine already)."""
    missing: list[int]
    """Frames of the job not stored (yet)."""

    def summary(self) -> str:
        what = (
            f"{counted(len(self.paths), 'frame')} of job {self.job} ({self.fetched} fetched now, "
            f"{len(self.paths) - self.fetched} already in {self.paths[0].parent})"
        )
        if self.missing:
            what += f"; {len(self.missing)} not stored yet"
        return what


@dataclass(frozen=True)
class LocalVideo:
    """A job's video on this machine, and how it came there."""

    job: str
    path: Path
    how: str

    def summary(self) -> str:
        return f"The video of job {self.job} is {self.path}: {self.how}."


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BrendaError(
            f"Could not make the folder {folder}: {error.strerror or error}."
        ) from error


def fetch_frames(config: Config, job_id: str, folder: Path, progress: Progress) -> LocalFrames:
    """The job's stored frames in ``folder`` (``folder/<name as stored>``), each fetched once;
    frames stored only as complete tiles are assembled. ``job_id`` may be the start of only one
    job's id."""
    job = JobRegistry(config).job(job_id)
    store = open_store_at(config, job.output, concurrency=FETCH_AHEAD)
    sources, missing = frame_sources(job, set(store.names()))
    if not sources:
        raise BrendaError(f"Job {job.id} has no stored frames yet.")
    wanted = [source for source in sources if not (folder / source.name).is_file()]
    progress.start(f"Fetching the frames of job {job.id}", len(wanted))
    _make_folder(folder)
    # The scratch folder is inside ``folder``, so that a fetched frame moves into place at once.
    with (
        tempfile.TemporaryDirectory(prefix=".partial-", dir=folder) as scratch,
        ThreadPoolExecutor(FETCH_AHEAD, thread_name_prefix="brenda-frames") as pool,
    ):
        futures = [pool.submit(fetch_frame, store, source, Path(scratch)) for source in wanted]
        try:
            for source, future in zip(wanted, futures, strict=True):
                fetched = future.result()
                target = folder / source.name
                target.parent.mkdir(parents=True, exist_ok=True)
                fetched.replace(target)
                progress.advance()
                progress.check()
        finally:
            for future in futures:
                future.cancel()
    return LocalFrames(
        job.id,
        [folder / source.name for source in sources],
        [source.number for source in sources],
        len(wanted),
        missing,
    )


def fetch_video(
    config: Config,
    job_id: str,
    folder: Path,
    progress: Progress,
    *,
    fps: Fraction = DEFAULT_FPS,
) -> LocalVideo:
    """The job's video in ``folder`` (``folder/<job>.mp4``), once: the farm's own encode if the
    farm stored one, else encoded here at ``fps`` from the stored frames (all of them: missing
    frames are refused, named). ``job_id`` may be the start of only one job's id."""
    job = JobRegistry(config).job(job_id)
    name = farm_video_name(job.id)
    target = folder / name
    if target.is_file():
        return LocalVideo(job.id, target, "on this machine already")
    store = open_store_at(config, job.output)
    if name in store.names(name):
        progress.start(f"Fetching the video of job {job.id}", None)
        _make_folder(folder)
        with tempfile.TemporaryDirectory(prefix=".partial-", dir=folder) as scratch:
            fetched = Path(scratch) / name
            store.get(name, fetched)
            fetched.replace(target)
        return LocalVideo(job.id, target, "the farm's own encode, fetched")
    if importlib.util.find_spec("av") is None:
        raise BrendaError(
            f"The farm stored no video of job {job.id}, and this Python cannot encode one "
            f"(PyAV is not installed): run 'brenda-work video {job.id}' on the command line, "
            "or submit the job with --video."
        )
    made = job_video(config, job.id, target, fps=fps, progress=progress)
    frames = counted(made.video.frames, "stored frame")
    return LocalVideo(job.id, target, f"made here from its {frames}")
