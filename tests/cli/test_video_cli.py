# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-work video``: a real job on moto's server, its frames written into its S3 output
with OpenImageIO, encoded, and the video decoded again with PyAV."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from OpenImageIO import FLOAT, UINT8, ImageBuf, ImageSpec

from shared.cli.work import main as brenda_work
from shared.core.config import load_config
from shared.core.errors import Cancelled
from shared.core.progress import Progress
from shared.outputs.tiles import pixel_span
from shared.outputs.video import srgb_from_linear
from shared.services.video import job_video
from shared.tasks.task import tile_grid

FRAMES = 12


@pytest.fixture
def farm_env(aws: str, monkeypatch: pytest.MonkeyPatch, boto_client: Any, tmp_path: Path) -> Path:
    boto_client("s3").create_bucket(Bucket="studio")
    for key, value in {"FARM": "studio", "FARM_OUTPUTS": "s3://studio/frames/"}.items():
        monkeypatch.setenv(f"BRENDA_{key}", value)
    project = tmp_path / "project"
    project.mkdir()
    (project / "scene.blend").write_bytes(b"")  # for nodes that are not there
    return project


def work(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> tuple[str, str]:
    assert brenda_work(list(argv)) == code
    return capsys.readouterr()


def submit(capsys: pytest.CaptureFixture[str], project: Path, *options: str) -> str:
    out, _ = work(
        capsys, "--project", f"file://{project}", "--frames", f"1-{FRAMES}", *options, "submit"
    )
    match = re.search(r"Submitted job (\S+):", out)
    assert match, out
    return match.group(1)


def frame_image(number: int, width: int, height: int) -> np.ndarray[Any, Any]:
    """A frame unlike the others: a gradient whose colour turns, and a soft ball that moves."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    turn = number / FRAMES
    red = 0.2 + 0.6 * x / width * (1 - turn)
    green = 0.2 + 0.6 * y / height * turn
    blue = np.full_like(x, 0.3 + 0.4 * turn)
    centre = (width * (0.1 + 0.8 * turn), height / 2)
    ball = np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * (height / 8) ** 2))
    image = np.stack([red, green, blue], axis=-1) * (1 - ball[..., None]) + ball[..., None]
    return image  # 0..1


def encoded_file(image: np.ndarray[Any, Any], path: Path, *, exr: bool = False) -> bytes:
    height, width = image.shape[:2]
    spec = ImageSpec(width, height, 3, FLOAT if exr else UINT8)
    buffer = ImageBuf(spec)
    pixels = image.astype(np.float32) if exr else np.rint(image * 255).astype(np.uint8)
    assert buffer.set_pixels(buffer.roi, pixels)
    assert buffer.write(str(path)), buffer.geterror()
    return path.read_bytes()


def store_frames(
    boto_client: Any,
    job: str,
    images: dict[int, np.ndarray[Any, Any]],
    scratch: Path,
    *,
    exr: bool = False,
    tiled: set[int] | None = None,
) -> None:
    """Write the frames into the job's S3 output as a node would: a whole file each, or (for
    ``tiled``) 2x2 tiles, each a full-size image rendered inside its own region only."""
    s3 = boto_client("s3")
    extension = ".exr" if exr else ".png"
    scratch.mkdir(exist_ok=True)
    for number, image in images.items():
        stem = f"frames/{job}/frame_{number:06d}"
        if number not in (tiled or set()):
            body = encoded_file(image, scratch / f"{number}{extension}", exr=exr)
            s3.put_object(Bucket="studio", Key=stem + extension, Body=body)
            continue
        for tile in tile_grid(2, 2) or []:
            height, width = image.shape[:2]
            region = np.zeros_like(image)
            min_x, max_x, min_y, max_y = tile.bounds_text()
            columns = slice(*pixel_span(min_x, max_x, width))
            bottom, top = pixel_span(min_y, max_y, height)
            rows = slice(height - top, height - bottom)
            region[rows, columns] = image[rows, columns]
            body = encoded_file(region, scratch / f"tile{extension}", exr=exr)
            s3.put_object(Bucket="studio", Key=stem + tile.name_suffix() + extension, Body=body)


def decoded(path: Path) -> list[np.ndarray[Any, Any]]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def psnr(shown: np.ndarray[Any, Any], expected: np.ndarray[Any, Any]) -> float:
    error = np.mean((shown.astype(np.float64) - expected.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(255**2 / error))


def as_png_pixels(image: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.rint(image * 255).astype(np.uint8)


@pytest.mark.parametrize(("width", "height"), [(160, 90), (161, 91)], ids=["even", "odd"])
def test_video_holds_every_frame_in_order(
    farm_env: Path,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    tmp_path: Path,
    width: int,
    height: int,
) -> None:
    job = submit(capsys, farm_env)
    images = {number: frame_image(number, width, height) for number in range(1, FRAMES + 1)}
    # Stored out of order, and frame 5 only as tiles: the video follows the frame numbers.
    store_frames(boto_client, job, dict(reversed(images.items())), tmp_path / "s", tiled={5})
    target = tmp_path / "out" / "shot.mp4"
    out, _ = work(capsys, "video", job, "-o", str(target), "--fps", "25")
    padded = (width + width % 2, height + height % 2)
    assert f"Wrote {target}: {FRAMES} frames of job {job}, {padded[0]}x{padded[1]} at 25 fps" in out
    assert ("padded by one pixel" in out) == (padded != (width, height))
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.average_rate) == ("h264", 25)
    shown = decoded(target)
    assert len(shown) == FRAMES
    assert all(frame.shape == (padded[1], padded[0], 3) for frame in shown)
    expected = [as_png_pixels(images[number]) for number in range(1, FRAMES + 1)]
    crops = [frame[:height, :width] for frame in shown]
    assert psnr(crops[0], expected[0]) >= 30
    assert psnr(crops[-1], expected[-1]) >= 30
    # In order: each decoded frame is closest to its own frame, frame 5 (from tiles) included.
    for index, crop in enumerate(crops):
        scores = [psnr(crop, candidate) for candidate in expected]
        assert scores.index(max(scores)) == index, scores
    # The padding repeats the edge, so no black line shows.
    if padded != (width, height):
        assert psnr(shown[0][:, -1], shown[0][:, -2]) >= 30
        assert psnr(shown[0][-1], shown[0][-2]) >= 30


def test_missing_frames_are_refused_by_number_and_gaps_allowed(
    farm_env: Path,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = submit(capsys, farm_env)
    present = [number for number in range(1, FRAMES + 1) if number not in (4, 9)]
    images = {number: frame_image(number, 96, 54) for number in present}
    # Frame 9 has only three of its four tiles: it is missing, not assembled.
    store_frames(boto_client, job, images, tmp_path / "s")
    for tile in (tile_grid(2, 2) or [])[:3]:
        key = f"frames/{job}/frame_000009{tile.name_suffix()}.png"
        boto_client("s3").put_object(Bucket="studio", Key=key, Body=b"tile")
    target = tmp_path / "shot.mp4"
    _, err = work(capsys, "video", job, "-o", str(target), code=1)
    assert err == (
        f"brenda-work: Job {job} is missing 2 of its 12 frames (4, 9): render them "
        f"('brenda-work missing {job}'), or allow gaps (--allow-gaps) to encode the frames "
        "stored.\n"
    )
    assert not target.exists()
    assert list(tmp_path.glob(".partial-*")) == []

    # By the start of its id, into <job id>.mp4 here.
    monkeypatch.chdir(tmp_path)
    out, _ = work(capsys, "video", job[:-2], "--allow-gaps")
    assert "10 frames" in out and "2 missing frames left out (4, 9)" in out
    shown = decoded(tmp_path / f"{job}.mp4")
    assert len(shown) == 10
    for frame, number in zip(shown, present, strict=True):
        assert psnr(frame, as_png_pixels(images[number])) >= 30


def test_exr_frames_are_shown_in_srgb(
    farm_env: Path, capsys: pytest.CaptureFixture[str], boto_client: Any, tmp_path: Path
) -> None:
    job = submit(capsys, farm_env, "--format", "OPEN_EXR")
    # Scene-linear light, some of it above 1 (clipped): the video shows it as Blender's Standard
    # view would, through the sRGB transfer function.
    images = {number: frame_image(number, 64, 48) ** 2.2 * 1.2 for number in range(1, 13)}
    store_frames(boto_client, job, images, tmp_path / "s", exr=True, tiled={2})
    target = tmp_path / "shot.mov"
    work(capsys, "video", job, "--codec", "prores", "-o", str(target))
    shown = decoded(target)
    assert len(shown) == FRAMES
    for index in (0, 1, FRAMES - 1):
        expected = srgb_from_linear(images[index + 1].astype(np.float32))
        assert psnr(shown[index], expected) >= 35
        assert psnr(shown[index], as_png_pixels(images[index + 1])) < 25  # not shown as linear


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["video"], "video needs JOB, like: brenda-work video shot1-7f3a."),
        (["video", "JOB", "--fps", "0"], "The frame rate must be above 0 and at most 1000, not 0."),
        (["video", "JOB", "--fps", "fast"], "'fast' is not a frame rate, like 24 or 29.97."),
        (
            ["jobs", "--fps", "25"],
            "--fps, --codec and --allow-gaps apply only to video.",
        ),
    ],
    ids=["no-job", "zero-fps", "word-fps", "not-video"],
)
def test_bad_video_options_are_usage_errors(
    farm_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    _, err = work(capsys, *argv, code=2)
    assert err == f"brenda-work: {error}\n"


def test_a_job_with_no_frames_yet_is_refused(
    farm_env: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    job = submit(capsys, farm_env)
    _, err = work(capsys, "video", job, "--allow-gaps", "-o", str(tmp_path / "v.mp4"), code=1)
    assert err == f"brenda-work: Job {job} has no stored frames to encode yet.\n"
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize(
    ("name", "codec", "error"),
    [
        ("shot.mp4", "prores", "cannot hold prores video (a .mp4 file): name it shot.mov"),
        ("shot", "h264", "cannot hold h264 video (a file without a suffix): name it shot.mp4"),
    ],
    ids=["prores-in-mp4", "no-suffix"],
)
def test_a_file_that_cannot_hold_the_codec_is_refused(
    farm_env: Path,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    tmp_path: Path,
    name: str,
    codec: str,
    error: str,
) -> None:
    job = submit(capsys, farm_env)
    images = {number: frame_image(number, 32, 18) for number in range(1, FRAMES + 1)}
    store_frames(boto_client, job, images, tmp_path / "s")
    target = tmp_path / name
    _, err = work(capsys, "video", job, "--codec", codec, "-o", str(target), code=1)
    assert err == f"brenda-work: {target} {error}, or choose another --codec.\n"
    assert not target.exists()


def test_a_cancelled_encode_leaves_nothing_behind(
    farm_env: Path, capsys: pytest.CaptureFixture[str], boto_client: Any, tmp_path: Path
) -> None:
    job = submit(capsys, farm_env)
    images = {number: frame_image(number, 64, 36) for number in range(1, FRAMES + 1)}
    store_frames(boto_client, job, images, tmp_path / "s")

    def cancel_after_three(progress: Progress) -> None:
        if progress.done == 3:
            progress.cancel()

    target = tmp_path / "out" / "shot.mp4"
    with pytest.raises(Cancelled, match=f"^Encoding job {job} was cancelled.$"):
        job_video(load_config(None), job, target, progress=Progress(on_change=cancel_after_three))
    assert list(target.parent.iterdir()) == []


def test_a_video_that_cannot_be_written_is_one_sentence_and_nothing_is_left(
    farm_env: Path,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    tmp_path: Path,
) -> None:
    """Its folder under a regular file: cleaning up the partial video raised a traceback."""
    job = submit(capsys, farm_env)
    store_frames(boto_client, job, {1: frame_image(1, 32, 18)}, tmp_path / "s")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "shot.mp4"
    _, err = work(capsys, "video", job, "--allow-gaps", "-o", str(target), code=1)
    assert err.startswith(f"brenda-work: Could not write the video {target}: ")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert blocker.read_text() == "not a folder"
