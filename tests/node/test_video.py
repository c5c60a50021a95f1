# SPDX-License-Identifier: GPL-3.0-or-later
"""A job rendered by a real node (bpy, moto's S3 and SQS), then ``brenda-work video`` of it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from shared.cli.work import main as brenda_work
from shared.outputs.video import frame_pixels
from tests.node.conftest import Farm, make_sample_blend

pytestmark = pytest.mark.slow

FRAMES = 12


def psnr(shown: np.ndarray[Any, Any], expected: np.ndarray[Any, Any]) -> float:
    error = np.mean((shown.astype(np.float64) - expected.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(255**2 / error))


def test_video_of_frames_a_node_rendered(
    job_farm: Farm, boto_client: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project = tmp_path / "shot"
    project.mkdir()
    # An odd size, so the H.264 video is padded; the monkey turns through the shot. 16 samples:
    # at 1, Cycles' noise at this size is past what 4:2:0 colour keeps (31 dB before encoding).
    make_sample_blend(project / "scene.blend", width=95, height=53, samples=16, frames=FRAMES)
    argv = ["--project", f"file://{project}", "--blend", "scene.blend", "--frames", "1-12"]
    assert brenda_work([*argv, "submit"]) == 0, capsys.readouterr().err
    match = re.search(r"Submitted job (\S+):", capsys.readouterr().out)
    assert match
    job = match.group(1)
    node = job_farm.start_node("a", DONE="exit")
    assert node.wait(timeout=300) == 0, job_farm.console("a")

    target = tmp_path / "shot.mp4"
    assert brenda_work(["video", job, "-o", str(target)]) == 0, capsys.readouterr().err
    assert "12 frames" in capsys.readouterr().out
    with av.open(str(target)) as container:
        shown = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(shown) == FRAMES and shown[0].shape == (54, 96, 3)

    rendered = []
    for number in range(1, FRAMES + 1):
        path = tmp_path / f"{number}.png"
        key = f"frames/{job}/frame_{number:06d}.png"
        boto_client("s3").download_file("studio", key, str(path))
        rendered.append(frame_pixels(path, path.name))
    crops = [frame[:53, :95] for frame in shown]
    assert psnr(crops[0], rendered[0]) >= 30 and psnr(crops[-1], rendered[-1]) >= 30
    # The frames differ, and the video holds them in order: each is nearest its own render.
    for index, crop in enumerate(crops):
        scores = [psnr(crop, frame) for frame in rendered]
        assert scores.index(max(scores)) == index, scores
