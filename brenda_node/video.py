# SPDX-License-Identifier: GPL-3.0-or-later
"""A farm job's video (``brenda-work submit --video``), encoded by the node that stores its last
frame. No bpy module use.

After each stored task of such a job, one LIST of the job's output says whether every frame is
stored. Two nodes storing the last two frames together may both find it so: each then tries to
store the job's claim (``.brenda/video-claim.txt``) as a new object (``If-None-Match: *``), and
only the node whose claim is stored encodes, frames fetched one at a time in frame order, at 24
fps (a job's record does not hold its scene's frame rate) in H.264, into ``<job>.mp4`` beside the
frames, stored once. Its time and cost are a task of the node's ledger, ``video``.

A claim is never taken back: a node that dies while it encodes leaves the job without its video,
which ``brenda-work video JOB`` then makes on a workstation from the same frames.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from shared.core.errors import BrendaError
from shared.jobs.costs import PriceBook, TaskCost
from shared.jobs.registry import Job, frame_names, video_name
from shared.outputs.store import VIDEO_CLAIM, OutputStore
from shared.outputs.video import DEFAULT_CODEC, DEFAULT_FPS, codec_named, encode_video

from .ledger import LedgerWriter

log = logging.getLogger(__name__)

VIDEO_TASK = "video"
"""The video's task in the node's ledger."""


def encode_when_complete(
    job: Job, store: OutputStore, ledger: LedgerWriter, *, prices: PriceBook, work: Path, node: str
) -> None:
    """Encode and store ``job``'s video if every frame of it is stored, no video is and this
    node (``node``) claims it first; what goes wrong is logged, never raised (the frames are
    stored, and ``brenda-work video`` makes the video from them)."""
    try:
        names = sorted(frame_names(job).items(), key=lambda item: item[1])
        stored = set(store.names())
        if any(name not in stored for name, _number in names) or video_name(job) in stored:
            return
        if not _claimed(store, node, work):
            log.info("the video of job %s is another node's to encode", job.id)
            return
    except BrendaError as error:
        log.warning("job %s's video was not claimed: %s", job.id, error)
        return
    log.info("encoding the video of job %s (%d frames)", job.id, len(names))
    started = time.time()
    ledger.working_on(VIDEO_TASK, since=started, dollars_per_hour=prices.price(started))
    outcome = "stored"
    try:
        with tempfile.TemporaryDirectory(prefix="brenda-video-", dir=work) as scratch:
            folder = Path(scratch)
            target = folder / video_name(job)
            frames = _fetched(store, [name for name, _number in names], folder)
            video = encode_video(frames, target, codec=codec_named(DEFAULT_CODEC), fps=DEFAULT_FPS)
            encoded = time.time() - started
            store.put(target, video_name(job))
        log.info(
            "stored %s: %d frames of job %s, encoded in %.3f s",
            video_name(job),
            video.frames,
            job.id,
            encoded,
        )
    except (BrendaError, OSError) as error:
        outcome = "failed"
        log.error(
            "the video of job %s could not be made: %s ('brenda-work video %s' makes it on a "
            "workstation)",
            job.id,
            error,
            job.id,
        )
    ended = time.time()
    ledger.add(
        TaskCost(
            task=VIDEO_TASK,
            frames=0.0,
            started=started,
            wall_seconds=ended - started,
            render_seconds=0.0,  # no Blender render: its time is the task's wall time
            dollars_per_hour=prices.price(started),
            dollars=prices.cost(started, ended),
        ),
        outcome,
    )


def _claimed(store: OutputStore, node: str, work: Path) -> bool:
    """Whether this node's claim on the job's video is the one stored (a new object only)."""
    with tempfile.TemporaryDirectory(prefix="brenda-claim-", dir=work) as scratch:
        claim = Path(scratch) / "claim.txt"
        claim.write_text(f"{node} {datetime.now(UTC).isoformat(timespec='seconds')}\n")
        return store.put(claim, VIDEO_CLAIM)


def _fetched(store: OutputStore, names: list[str], folder: Path) -> Iterator[tuple[str, Path]]:
    """Each frame's name and a local copy, in order; a copy is deleted once the encoder asks
    for the next (it is done with it)."""
    for index, name in enumerate(names):
        path = folder / f"{index}{Path(name).suffix}"
        store.get(name, path)
        yield name, path
        path.unlink()
