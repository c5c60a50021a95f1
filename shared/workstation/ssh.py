# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-tool``'s operations: ssh and rsync on every node, prune, perf. No bpy module use.

Commands run on all nodes in parallel; one node failing is reported and does not stop the
others. SSH host keys are pinned per farm: the first key a node shows is saved to
``~/.brenda/known_hosts-<farm>`` (trust on first use) and a different key later is refused,
where the original ignored host keys. Hosts are the farm's running nodes, or those named with
``-n HOST`` or ``-H FILE`` (``ADDRESS[:PORT]`` per line).
"""

from __future__ import annotations

import shlex
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paramiko

from ..core.config import Config
from ..core.errors import BrendaError
from ..farm.fleet import private_key_path

SSH_TIMEOUT_SECONDS = 10
SMALL = -1
BIG = 2**32
REMOTE_STATE = (
    "cd {folder} 2>/dev/null || exit 0; if [ ! -f task_last ]; then echo SMALL; "
    "elif [ -f {pidfile} ]; then cat task_last; else echo BIG; fi"
)
REMOTE_COUNTS = (
    "cd {folder} 2>/dev/null || exit 0; if [ -f task_count ] && [ -f task_last ]; then "
    "cat task_count task_last; else echo 0; fi"
)


@dataclass(frozen=True)
class Host:
    address: str
    port: int = 22
    instance: Any = None
    """The EC2 instance behind the address, where known."""

    def __str__(self) -> str:
        return self.address if self.port == 22 else f"{self.address}:{self.port}"


@dataclass(frozen=True)
class HostResult:
    host: Host
    output: str
    error: str | None
    """Why the command failed on this host; None when it succeeded."""


def parse_host(text: str) -> Host:
    address, colon, port = text.strip().rpartition(":")
    if not colon or not port.isdigit():
        return Host(text.strip())
    return Host(address, int(port))


def read_hosts_file(path: Path) -> list[Host]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise BrendaError(f"Hosts file {path} cannot be read: {error.strerror}.") from error
    return [parse_host(line) for line in lines if line.strip() and not line.startswith("#")]


def known_hosts_path(config: Config) -> Path:
    return Path(f"~/.brenda/known_hosts-{config.text('FARM')}").expanduser()


def identity_path(config: Config) -> Path:
    own = private_key_path(config.text("SSH_KEY_NAME"))
    if own.is_file():
        return own
    configured = Path(config.text("SSH_IDENTITY")).expanduser()
    if configured.is_file():
        return configured
    raise BrendaError(
        f"No SSH private key: neither {own} nor {configured} exists; run 'brenda-run init' or "
        "set SSH_IDENTITY."
    )


class _TrustOnFirstUse:
    """paramiko policy: save an unknown host's key to the farm's known_hosts file."""

    def __init__(self, path: Path, lock: threading.Lock) -> None:
        self.path = path
        self.lock = lock

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        with self.lock:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            client.get_host_keys().add(hostname, key.get_name(), key)
            with self.path.open("a", encoding="utf-8") as known:
                known.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


@dataclass
class Fanout:
    """Runs one action per host in parallel, at most ``threads`` at a time."""

    config: Config
    user: str
    threads: int

    def __post_init__(self) -> None:
        self.identity = identity_path(self.config)
        self.known_hosts = known_hosts_path(self.config)
        self._lock = threading.Lock()

    def each(self, hosts: Sequence[Host], action: Callable[[Host], str]) -> list[HostResult]:
        def attempt(host: Host) -> HostResult:
            try:
                return HostResult(host, action(host), None)
            except _CommandFailedError as failure:
                return HostResult(host, failure.output, str(failure))
            except Exception as error:
                return HostResult(host, "", _describe(error))

        with ThreadPoolExecutor(max_workers=max(1, min(self.threads, len(hosts)))) as pool:
            return list(pool.map(attempt, hosts))

    def ssh(self, host: Host, command: str) -> str:

        client = paramiko.SSHClient()
        if self.known_hosts.is_file():
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(_TrustOnFirstUse(self.known_hosts, self._lock))
        try:
            client.connect(
                host.address,
                port=host.port,
                username=self.user,
                key_filename=str(self.identity),
                timeout=SSH_TIMEOUT_SECONDS,
                banner_timeout=SSH_TIMEOUT_SECONDS,
                auth_timeout=SSH_TIMEOUT_SECONDS,
                allow_agent=False,
                look_for_keys=False,
            )
            _, stdout, stderr = client.exec_command(command, timeout=None)
            output = str(stdout.read().decode("utf-8", "replace"))
            output += str(stderr.read().decode("utf-8", "replace"))
            status = stdout.channel.recv_exit_status()
        finally:
            client.close()
        if status != 0:
            raise _CommandFailedError(f"the command exited with status {status}", output)
        return output

    def ssh_command(self, host: Host) -> list[str]:
        """OpenSSH's command line for ``host``, with the farm's pinned host keys."""
        return [
            "ssh",
            "-i",
            str(self.identity),
            "-p",
            str(host.port),
            "-o",
            f"User={self.user}",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={SSH_TIMEOUT_SECONDS}",
        ]

    def rsync(self, host: Host, arguments: Sequence[str]) -> str:
        self.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shell = " ".join(shlex.quote(part) for part in self.ssh_command(host))
        command = [
            "rsync",
            "-e",
            shell,
            *(argument.replace("HOST", host.address) for argument in arguments),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        output = result.stdout + result.stderr
        if result.returncode != 0:
            tail = output.strip().splitlines()[-1:] or ["no output"]
            raise _CommandFailedError(
                f"rsync exited with status {result.returncode}: {tail[0]}", output
            )
        return output


class _CommandFailedError(Exception):
    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


def _describe(error: Exception) -> str:

    if isinstance(error, paramiko.BadHostKeyException):
        return (
            "its SSH host key is not the one pinned for this farm (possible man-in-the-middle); "
            "remove its line from the farm's known_hosts file only if the node was replaced"
        )
    if isinstance(error, paramiko.AuthenticationException):
        return "SSH login was refused (check the user and the key)"
    if isinstance(error, OSError):
        return f"cannot connect: {error.strerror or error}"
    return f"{type(error).__name__}: {error}"


# --- prune and perf -----------------------------------------------------------------------


def rank_key(answer: str) -> int:
    """The original's prune ranking: no task yet -> -1, node exited -> 2^32, else task_last."""
    text = answer.strip()
    if text == "SMALL":
        return SMALL
    if text == "BIG":
        return BIG
    try:
        return int(text)
    except ValueError:
        return SMALL


def prune_choice(answers: dict[Host, str], keep: int) -> tuple[list[tuple[int, Host]], list[Host]]:
    """The ranking (highest first) and the hosts to shut down so that ``keep`` remain."""
    if keep < 0:
        raise BrendaError(f"prune needs the number of nodes to keep (0 or more), not {keep}.")
    ranking = sorted(
        ((rank_key(answer), host) for host, answer in answers.items()),
        key=lambda pair: (pair[0], str(pair[1])),
        reverse=True,
    )
    surplus = max(0, len(ranking) - keep)
    return ranking, [host for _, host in ranking[:surplus]]


def minute_of_hour_at_least(launched: datetime, threshold: int, now: datetime) -> bool:
    """The original's ``-t``: uptime's minutes past the hour reach the threshold."""
    minutes = int((now - launched).total_seconds() // 60)
    return minutes % 60 >= threshold


@dataclass(frozen=True)
class TypePerformance:
    instance_type: str
    nodes: int
    tasks: int
    hours: float
    price_per_hour: float | None

    @property
    def tasks_per_hour(self) -> float:
        return self.tasks / self.hours if self.hours > 0 else 0.0

    @property
    def tasks_per_dollar(self) -> float | None:
        if not self.price_per_hour:
            return None
        return self.tasks_per_hour / self.price_per_hour


def performance(
    records: Sequence[tuple[str, datetime, int, int, float | None]],
) -> list[TypePerformance]:
    """Per instance type, from ``(type, launched, task_count, task_last, price)`` per node.

    A node's working hours run from its launch to its last stored task; its price is what it
    pays per hour (None where unknown), averaged over the type's nodes that have one.
    """
    by_type: dict[str, list[tuple[float, int, float | None]]] = {}
    for instance_type, launched, count, last, price in records:
        hours = (datetime.fromtimestamp(last, UTC) - launched).total_seconds() / 3600
        by_type.setdefault(instance_type, []).append((max(hours, 0.0), count, price))
    result = []
    for instance_type, nodes in by_type.items():
        prices = [price for _, _, price in nodes if price]
        result.append(
            TypePerformance(
                instance_type=instance_type,
                nodes=len(nodes),
                tasks=sum(count for _, count, _ in nodes),
                hours=sum(hours for hours, _, _ in nodes),
                price_per_hour=sum(prices) / len(prices) if prices else None,
            )
        )
    return sorted(result, key=lambda item: item.tasks_per_hour, reverse=True)
