# SPDX-License-Identifier: GPL-3.0-or-later
"""A video of a job's stored frames, made on this machine. No bpy module use.

One LIST of the job's output says which frames are stored; each frame is then fetched once, a
few ahead of the encoder, into a scratch folder and deleted once encoded, so the disk holds a
handful of frames whatever the job's length. A frame stored only as tiles (all of them) is
assembled here from them, as a node would; a frame neither stored nor complete in tiles is
missing, and missing frames are refused unless gaps are allowed.

The frame rate is not in a job's record (a node renders frames, not time): it is given, else
``DEFAULT_FPS`` (24, Blender's default). The size is the frames' own.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections import deque
from collections.abc import Generator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..core.config import Config
from ..core.errors import BrendaError
from ..core.progress import Progress
from ..jobs.registry import Job, JobRegistry, frame_names
from ..outputs.store import FolderStore, S3Store, open_store_at
from ..outputs.tiles import TileName, assemble, complete_frames
from ..outputs.video import (
    DEFAULT_CODEC,
    DEFAULT_FPS,
    Video,
    check_target,
    codec_named,
    encode_video,
)

log = logging.getLogger(__name__)

FETCH_AHEAD = 8
"""Frames fetched (or assembled) ahead of the one being encoded."""
NAMED_MISSING = 20
"""Missing frames named in a refusal at most."""


@dataclass(frozen=True)
class JobVideo:
    """A job's video, as written."""

    job: str
    video: Video
    missing: list[int]
    """Frames left out (``allow_gaps``)."""

    def summary(self) -> str:
        video = self.video
        what = (
            f"Wrote {video.path}: {video.frames} frames of job {self.job}, "
            f"{video.width}x{video.height} at {_fps_text(video.fps)} fps, {video.codec.name}"
        )
        if video.padded:
            what += (
                f" (the {video.frame_width}x{video.frame_height} frames padded by one pixel: "
                f"{video.codec.name} needs even sizes)"
            )
        if self.missing:
            what += f"; {len(self.missing)} missing frames left out ({_frame_list(self.missing)})"
        return what + "."


def _fps_text(fps: Fraction) -> str:
    return str(fps.numerator) if fps.denominator == 1 else f"{float(fps):.3f}"


def _frame_list(frames: list[int]) -> str:
    shown = ", ".join(str(frame) for frame in frames[:NAMED_MISSING])
    return shown + (" …" if len(frames) > NAMED_MISSING else "")


@dataclass(frozen=True)
class FrameSource:
    """Where a frame comes from: its stored file, or its stored tiles."""

    name: str
    number: int
    tiles: tuple[TileName, ...] = ()


def frame_sources(job: Job, stored: set[str]) -> tuple[list[FrameSource], list[int]]:
    """The job's frames among the ``stored`` names of its output, whole or as complete tiles,
    in frame order; and the numbers of those missing."""
    tiled = complete_frames(stored)
    sources: list[FrameSource] = []
    missing: list[int] = []
    for name, number in sorted(frame_names(job).items(), key=lambda item: item[1]):
        if name in stored:
            sources.append(FrameSource(name, number))
        elif name in tiled:
            sources.append(FrameSource(name, number, tuple(tiled[name])))
        else:
            missing.append(number)
    return sources, missing


def job_video(
    config: Config,
    job_id: str,
    target: Path | None = None,
    *,
    fps: Fraction = DEFAULT_FPS,
    codec: str = DEFAULT_CODEC,
    allow_gaps: bool = False,
    progress: Progress | None = None,
) -> JobVideo:
    """Encode the job's stored frames, in frame order, into ``target`` (replaced if it exists;
    default ``<job id>.mp4``, the codec's container, in the current folder); frames stored as
    complete tiles are assembled first. Missing frames are refused, named, unless
    ``allow_gaps``. ``job_id`` may be the start of only one job's id."""
    chosen = codec_named(codec)
    if target is not None:
        check_target(target, chosen)
    job = JobRegistry(config).job(job_id)
    job_id = job.id
    target = target or Path(f"{job_id}{chosen.suffix}")
    store = open_store_at(config, job.output, concurrency=FETCH_AHEAD)
    sources, missing = frame_sources(job, set(store.names()))
    if not sources:
        raise BrendaError(f"Job {job_id} has no stored frames to encode yet.")
    if missing and not allow_gaps:
        raise BrendaError(
            f"Job {job_id} is missing {len(missing)} of its {len(sources) + len(missing)} "
            f"frames ({_frame_list(missing)}): render them ('brenda-work missing {job_id}'), "
            "or allow gaps (--allow-gaps) to encode the frames stored."
        )
    if progress is not None:
        progress.start(f"Encoding job {job_id}", len(sources))
    with (
        tempfile.TemporaryDirectory(prefix="brenda-video-") as scratch,
        closing(_fetched(store, sources, Path(scratch))) as frames,
    ):
        video = encode_video(frames, target, codec=chosen, fps=fps, progress=progress)
    return JobVideo(job_id, video, missing)


def _fetched(
    store: FolderStore | S3Store, sources: list[FrameSource], scratch: Path
) -> Generator[tuple[str, Path]]:
    """Each frame's name and a local copy, in order, fetched ``FETCH_AHEAD`` ahead; a copy is
    deleted once the next is asked for (the encoder is done with it)."""
    with ThreadPoolExecutor(FETCH_AHEAD, thread_name_prefix="brenda-video") as pool:
        pending: deque[tuple[str, Future[Path]]] = deque()
        upcoming = iter(sources)
        try:
            while True:
                while len(pending) < FETCH_AHEAD and (source := next(upcoming, None)):
                    pending.append((source.name, pool.submit(fetch_frame, store, source, scratch)))
                if not pending:
                    return
                name, future = pending.popleft()
                path = future.result()
                yield name, path
                shutil.rmtree(path.parent)
        finally:
            for _name, future in pending:
                future.cancel()


def fetch_frame(store: FolderStore | S3Store, source: FrameSource, scratch: Path) -> Path:
    """The frame ``source`` in ``scratch`` (its tiles fetched and assembled, then deleted)."""
    # Each frame in a folder of its own: names may hold folders (shot/frame_0001.png).
    folder = Path(tempfile.mkdtemp(dir=scratch))
    target = folder / Path(source.name).name
    if not source.tiles:
        store.get(source.name, target)
        return target
    log.info("assembling frame %s from %d tiles", source.name, len(source.tiles))
    tiles = []
    for index, tile in enumerate(source.tiles):
        path = folder / f"tile-{index}{Path(tile.name).suffix}"
        store.get(tile.name, path)
        tiles.append((tile, path))
    assemble(tiles, target)
    for _tile, path in tiles:
        path.unlink()
    return target
