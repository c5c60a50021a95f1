# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-work report``: a real job on moto's server, its frames and ledgers written into its
S3 output as nodes write them (OpenImageIO frames, ``LedgerWriter`` ledgers, failure notes, a
dead-lettered task), the page read as text and shown in real headless Chromium."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from OpenImageIO import UINT8, ImageBuf

from brenda_node.ledger import LedgerWriter
from shared.core.config import load_config
from shared.core.errors import Cancelled
from shared.core.progress import Progress
from shared.core.urls import S3Url, parse_url
from shared.jobs.costs import Machine, TaskCost
from shared.jobs.report import BACKGROUND, COST_COLOUR, RENDER_COLOUR, STORED_COLOUR
from shared.outputs.failures import failure_note
from shared.outputs.store import S3Store
from shared.services.report import write_job_report
from tests.cli.test_jobs_cli import drain, queue_url
from tests.cli.test_video_cli import (  # noqa: F401
    FRAMES,
    encoded_file,
    farm_env,
    submit,
    work,
)

STORED = 10
"""Frames 1-10 are stored; 11 failed (noted), 12 was dead-lettered."""
WIDTH, HEIGHT = 160, 90
HOSTILE = '<script>alert("owned")</script><img src="x.png" onerror="alert(1)">'


def frame_colour(number: int) -> tuple[int, int, int]:
    """A colour of its own per frame, unlike the page's and its charts'."""
    return (230 - 12 * number, 40 + 15 * number, 200)


def frame_file(number: int, scratch: Path) -> bytes:
    image = np.zeros((HEIGHT, WIDTH, 3))
    image[...] = np.array(frame_colour(number)) / 255
    return encoded_file(image, scratch / f"{number}.png")


def job_with_history(boto_client: Any, capsys: pytest.CaptureFixture[str], project: Path) -> str:
    """A 12-frame job two nodes worked on: frames stored, ledgers written as nodes write them, a
    failure noted and a task dead-lettered."""
    job = submit(capsys, project)
    bodies = {
        json.loads(body)["frames"]["start"]: body
        for body in drain(boto_client, queue_url(boto_client, job))
    }
    s3, scratch = boto_client("s3"), project.parent / "frames"
    scratch.mkdir()
    for number in range(1, STORED + 1):
        s3.put_object(
            Bucket="studio",
            Key=f"frames/{job}/frame_{number:06d}.png",
            Body=frame_file(number, scratch),
        )
    output = parse_url(f"s3://studio/frames/{job}/", allowed=("s3",))
    assert isinstance(output, S3Url)
    store = S3Store(s3, output)
    start = time.time() - 600
    spot = LedgerWriter(store, None, "node-a", Machine("spot", "c5.xlarge", "us-east-1a"), start)
    demand = LedgerWriter(
        store, None, "node-b", Machine("on-demand", "m5.large", "us-east-1b"), start
    )
    for number in range(1, STORED + 1):
        writer = spot if number <= 6 else demand
        began = start + 40 * number
        wall = 30.0 + number
        cost = TaskCost(f"frames {number}", 1, began, wall, 20.0 + 2 * number, 0.4, wall / 900)
        writer.working_on(cost.task, since=began, dollars_per_hour=0.4)
        writer.add(cost, "stored")
    # A node that wrote its type as markup, and began frame 11 before it was stopped.
    odd = LedgerWriter(store, None, "node-c", Machine("spot", "<i>odd</i>", "us-east-1a"), start)
    odd.working_on("frames 11", since=start + 450, dollars_per_hour=None)
    demand.add(TaskCost("frames 11", 1.0, start + 500, 12.0, 9.0, 0.4, 0.002), "failed")
    note = failure_note(
        f"Task frames 11 failed: {HOSTILE}", node="node-b", attempt=3, body=bodies[11]
    )
    s3.put_object(
        Bucket="studio", Key=f"frames/{job}/.brenda/failures/m-11.txt", Body=note.encode()
    )
    boto_client("sqs").send_message(
        QueueUrl=queue_url(boto_client, job, dead=True), MessageBody=bodies[12]
    )
    return job


def test_report_holds_thumbnails_charts_nodes_and_failures_and_fetches_nothing(
    farm_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    tmp_path: Path,
) -> None:
    job = job_with_history(boto_client, capsys, farm_env)
    target = tmp_path / "out" / "report.html"
    out, _ = work(capsys, "report", job[:8], "-o", str(target))
    assert out == (
        f"Wrote {target}: the report of job {job}, {STORED} of {FRAMES} frames stored "
        f"({STORED} thumbnails), 2 failed tasks.\n"
    )
    page = target.read_text(encoding="utf-8")
    assert not re.search(r"https?://", page, re.IGNORECASE)
    assert {source[:5] for source in re.findall(r'src="([^"]*)"', page)} == {"data:"}
    assert "<script" not in page and "&lt;script&gt;alert(&quot;owned&quot;)" in page
    thumbnails = re.findall(r'<img class="thumbnail" src="data:image/png;base64,([^"]+)"', page)
    assert len(thumbnails) == STORED
    first = tmp_path / "first.png"
    first.write_bytes(base64.b64decode(thumbnails[0]))
    pixels = ImageBuf(str(first)).get_pixels(UINT8)
    assert pixels.shape == (HEIGHT, WIDTH, 3) and tuple(pixels[45, 80]) == frame_colour(1)
    assert page.count("not stored</div>") == FRAMES - STORED
    # A bar per frame a node worked on (the failed frame 11 too), and the stored frames' area.
    assert page.count('class="render-bar"') == STORED + 1
    assert page.count('class="cost-bar"') == STORED + 1
    assert page.count('class="stored-area"') == 1
    assert "<title>7: 34.0 s</title>" in page
    nodes = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>((?:<td[^>]*>[^<]*</td>)+)</tr>", page)
    cells = {
        (kind, market): re.findall(r"<td[^>]*>([^<]*)</td>", rest) for kind, market, rest in nodes
    }
    assert cells[("c5.xlarge", "spot")][:4] == ["1", "6", "6", "60%"]
    assert cells[("m5.large", "on-demand")][:4] == ["1", "5", "4", "40%"]
    # Node b's 4 stored frames ($154/900) and its failed try ($0.002) of $0.396 in all.
    assert cells[("c5.xlarge", "spot")][-2:] == ["$0.22", "56%"]
    assert cells[("m5.large", "on-demand")][-2:] == ["$0.17", "44%"]
    assert cells[("&lt;i&gt;odd&lt;/i&gt;", "spot")] == ["1", "0", "0", "0%", "0s", "$0.00", "0%"]
    assert "<i>" not in page
    assert "<tr><td>frames 11</td><td>failed</td><td>Task frames 11 failed: &lt;script" in page
    assert "(node node-b, try 3)" not in page and "<td>node node-b, try 3</td>" in page
    assert "<tr><td>frames 12</td><td>dead-lettered</td>" in page
    assert "<tr><th>Blender</th>" in page and "<tr><th>version</th>" in page
    assert "<tr><th>render</th><td>PNG on CPU" in page


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def colour_pixels(image: np.ndarray[Any, Any], colour: str | tuple[int, int, int]) -> int:
    """How many pixels are ``colour`` (within 3 levels a channel)."""
    if isinstance(colour, str):
        colour = tuple(int(colour[index : index + 2], 16) for index in (1, 3, 5))
    difference = np.abs(image[..., :3].astype(int) - np.array(colour)).max(axis=-1)
    return int((difference <= 3).sum())


@pytest.mark.skipif(
    chromium() is None, reason="Debian's chromium is not installed (scripts/install-test-tools.sh)"
)
def test_report_shows_its_thumbnails_and_charts_in_headless_chromium(
    farm_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    tmp_path: Path,
) -> None:
    job = job_with_history(boto_client, capsys, farm_env)
    target = tmp_path / "report.html"
    work(capsys, "report", job, "-o", str(target))
    screenshot = tmp_path / "screenshot.png"
    browser = chromium()
    assert browser is not None
    subprocess.run(
        [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-color-profile=srgb",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={screenshot}",
            "--window-size=1200,2000",
            target.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    image = ImageBuf(str(screenshot)).get_pixels(UINT8)
    assert image.shape[:2] == (2000, 1200)
    # The page's background is everywhere nothing is drawn...
    assert colour_pixels(image, BACKGROUND) > 0.5 * 1200 * 2000
    # ...each stored frame's thumbnail shows whole, in its own colour, and no other frame's...
    for number in range(1, FRAMES + 1):
        shown = colour_pixels(image, frame_colour(number))
        assert (shown >= 0.95 * WIDTH * HEIGHT) == (number <= STORED), (number, shown)
    # ...and the charts' bars and area are drawn, in their colours.
    assert colour_pixels(image, RENDER_COLOUR) > 20 * 100
    assert colour_pixels(image, COST_COLOUR) > 20 * 100
    assert colour_pixels(image, STORED_COLOUR) > 200 * 50


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["report"], "report needs JOB, like: brenda-work report shot1-7f3a."),
        (["report", "a", "b"], "report needs JOB, like: brenda-work report shot1-7f3a."),
        (["jobs", "-o", "x.html"], "-o/--output applies only to video and report."),
        (["report", "JOB", "--fps", "25"], "--fps, --codec and --allow-gaps apply only to video."),
    ],
    ids=["no-job", "two-jobs", "output-elsewhere", "video-option"],
)
def test_bad_report_options_are_usage_errors(
    farm_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    error: str,
) -> None:
    _, err = work(capsys, *argv, code=2)
    assert err == f"brenda-work: {error}\n"


def test_a_report_that_cannot_be_written_is_one_sentence_and_nothing_is_left(
    farm_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    job = submit(capsys, farm_env)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    _, err = work(capsys, "report", job, "-o", str(blocker / "report.html"), code=1)
    assert err.startswith(f"brenda-work: Could not write the report {blocker}/report.html: ")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert blocker.read_text() == "not a folder"
    _, err = work(capsys, "report", "no-such-job", code=2)
    assert "has no job whose id starts with 'no-such-job'" in err


def test_a_cancelled_report_raises_cancelled_and_writes_nothing(
    farm_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    tmp_path: Path,
) -> None:
    job = job_with_history(boto_client, capsys, farm_env)

    def cancel_after_a_thumbnail(progress: Progress) -> None:
        if progress.done:
            progress.cancel()

    target = tmp_path / "out" / "report.html"
    with pytest.raises(Cancelled, match="Making thumbnails of the frames of .* was cancelled"):
        write_job_report(
            load_config(None), job, target, Progress(on_change=cancel_after_a_thumbnail)
        )
    assert not target.parent.exists() or list(target.parent.iterdir()) == []
