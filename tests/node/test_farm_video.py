# SPDX-License-Identifier: GPL-3.0-or-later
"""A job submitted with ``--video``: the node that stores its last frame encodes the shot into
``<job>.mp4`` beside its frames, once, though two real nodes (bpy, moto's S3 and SQS) share it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import av
import pytest

from shared.cli.work import main as brenda_work
from shared.outputs.video import frame_pixels
from tests.node.conftest import Farm, make_sample_blend
from tests.node.test_video import psnr

pytestmark = pytest.mark.slow

FRAMES = 12


def test_the_node_that_stores_the_last_frame_encodes_the_video_once(
    job_farm: Farm, boto_client: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project = tmp_path / "shot"
    project.mkdir()
    # The monkey turns through the shot, so its frames differ; 16 samples keep Cycles' noise
    # within what H.264's 4:2:0 colour keeps.
    make_sample_blend(project / "scene.blend", width=64, height=36, samples=16, frames=FRAMES)
    argv = ["--project", f"file://{project}", "--blend", "scene.blend", "--frames", "1-12"]
    assert brenda_work([*argv, "--video", "submit"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    match = re.search(r"Submitted job (\S+):", out)
    assert match, out
    job = match.group(1)
    assert f"Its video goes to s3://studio/frames/{job}/{job}.mp4" in out
    nodes = {name: job_farm.start_node(name, DONE="exit") for name in ("a", "b")}
    for name, node in nodes.items():
        assert node.wait(timeout=300) == 0, job_farm.console(name)

    s3 = boto_client("s3")
    listing = s3.list_objects_v2(Bucket="studio", Prefix=f"frames/{job}/")["Contents"]
    videos = [item["Key"] for item in listing if item["Key"].endswith(".mp4")]
    assert videos == [f"frames/{job}/{job}.mp4"]
    consoles = {name: job_farm.console(name) for name in nodes}
    encoders = [name for name, console in consoles.items() if "encoding the video" in console]
    assert len(encoders) == 1, consoles
    [encoder] = encoders
    assert f"stored {job}.mp4: {FRAMES} frames of job {job}" in consoles[encoder]

    target = tmp_path / "farm.mp4"
    s3.download_file("studio", f"frames/{job}/{job}.mp4", str(target))
    with av.open(str(target)) as container:
        shown = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(shown) == FRAMES and shown[0].shape == (36, 64, 3)
    rendered = []
    for number in range(1, FRAMES + 1):
        path = tmp_path / f"{number}.png"
        s3.download_file("studio", f"frames/{job}/frame_{number:06d}.png", str(path))
        rendered.append(frame_pixels(path, path.name))
    assert psnr(shown[0], rendered[0]) >= 30 and psnr(shown[-1], rendered[-1]) >= 30
    for index, frame in enumerate(shown):  # in order: each is nearest its own render
        scores = [psnr(frame, render) for render in rendered]
        assert scores.index(max(scores)) == index, scores

    # The encode is a task of the encoding node's ledger, stored, with its time and cost.
    ledgers = [
        json.loads(s3.get_object(Bucket="studio", Key=item["Key"])["Body"].read())
        for item in listing
        if "/.brenda/nodes/" in item["Key"]
    ]
    encodes = [task for ledger in ledgers for task in ledger["tasks"] if task["task"] == "video"]
    assert len(encodes) == 1 and encodes[0]["outcome"] == "stored", ledgers
    assert encodes[0]["wall_seconds"] > 0 and encodes[0]["frames"] == 0


def test_a_video_another_node_claimed_is_not_encoded_again(
    job_farm: Farm, boto_client: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Another node claimed the video (and died while it encoded): this node stores the last
    frame and leaves the video alone; ``brenda-work video`` makes it on the workstation."""
    project = tmp_path / "shot"
    project.mkdir()
    make_sample_blend(project / "scene.blend", width=16, height=10, samples=1, frames=1)
    argv = ["--project", f"file://{project}", "--blend", "scene.blend", "--frames", "1"]
    assert brenda_work([*argv, "--video", "submit"]) == 0, capsys.readouterr().err
    match = re.search(r"Submitted job (\S+):", capsys.readouterr().out)
    assert match
    job = match.group(1)
    s3 = boto_client("s3")
    claim = f"frames/{job}/.brenda/video-claim.txt"
    s3.put_object(Bucket="studio", Key=claim, Body=b"ip-10-0-0-1:77 2026-12-07T06:00:00+00:00\n")
    node = job_farm.start_node("a", DONE="exit")
    assert node.wait(timeout=120) == 0, job_farm.console("a")

    console = job_farm.console("a")
    assert f"the video of job {job} is another node's to encode" in console, console
    assert "encoding the video" not in console
    listing = s3.list_objects_v2(Bucket="studio", Prefix=f"frames/{job}/")["Contents"]
    assert not [item for item in listing if item["Key"].endswith(".mp4")]
    assert f"frames/{job}/frame_000001.png" in [item["Key"] for item in listing]
    kept = s3.get_object(Bucket="studio", Key=claim)["Body"].read()
    assert kept.startswith(b"ip-10-0-0-1:77 ")

    target = tmp_path / "fallback.mp4"
    assert brenda_work(["video", job, "-o", str(target)]) == 0, capsys.readouterr().err
    with av.open(str(target)) as container:
        assert len(list(container.decode(video=0))) == 1


def test_a_video_that_cannot_be_encoded_is_logged_with_the_fix_and_costed_as_failed(
    job_farm: Farm, boto_client: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project = tmp_path / "shot"
    project.mkdir()
    make_sample_blend(project / "scene.blend", width=16, height=10, samples=1, frames=2)
    argv = ["--project", f"file://{project}", "--blend", "scene.blend", "--frames", "1-2"]
    assert brenda_work([*argv, "--video", "submit"]) == 0, capsys.readouterr().err
    match = re.search(r"Submitted job (\S+):", capsys.readouterr().out)
    assert match
    job = match.group(1)
    s3 = boto_client("s3")
    # Another task stored frame 2 already, as something that is not an image: it stays.
    s3.put_object(Bucket="studio", Key=f"frames/{job}/frame_000002.png", Body=b"not a frame")
    node = job_farm.start_node("a", DONE="exit")
    assert node.wait(timeout=120) == 0, job_farm.console("a")

    console = job_farm.console("a")
    assert f"the video of job {job} could not be made: Frame frame_000002.png" in console, console
    assert f"('brenda-work video {job}' makes it on a workstation)" in console
    listing = s3.list_objects_v2(Bucket="studio", Prefix=f"frames/{job}/")["Contents"]
    assert not [item for item in listing if item["Key"].endswith(".mp4")]
    [ledger_key] = [item["Key"] for item in listing if "/.brenda/nodes/" in item["Key"]]
    ledger = json.loads(s3.get_object(Bucket="studio", Key=ledger_key)["Body"].read())
    assert [task["outcome"] for task in ledger["tasks"] if task["task"] == "video"] == ["failed"]
    assert ledger["working_on"] is None
