# SPDX-License-Identifier: GPL-3.0-or-later
"""What the add-on plays: a real job on moto's server, its frames written into its S3 output with
OpenImageIO, fetched once into a local folder; its video fetched from the farm or made here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from OpenImageIO import UINT8, ImageBuf

from shared.core.config import load_config
from shared.core.errors import BrendaError, Cancelled
from shared.core.progress import Progress
from shared.services.playback import farm_video_name, fetch_frames, fetch_video
from tests.cli.test_video_cli import (
    FRAMES,
    as_png_pixels,
    decoded,
    farm_env,  # noqa: F401  (the fixture)
    frame_image,
    psnr,
    store_frames,
    submit,
)


def stored(boto_client: Any, job: str, name: str) -> bytes:
    return bytes(
        boto_client("s3").get_object(Bucket="studio", Key=f"frames/{job}/{name}")["Body"].read()
    )


def test_frames_are_fetched_once_in_frame_order_with_tiles_assembled(
    farm_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    tmp_path: Path,
) -> None:
    job = submit(capsys, farm_env)
    present = [number for number in range(1, FRAMES + 1) if number != 9]
    images = {number: frame_image(number, 32, 18) for number in present}
    store_frames(boto_client, job, dict(reversed(images.items())), tmp_path / "s", tiled={5})
    folder = tmp_path / "local" / job
    frames = fetch_frames(load_config(), job[:-2], folder, Progress())
    assert (frames.job, frames.fetched, frames.missing) == (job, 11, [9])
    assert frames.numbers == present
    assert frames.paths == [folder / f"frame_{number:06d}.png" for number in present]
    for number, path in zip(present, frames.paths, strict=True):
        if number != 5:
            assert path.read_bytes() == stored(boto_client, job, path.name)
        pixels = ImageBuf(str(path)).get_pixels(UINT8)
        assert np.array_equal(pixels, as_png_pixels(images[number]))  # 5: from its tiles
    assert sorted(item.name for item in folder.iterdir()) == [path.name for path in frames.paths]

    # Once: a frame on this machine is not fetched again, even when the farm's copy changes.
    boto_client("s3").put_object(Bucket="studio", Key=f"frames/{job}/frame_000001.png", Body=b"x")
    frames.paths[1].unlink()
    again = fetch_frames(load_config(), job, folder, Progress())
    assert (again.fetched, again.paths) == (1, frames.paths)
    assert ImageBuf(str(frames.paths[0])).get_pixels(UINT8).shape == (18, 32, 3)
    assert frames.paths[1].read_bytes() == stored(boto_client, job, frames.paths[1].name)
    assert "11 frames of job" in again.summary() and "1 not stored yet" in again.summary()


def test_a_cancelled_fetch_leaves_only_whole_frames(
    farm_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    tmp_path: Path,
) -> None:
    job = submit(capsys, farm_env)
    images = {number: frame_image(number, 32, 18) for number in range(1, FRAMES + 1)}
    store_frames(boto_client, job, images, tmp_path / "s")

    def escape_after_two(progress: Progress) -> None:
        if progress.done == 2:
            progress.cancel()

    folder = tmp_path / "local"
    with pytest.raises(Cancelled):
        fetch_frames(load_config(), job, folder, Progress(on_change=escape_after_two))
    left = sorted(folder.iterdir())
    assert 2 <= len(left) < FRAMES
    for path in left:
        assert path.read_bytes() == stored(boto_client, job, path.name)
    assert fetch_frames(load_config(), job, folder, Progress()).fetched == FRAMES - len(left)


def test_a_job_with_no_stored_frames_is_refused(
    farm_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    job = submit(capsys, farm_env)
    with pytest.raises(BrendaError, match=f"^Job {job} has no stored frames yet.$"):
        fetch_frames(load_config(), job, tmp_path / "local", Progress())
    assert not (tmp_path / "local").exists()


def test_the_video_is_made_here_once_when_the_farm_stored_none(
    farm_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    tmp_path: Path,
) -> None:
    job = submit(capsys, farm_env)
    images = {number: frame_image(number, 64, 36) for number in range(1, FRAMES + 1)}
    store_frames(boto_client, job, images, tmp_path / "s", tiled={12})
    folder = tmp_path / "local"
    video = fetch_video(load_config(), job, folder, Progress())
    assert video.path == folder / f"{job}.mp4"
    assert video.how == f"made here from its {FRAMES} stored frames"
    shown = decoded(video.path)
    assert len(shown) == FRAMES
    assert psnr(shown[0], as_png_pixels(images[1])) >= 30
    assert psnr(shown[-1], as_png_pixels(images[FRAMES])) >= 30
    made = video.path.stat().st_mtime_ns
    again = fetch_video(load_config(), job, folder, Progress())
    assert (again.path, again.how) == (video.path, "on this machine already")
    assert video.path.stat().st_mtime_ns == made


def test_the_farms_own_video_is_fetched_rather_than_made(
    farm_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    tmp_path: Path,
) -> None:
    job = submit(capsys, farm_env)  # no frames stored: the farm's video is all there is
    encode = b"\x00\x00\x00\x18ftypmp42 the farm's encode"
    key = f"frames/{job}/{farm_video_name(job)}"
    boto_client("s3").put_object(Bucket="studio", Key=key, Body=encode)
    video = fetch_video(load_config(), job, tmp_path / "local", Progress())
    assert video.how == "the farm's own encode, fetched"
    assert video.path.read_bytes() == encode
    assert [path.name for path in (tmp_path / "local").iterdir()] == [f"{job}.mp4"]


def test_a_video_of_missing_frames_is_refused_and_nothing_is_written(
    farm_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    tmp_path: Path,
) -> None:
    job = submit(capsys, farm_env)
    images = {number: frame_image(number, 32, 18) for number in range(1, FRAMES)}
    store_frames(boto_client, job, images, tmp_path / "s")
    with pytest.raises(BrendaError, match=f"^Job {job} is missing 1 of its 12 frames \\(12\\)"):
        fetch_video(load_config(), job, tmp_path / "local", Progress())
    assert list((tmp_path / "local").glob("*")) == []
