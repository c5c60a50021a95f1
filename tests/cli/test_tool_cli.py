# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-tool`` against real OpenSSH servers on loopback (three "nodes", one of them down),
real rsync, and moto's server for the farm's instances."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.cli.tool import main

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class Nodes:
    addresses: list[str]
    """127.0.0.1:PORT of each node; the last one has no server (a node that is down)."""
    identity: Path
    host_keys: list[Path]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"sshd on port {port} did not start")


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    folder = tmp_path_factory.mktemp("sshd")
    identity = keygen(folder / "client")
    (folder / "authorized_keys").write_text(Path(f"{identity}.pub").read_text())
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    servers, addresses, host_keys = [], [], []
    for number in range(3):
        port = free_port()
        addresses.append(f"127.0.0.1:{port}")
        host_keys.append(keygen(folder / f"host-{number}"))
        if number == 2:
            continue
        config = folder / f"sshd-{number}.conf"
        config.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_keys[-1]}\n"
            f"PidFile {folder}/sshd-{number}.pid\nAuthorizedKeysFile {folder}/authorized_keys\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "StrictModes no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n"
        )
        servers.append(subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)]))
        wait_for_port(port)
    yield Nodes(addresses, identity, host_keys)
    for server in servers:
        server.terminate()
        server.wait()


@pytest.fixture
def tool_env(nodes: Nodes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BRENDA_FARM", "loop")
    monkeypatch.setenv("BRENDA_SSH_IDENTITY", str(nodes.identity))
    monkeypatch.setenv("BRENDA_AWS_USER", getpass.getuser())
    hosts = tmp_path / "hosts"
    hosts.write_text("".join(f"{address}\n" for address in nodes.addresses))
    return hosts


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ssh_on_every_node_reports_the_one_that_is_down(
    nodes: Nodes, tool_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "-H", str(tool_env), "ssh", "uptime")
    assert code == 1
    down = nodes.addresses[2]
    lines = out.splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(
        f"[{a}]" for a in nodes.addresses[:2]
    )
    assert all("load average" in line for line in lines)
    port = down.split(":")[1]
    assert f"brenda-tool: {down}: cannot connect: Unable to connect to port {port}" in err
    assert err.endswith("brenda-tool: 1 of 3 nodes failed.\n")
    known = (Path.home() / ".brenda" / "known_hosts-loop").read_text().splitlines()
    assert len(known) == 2 and known[0].startswith("[127.0.0.1]:")


def test_a_changed_host_key_is_refused(
    nodes: Nodes, tool_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = nodes.addresses[0]
    host, port = first.split(":")
    other_key = Path(f"{nodes.host_keys[2]}.pub").read_text().split()
    known = Path.home() / ".brenda" / "known_hosts-loop"
    known.parent.mkdir(parents=True)
    known.write_text(f"[{host}]:{port} {other_key[0]} {other_key[1]}\n")
    code, out, err = run(capsys, "-n", first, "ssh", "true")
    assert code == 1 and out == ""
    assert "SSH host key is not the one pinned for this farm" in err


def test_failing_remote_command_is_reported_per_host(
    nodes: Nodes, tool_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "-n", nodes.addresses[0], "ssh", "echo oops; exit 3")
    assert code == 1
    assert out == f"[{nodes.addresses[0]}] oops\n"
    assert "the command exited with status 3" in err


def test_rsync_copies_to_every_live_node(
    nodes: Nodes, tool_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "brenda.conf"
    source.write_text("DONE=poll\n")
    target = tmp_path / "copied"
    target.mkdir()
    code, _, err = run(capsys, "-H", str(tool_env), "rsync", str(source), f"HOST:{target}/")
    assert code == 1
    assert (target / "brenda.conf").read_text() == "DONE=poll\n"
    assert err.count("rsync exited with status") == 1
    assert nodes.addresses[2] in err


def test_prune_ranks_nodes_over_ssh(
    nodes: Nodes,
    tool_env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = tmp_path / "node-work"
    work.mkdir()
    (work / "task_last").write_text("1764040000\n")
    (work / "brenda.pid").write_text("1\n")
    monkeypatch.setenv("BRENDA_REMOTE_WORK_DIR", str(work))
    code, out, _ = run(capsys, "-H", str(tool_env), "-d", "prune", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split()[0] == lines[2].split()[0] == "1764040000"
    assert lines[3].split() == ["-1", nodes.addresses[2]]
    assert lines[4].startswith("Shut down: 127.0.0.1:") and len(lines[4].split()) == 4


def test_prune_needs_a_count(tool_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-H", str(tool_env), "prune")
    assert code == 2
    assert (
        err == "brenda-tool: prune needs the number of nodes to keep, like: brenda-tool prune 10.\n"
    )


def test_shell_syntax_reaches_the_remote_shell(
    nodes: Nodes, tool_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "-n", nodes.addresses[1], "ssh", "echo", "up", "$((6*7))")
    assert code == 0 and out == f"[{nodes.addresses[1]}] up 42\n"


def test_instances_lists_the_farms_running_nodes_and_honours_the_threshold(
    aws: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, boto_client: Any
) -> None:
    monkeypatch.setenv("BRENDA_FARM", "listed")
    ec2 = boto_client("ec2")
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "brenda:farm", "Value": "listed"}]}]
    ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=2,
        MaxCount=2,
        InstanceType="c7i.large",
        TagSpecifications=tags,
    )
    ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
    code, out, _ = run(capsys, "instances")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 and all(line.endswith("c7i.large") for line in lines)
    none = "Farm listed has no running nodes.\n"  # as perf and prune say it
    assert run(capsys, "--imatch", "m7i.large", "i")[1] == none
    assert run(capsys, "-t", "59", "instances")[1] == none


def test_instances_and_perf_refuse_what_follows_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Options go before the command: a -c FILE after it was silently unused."""
    config = tmp_path / "other.conf"
    config.write_text("FARM=other\n")
    for command in ("instances", "perf"):
        code, out, err = run(capsys, command, "-c", str(config))
        assert (code, out) == (2, "")
        assert err == (
            f"brenda-tool: {command} takes no arguments (-c {config}); options go before the "
            f"command, like: brenda-tool -c FILE {command}.\n"
        )
