# SPDX-License-Identifier: GPL-3.0-or-later
"""A local farm for node tests: real ``brenda-node`` processes against moto's server."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from shared.cli.work import main as brenda_work
from shared.core.config import Config, load_config
from shared.tasks import queue
from shared.tasks.task import FrameChunk, ScriptTask, Task, Tile
from tests.conftest import QuietHandler, serving_http


@dataclass
class Farm:
    """Settings shared by the test's nodes, and the nodes it started."""

    root: Path
    settings: dict[str, str]
    nodes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def config(self) -> Config:
        environ = {**os.environ, **{f"BRENDA_{k}": v for k, v in self.settings.items()}}
        return load_config(environ=environ)

    def push(self, tasks: Sequence[Task]) -> None:
        queue.push(self.config(), tasks)

    def work_dir(self, name: str) -> Path:
        return self.root / "nodes" / name

    def start_node(
        self,
        name: str,
        *,
        environment: dict[str, str] | None = None,
        wrapper: Sequence[str] = (),
        **settings: str,
    ) -> subprocess.Popen[bytes]:
        """A node with the farm's settings, ``settings`` on top, and ``environment`` variables,
        started through the ``wrapper`` command if any."""
        folder = self.work_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        environ = {**os.environ, **(environment or {})}
        for key, value in {**self.settings, "WORK_DIR": str(folder), **settings}.items():
            environ[f"BRENDA_{key}"] = value
        with (folder / "console").open("wb") as console:
            node = subprocess.Popen(
                [*wrapper, sys.executable, "-m", "shared.cli.node"],
                env=environ,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=folder,
            )
        self.nodes.append(node)
        return node

    def console(self, name: str) -> str:
        return (self.work_dir(name) / "console").read_text(errors="replace")

    def status(self, name: str) -> dict[str, Any]:
        path = self.work_dir(name) / "status.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def counts(self) -> Any:
        return queue.status(self.config())

    @property
    def output(self) -> Path:
        return Path(self.settings["RENDER_OUTPUT"].removeprefix("file://"))

    def stored(self) -> list[str]:
        """The names stored in the farm's output folder, without Brenda's records (.brenda/)."""
        return sorted(path.name for path in self.output.iterdir() if path.name != ".brenda")


def submit_job(capsys: pytest.CaptureFixture[str], project: Path, *more: str) -> str:
    """Submit a one-frame job of ``project`` (a folder) with ``brenda-work``; its id."""
    argv = ["--project", f"file://{project}", "--frames", "1", *more, "submit"]
    assert brenda_work(argv) == 0, capsys.readouterr().err
    match = re.search(r"Submitted job (\S+):", capsys.readouterr().out)
    assert match
    return match.group(1)


def empty_project(folder: Path) -> Path:
    """A project folder holding an empty ``scene.blend`` (for fake Blenders)."""
    folder.mkdir()
    (folder / "scene.blend").write_bytes(b"")
    return folder


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def make_sample_blend(blend: Path, *, width: int, height: int, samples: int, frames: int) -> Path:
    """Brenda's sample scene saved as ``blend``, made by the bpy wheel."""
    settings = {
        "output": str(blend),
        "width": width,
        "height": height,
        "samples": samples,
        "frames": frames,
    }
    script = Path(__file__).parents[2] / "brenda_node" / "sample_scene.py"
    host = [sys.executable, "-m", "brenda_node.bpy_host", "-b", "--python", str(script)]
    subprocess.run(
        [*host, "--", json.dumps(settings)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return blend


def script_tasks(script: str, frames: range) -> list[Task]:
    return [ScriptTask(FrameChunk(f, f, 1), None, script.replace("$START", str(f))) for f in frames]


def tile_task(frame: int, tile: Tile, script: str) -> Task:
    return ScriptTask(FrameChunk(frame, frame, 1), tile, script)


@pytest.fixture
def farm(aws: str, tmp_path: Path) -> Iterator[Farm]:
    project = tmp_path / "project"
    project.mkdir()
    output = tmp_path / "output"
    farm = Farm(
        root=tmp_path,
        settings={
            "WORK_QUEUE": "sqs://jobs",
            "BLENDER_PROJECT": f"file://{project}",
            "RENDER_OUTPUT": f"file://{output}",
            "RUNNING_ON_EC2": "0",
            "RECEIVE_WAIT": "1",
            "ERROR_PAUSE": "0",
            "VISIBILITY_TIMEOUT": "30",
            "VISIBILITY_TIMEOUT_REASSERT": "5",
        },
    )
    try:
        yield farm
    finally:
        for node in farm.nodes:
            if node.poll() is None:
                node.kill()
            node.wait()
        kill_processes_in(tmp_path)


def processes_running(command: str) -> list[str]:
    """The ids of processes whose command line holds ``command`` (a test's own sleep length)."""
    found = subprocess.run(["pgrep", "-f", command], check=False, capture_output=True, text=True)
    return found.stdout.split()


@pytest.fixture
def job_farm(farm: Farm, boto_client: Any, monkeypatch: pytest.MonkeyPatch) -> Farm:
    """The farm with nodes serving jobs: no WORK_QUEUE, frames under s3://studio/frames/; the
    settings are in this process's environment too, for brenda-work."""
    boto_client("s3").create_bucket(Bucket="studio")
    for key in ("WORK_QUEUE", "BLENDER_PROJECT", "RENDER_OUTPUT"):
        del farm.settings[key]
    farm.settings.update(FARM="studio", FARM_OUTPUTS="s3://studio/frames/", JOB_REFRESH="1")
    for key, value in farm.settings.items():
        monkeypatch.setenv(f"BRENDA_{key}", value)
    return farm


def kill_processes_in(root: Path) -> None:
    """Kill every process working in ``root``: nodes and the task processes they started in
    sessions of their own, which outlive a killed node (and used to upset the next test)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            folder = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if folder == root or root in folder.parents:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)


LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def logged_seconds_between(console: str, first: str, then: str) -> float:
    """Seconds between the node's log lines holding ``first`` and, after it, ``then``: the
    node's own timing, which a busy test machine does not distort."""
    stamps: list[datetime] = []
    wanted = [first, then]
    for line in console.splitlines():
        match = LOG_TIME.match(line)
        if match and wanted and wanted[0] in line:
            stamps.append(datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f"))
            wanted.pop(0)
    assert not wanted, f"the node never logged {wanted[0]!r}:\n{console[-2000:]}"
    return (stamps[1] - stamps[0]).total_seconds()


class MetadataServer(http.server.ThreadingHTTPServer):
    """EC2 instance metadata (IMDSv2) on loopback: ``values`` maps paths to what they read."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), MetadataHandler)
        self.values: dict[str, str] = {}
        self.token_requests = 0
        self.url = ""


class MetadataHandler(QuietHandler):
    server: MetadataServer

    def do_PUT(self) -> None:  # noqa: N802 (named by http.server)
        if self.path == "/latest/api/token":
            self.server.token_requests += 1
            self.reply(200, "token-1")
        else:
            self.reply(404, "")

    def do_GET(self) -> None:  # noqa: N802 (named by http.server)
        if self.headers.get("X-aws-ec2-metadata-token") != "token-1":
            self.reply(401, "")
        elif self.path in self.server.values:
            self.reply(200, self.server.values[self.path])
        else:
            self.reply(404, "")


@pytest.fixture
def metadata() -> Iterator[MetadataServer]:
    server = MetadataServer()
    with serving_http(server) as url:
        server.url = url
        yield server
