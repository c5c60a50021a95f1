# SPDX-License-Identifier: GPL-3.0-or-later
"""One table of exit statuses that every command follows (the README's, under Commands):

- 0: the command did its work;
- 1: it could not do its work (a setting that is not set, AWS, a file it writes, a render);
- 2: the command line is wrong: an unknown or missing option, a malformed or clashing value, a
  file it names (a configuration file, a .blend) that is not there or is not one; nothing done;
- 130: interrupted by SIGINT (Ctrl-C).

Each command is run against each row: in this process where it can be, as a real process where
only a signal shows it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from shared.cli.brenda import main as brenda
from shared.cli.common import EXIT_DONE, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE
from shared.cli.ebs import main as brenda_ebs
from shared.cli.node import main as brenda_node
from shared.cli.run import main as brenda_run
from shared.cli.tool import main as brenda_tool
from shared.cli.work import main as brenda_work
from tests.node.conftest import wait_for

Main = Callable[[Sequence[str] | None], int]

COMMANDS: dict[str, tuple[Main, str]] = {
    "brenda": (brenda, "shared.cli.brenda"),
    "brenda-work": (brenda_work, "shared.cli.work"),
    "brenda-run": (brenda_run, "shared.cli.run"),
    "brenda-tool": (brenda_tool, "shared.cli.tool"),
    "brenda-ebs": (brenda_ebs, "shared.cli.ebs"),
    "brenda-node": (brenda_node, "shared.cli.node"),
}

# Each command's argv is formatted with: {blend} a .blend, {corrupt} a .blend that is not one,
# {file} a regular file, {project} a project folder, {work} a folder for a node.
OFFLINE: list[tuple[str, list[str], int]] = [
    ("brenda", ["demo", "--bogus"], EXIT_USAGE),
    ("brenda", ["demo", "--nodes", "0"], EXIT_USAGE),
    ("brenda", ["demo", "--blend", "{corrupt}"], EXIT_USAGE),
    ("brenda", ["pack", "nowhere.blend"], EXIT_USAGE),
    ("brenda", ["pack", "{corrupt}"], EXIT_USAGE),
    ("brenda", ["upload", "{corrupt}"], EXIT_USAGE),
    ("brenda", ["upload", "-c", "/nonexistent.conf", "{blend}"], EXIT_USAGE),
    ("brenda", ["pack", "-d", "{blend}"], EXIT_DONE),
    ("brenda", ["pack", "{blend}", "-o", "{file}/x.tar.gz"], EXIT_ERROR),
    ("brenda-work", ["--bogus", "push"], EXIT_USAGE),
    ("brenda-work", ["-e", "0", "-T", "frame", "push"], EXIT_USAGE),
    ("brenda-work", ["-c", "/nonexistent.conf", "jobs"], EXIT_USAGE),
    ("brenda-work", ["-T", "frame", "-e", "2", "-d", "push"], EXIT_DONE),
    ("brenda-work", ["show"], EXIT_USAGE),
    ("brenda-work", ["video"], EXIT_USAGE),
    ("brenda-work", ["status"], EXIT_ERROR),
    ("brenda-work", ["show", "shot1"], EXIT_ERROR),
    ("brenda-work", ["jobs"], EXIT_ERROR),
    ("brenda-run", ["--bogus", "spot"], EXIT_USAGE),
    ("brenda-run", ["-N", "0", "spot"], EXIT_USAGE),
    ("brenda-run", ["-c", "/nonexistent.conf", "status"], EXIT_USAGE),
    ("brenda-run", ["status"], EXIT_ERROR),
    ("brenda-tool", ["--bogus", "ssh"], EXIT_USAGE),
    ("brenda-tool", ["-n", "127.0.0.1", "prune"], EXIT_USAGE),
    ("brenda-tool", ["-c", "/nonexistent.conf", "instances"], EXIT_USAGE),
    ("brenda-tool", ["instances"], EXIT_ERROR),
    ("brenda-ebs", ["--bogus", "new"], EXIT_USAGE),
    ("brenda-ebs", ["snapshot"], EXIT_USAGE),
    ("brenda-ebs", ["-c", "/nonexistent.conf", "new"], EXIT_USAGE),
    ("brenda-ebs", ["-d", "-N", "shot", "snapshot"], EXIT_DONE),
    ("brenda-ebs", ["-N", "shot", "snapshot"], EXIT_ERROR),
    ("brenda-node", ["--bogus"], EXIT_USAGE),
    ("brenda-node", ["-c", "/nonexistent.conf"], EXIT_USAGE),
    ("brenda-node", [], EXIT_ERROR),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("exit-status")
    blend = folder / "shot.blend"
    save = f"import bpy; bpy.ops.wm.save_as_mainfile(filepath={str(blend)!r})"
    subprocess.run([sys.executable, "-c", save], check=True, capture_output=True, timeout=120)
    (folder / "corrupt.blend").write_bytes(b"BLENDER-v405REND\x00garbage")
    (folder / "regular-file").write_text("not a folder\n")
    (folder / "project").mkdir()
    (folder / "project" / "scene.blend").write_bytes(b"")
    return {
        "blend": str(blend),
        "corrupt": str(folder / "corrupt.blend"),
        "file": str(folder / "regular-file"),
        "project": str(folder / "project"),
        "work": str(folder / "work"),
    }


def run_in_process(main: Main, argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit:  # argparse's own errors
        return int(str(exit.code))


@pytest.mark.parametrize(
    ("prog", "argv", "status"),
    OFFLINE,
    ids=[f"{status}: {prog} {' '.join(argv)}" for prog, argv, status in OFFLINE],
)
def test_every_command_follows_one_exit_status_table(
    files: dict[str, str],
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    prog: str,
    argv: list[str],
    status: int,
) -> None:
    monkeypatch.chdir(isolated_environment)
    # Nothing reachable: a command that gets past its command line fails for want of AWS.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("BRENDA_FARM_PROJECTS", "s3://studio-projects/projects/")
    assert run_in_process(COMMANDS[prog][0], [part.format(**files) for part in argv]) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if status != EXIT_DONE:
        assert err.startswith(f"{prog}: ") and err.count("\n") == 1, err


AWS_DONE: list[tuple[str, list[str]]] = [
    ("brenda-work", ["jobs"]),
    ("brenda-run", ["status"]),
    ("brenda-tool", ["instances"]),
]


@pytest.mark.parametrize(
    ("prog", "argv"), AWS_DONE, ids=[f"{prog} {' '.join(argv)}" for prog, argv in AWS_DONE]
)
def test_every_command_that_did_its_work_on_aws_exits_0(
    aws: str,
    boto_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    prog: str,
    argv: list[str],
) -> None:
    """An empty farm, on moto's server: nothing to show is no failure."""
    boto_client("s3").create_bucket(Bucket="studio")
    monkeypatch.setenv("BRENDA_FARM_OUTPUTS", "s3://studio/frames/")
    assert run_in_process(COMMANDS[prog][0], argv) == EXIT_DONE
    assert capsys.readouterr().err == ""


def test_a_missing_setting_is_exit_status_1_whatever_reads_it(
    aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """FARM_OUTPUTS not set: jobs and submit agree (submit reads it with the command line)."""
    for argv in (["jobs"], ["--project", "s3://studio/shot.tar.gz", "-e", "2", "submit"]):
        assert brenda_work(argv) == EXIT_ERROR
        assert "FARM_OUTPUTS is not set" in capsys.readouterr().err


@pytest.fixture
def silent_endpoint() -> Iterator[tuple[str, threading.Event]]:
    """An endpoint that takes connections and never answers: a command stays in its first AWS
    call until it is interrupted. Yields its URL and an event set once a command connected."""
    server = socket.create_server(("127.0.0.1", 0))
    connected = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            held.append(connection)
            connected.set()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", connected
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes the accept() that close() alone leaves waiting
        server.close()
        for connection in held:
            connection.close()
        thread.join(timeout=10)


INTERRUPTED: list[tuple[str, list[str]]] = [
    ("brenda", ["upload", "{blend}"]),
    ("brenda-work", ["jobs"]),
    ("brenda-run", ["status"]),
    ("brenda-tool", ["instances"]),
    ("brenda-ebs", ["-N", "shot", "snapshot"]),
]


def start(prog: str, argv: list[str], environ: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", COMMANDS[prog][1], *argv],
        env=environ,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    ("prog", "argv"), INTERRUPTED, ids=[f"{prog} {' '.join(argv)}" for prog, argv in INTERRUPTED]
)
def test_every_command_interrupted_by_sigint_exits_130(
    files: dict[str, str],
    isolated_environment: Path,
    silent_endpoint: tuple[str, threading.Event],
    prog: str,
    argv: list[str],
) -> None:
    endpoint, connected = silent_endpoint
    environ = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "brenda-test",
        "AWS_SECRET_ACCESS_KEY": "brenda-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "BRENDA_FARM_PROJECTS": "s3://studio-projects/projects/",
        "BRENDA_FARM_OUTPUTS": "s3://studio/frames/",
    }
    command = start(prog, [part.format(**files) for part in argv], environ, isolated_environment)
    try:
        assert connected.wait(timeout=120), command.communicate(timeout=30)
        command.send_signal(signal.SIGINT)
        _, err = command.communicate(timeout=60)
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
    assert command.returncode == EXIT_INTERRUPTED, err
    assert err.endswith(f"{prog}: interrupted\n"), err
    assert "Traceback" not in err


def has_started(log: Path) -> bool:
    """The node has its project and takes tasks."""
    return log.exists() and "project folder" in log.read_text()


def test_a_node_stopped_by_sigint_exits_130_and_by_sigterm_0(
    boto_client: Any, files: dict[str, str], isolated_environment: Path
) -> None:
    """SIGINT is the Ctrl-C of a node started by hand; SIGTERM is how systemd and EC2 stop one,
    its normal end."""
    boto_client("sqs").create_queue(QueueName="exit-status")
    statuses: dict[str, Any] = {}
    for stop in (signal.SIGINT, signal.SIGTERM):
        work = Path(files["work"]) / stop.name
        log = work / "log"
        environ = {
            **os.environ,
            "BRENDA_WORK_QUEUE": "sqs://exit-status",
            "BRENDA_BLENDER_PROJECT": f"file://{files['project']}",
            "BRENDA_RENDER_OUTPUT": f"file://{work}-frames",
            "BRENDA_WORK_DIR": str(work),
            "BRENDA_RUNNING_ON_EC2": "0",
            "BRENDA_RECEIVE_WAIT": "1",
            "BRENDA_DONE": "poll",
            "BRENDA_POLL_PAUSE": "1",
        }
        node = start("brenda-node", [], environ, isolated_environment)
        try:
            wait_for(partial(has_started, log), 120, "a node")
            node.send_signal(stop)
            node.communicate(timeout=60)
        finally:
            if node.poll() is None:
                node.kill()
                node.wait()
        statuses[stop.name] = node.returncode
    assert statuses == {"SIGINT": EXIT_INTERRUPTED, "SIGTERM": EXIT_DONE}
