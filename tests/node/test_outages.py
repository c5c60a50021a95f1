# SPDX-License-Identifier: GPL-3.0-or-later
"""Outages of the store and of AWS as a whole, through a TCP proxy the test cuts: no task is lost,
none rendered twice, none dead-lettered for an error that was not its own."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from brenda_node import backoff as backoff_module
from brenda_node.backoff import Backoff
from shared.cli.work import main as brenda_work
from shared.core.config import load_config
from shared.core.errors import BrendaError, CloudError
from shared.tasks.task import FrameChunk, ScriptTask, Task
from tests.node.conftest import Farm, wait_for
from tests.proxy import proxy_to

POISON = ScriptTask(FrameChunk(99, 99, 1), None, 'echo "Error: broken scene" >&2; exit 3\n')


def logged_tasks(log: Path, frames: range, *, seconds: float = 0.0) -> list[Task]:
    """Tasks that note each render in ``log`` (to count renders), then write their frame."""
    script = (
        f'echo "$START" >> {log}; sleep {seconds}; '
        'echo "frame $START" > "$OUTDIR/frame_$START.txt"\n'
    )
    return [ScriptTask(FrameChunk(f, f, 1), None, script.replace("$START", str(f))) for f in frames]


def renders(log: Path) -> Counter[str]:
    return Counter(log.read_text().split()) if log.exists() else Counter()


def stored(boto_client: Any) -> list[str]:
    listing = boto_client("s3").list_objects_v2(Bucket="frames", Prefix="shot/frame_")
    return sorted(item["Key"].removeprefix("shot/") for item in listing.get("Contents", []))


def frame_names(frames: range) -> list[str]:
    return sorted(f"frame_{frame}.txt" for frame in frames)


def status_of(farm: Farm, capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> str:
    for key, value in farm.settings.items():
        monkeypatch.setenv(f"BRENDA_{key}", value)
    assert brenda_work(["status"]) == 0
    return capsys.readouterr().out


def test_an_output_store_outage_dead_letters_nothing_and_renders_nothing_twice(
    farm: Farm,
    aws: str,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    boto_client("s3").create_bucket(Bucket="frames")
    farm.settings.update(RENDER_OUTPUT="s3://frames/shot", ERROR_PAUSE="2")
    log = farm.root / "renders.log"
    farm.push([POISON])
    with proxy_to(aws) as store:
        store.cut()
        # SQS is reached directly, the store only through the proxy, which is down for 20 s.
        reach_store = {"AWS_ENDPOINT_URL_S3": store.url}
        nodes = [
            farm.start_node(name, environment=reach_store, DONE="poll", POLL_PAUSE="1")
            for name in "ab"
        ]
        wait_for(lambda: farm.counts().dead == 1, 30, "the poison task to be dead-lettered")
        farm.push(logged_tasks(log, range(1, 9)))
        time.sleep(20)
        assert stored(boto_client) == []
        assert "waiting for the output store" in {farm.status(name).get("state") for name in "ab"}
        store.restore()
        for name in "ab":
            (farm.work_dir(name) / "DONE").write_text("exit\n")
        assert [node.wait(timeout=60) for node in nodes] == [0, 0], farm.console("a")
    assert stored(boto_client) == frame_names(range(1, 9))
    assert set(renders(log).values()) == {1}, renders(log)
    counts = farm.counts()
    assert (counts.pending, counts.in_flight, counts.dead) == (0, 0, 1)
    # The poison task's error, noted while the store was down, reached it once it was back.
    out = status_of(farm, capsys, monkeypatch)
    assert "  frames 99: Task frames 99 failed: the task exited with status 3" in out


def test_a_node_rides_out_an_aws_outage_far_longer_than_its_retry_count(
    farm: Farm, aws: str, boto_client: Any
) -> None:
    boto_client("s3").create_bucket(Bucket="frames")
    # Two failures in a row used to kill a node; now only two failures over ten minutes would.
    farm.settings.update(
        RENDER_OUTPUT="s3://frames/shot", ERROR_PAUSE="2", N_RETRIES="2", RESET_PERIOD="600"
    )
    log = farm.root / "renders.log"
    farm.push(logged_tasks(log, range(1, 13), seconds=0.3))
    with proxy_to(aws) as endpoint:
        through_proxy = {"AWS_ENDPOINT_URL": endpoint.url}
        nodes = [farm.start_node(name, environment=through_proxy) for name in "ab"]
        wait_for(lambda: len(stored(boto_client)) >= 2, 60, "the first frames")
        endpoint.cut()
        time.sleep(15)
        assert all(node.poll() is None for node in nodes), farm.console("a")
        endpoint.restore()
        assert [node.wait(timeout=90) for node in nodes] == [0, 0], farm.console("a")
    assert stored(boto_client) == frame_names(range(1, 13))
    assert set(renders(log).values()) == {1}, renders(log)
    counts = farm.counts()
    assert (counts.pending, counts.in_flight, counts.dead) == (0, 0, 0)
    assert "retry 3 in" in farm.console("a") + farm.console("b")


class Clock:
    """Simulated time for Backoff: waits advance it instead of sleeping."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.pauses.append(seconds)
        self.now += seconds + 0.5  # each failing request takes a moment too
        return False


def test_backoff_doubles_with_jitter_resets_on_success_and_outlasts_ten_minutes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(backoff_module.time, "monotonic", clock.monotonic)
    stop = threading.Event()
    monkeypatch.setattr(stop, "wait", clock.wait)
    config = load_config(environ={})  # the defaults: N_RETRIES 5, ERROR_PAUSE 30, 3600 s
    draws = iter([0.0, 1.0, 0.5] + [0.5] * 10_000)
    backoff = Backoff(config, stop, draw=lambda: next(draws))
    error = CloudError("Could not reach SQS.")
    for _ in range(3):
        backoff.failed(error)
    # 1 s halved (jitter low), 2 s whole (jitter high), 4 s at three quarters.
    assert clock.pauses == [0.5, 2.0, 3.0]
    backoff.succeeded()
    backoff.failed(error)
    assert clock.pauses[-1] == 0.75
    backoff.succeeded()
    started = clock.now
    while clock.now - started < 600:
        backoff.failed(error)
    assert max(clock.pauses) == 22.5  # ERROR_PAUSE caps the pause (here at three quarters)
    with pytest.raises(BrendaError, match="^Giving up after"):
        while True:
            backoff.failed(error)
    assert clock.now - started >= 3600
