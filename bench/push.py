# SPDX-License-Identifier: GPL-3.0-or-later
"""Time to push 10,000 tasks: Brenda's batched, parallel client against one message per request.

Both clients run in the same process against the same moto server (its own process, on
loopback), so their ratio is fair on a noisy machine. Two network settings are measured:
plain loopback, and loopback behind a proxy that delays every request by ``--rtt-ms`` (default
20 ms, a workstation's round trip to an AWS region), where each request costs what it costs on
AWS.

moto's SQS does work proportional to the queue's length on every message it accepts, so a
queue of 10,000 messages measures moto, not the client. The tasks therefore go out in rounds of
``--round`` messages; after each round the bench checks that the queue holds exactly that
round's messages and empties it, outside the timed part.

Run: ``python bench/push.py [--tasks N] [--round N] [--rtt-ms MS]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from shared.aws.session import make_client
from shared.aws.sqs import WorkQueue
from shared.core.config import load_config
from shared.tasks.task import FrameRange, chunk_frames, encode_task, load_template, script_tasks
from shared.workstation.local_aws import local_environment


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).close()
            return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("moto's server did not start within 30 s")


def start_delay_proxy(target_port: int, delay: float) -> int:
    """A loopback TCP proxy that holds every chunk a client sends for ``delay`` seconds."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)

    def pipe(source: socket.socket, sink: socket.socket, hold: float) -> None:
        try:
            while chunk := source.recv(65536):
                if hold:
                    time.sleep(hold)
                sink.sendall(chunk)
        except OSError:
            pass  # the other direction closed both sockets
        finally:
            source.close()
            sink.close()

    def accept() -> None:
        while True:
            client, _ = listener.accept()
            upstream = socket.create_connection(("127.0.0.1", target_port))
            for args in ((client, upstream, delay), (upstream, client, 0.0)):
                threading.Thread(target=pipe, args=args, daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return int(listener.getsockname()[1])


def push_one_by_one(queue: WorkQueue, bodies: Sequence[str]) -> None:
    """What the original Brenda did: one SendMessage request per task."""
    for body in bodies:
        queue.client.send_message(QueueUrl=queue.url, MessageBody=body)


def push_batched(queue: WorkQueue, bodies: Sequence[str]) -> None:
    queue.send_all(bodies)


def timed_in_rounds(
    client: Any, bodies: Sequence[str], size: int, push: Callable[[WorkQueue, Any], None]
) -> float:
    """Push ``bodies`` in rounds, each into a new empty queue (made and checked untimed): moto's
    cost grows with the queue's length, and it allows one purge a minute, so no purging."""
    elapsed = 0.0
    for first in range(0, len(bodies), size):
        chunk = bodies[first : first + size]
        queue = WorkQueue.ensure(
            client,
            f"bench-push-{first}",
            visibility_timeout=120,
            max_receive_count=3,
            retention=86400,
        )
        started = time.perf_counter()
        push(queue, chunk)
        elapsed += time.perf_counter() - started
        held = queue.counts().pending
        queue.delete_queues()
        if held != len(chunk):
            raise SystemExit(f"lost tasks: pushed {len(chunk)}, the queue holds {held}")
    return elapsed


def measure(endpoint: str, bodies: Sequence[str], size: int) -> tuple[float, float]:
    os.environ.update(local_environment(endpoint))
    client = make_client("sqs", load_config(), pool=16)
    baseline = timed_in_rounds(client, bodies, size, push_one_by_one)
    ours = timed_in_rounds(client, bodies, size, push_batched)
    return baseline, ours


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--round", type=int, default=100)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    args = parser.parse_args()
    template, origin = load_template("frame")
    chunks = chunk_frames([FrameRange(1, args.tasks)], 1)
    bodies = [encode_task(task) for task in script_tasks(template, chunks, None, origin=origin)]
    server, port = start_moto()
    try:
        proxy = start_delay_proxy(port, args.rtt_ms / 1000)
        results = {
            "loopback": measure(f"http://127.0.0.1:{port}", bodies, args.round),
            f"loopback + {args.rtt_ms:g} ms": measure(
                f"http://127.0.0.1:{proxy}", bodies, args.round
            ),
        }
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"tasks pushed: {args.tasks} (in rounds of {args.round})")
    for network, (baseline, ours) in results.items():
        print(f"{network}:")
        print(
            f"  one message per request   {baseline:8.2f} s  {args.tasks / baseline:8.0f} tasks/s"
        )
        print(f"  brenda (10 per request,   {ours:8.2f} s  {args.tasks / ours:8.0f} tasks/s")
        print("    8 requests in flight)")
        print(f"  speed-up                  {baseline / ours:8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
