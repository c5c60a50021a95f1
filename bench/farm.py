# SPDX-License-Identifier: GPL-3.0-or-later
"""The node's own cost and the farm's efficiency, on a local farm (moto's server on loopback).

(i) Per-task overhead: one node works through trivial shell tasks. For each task, the time from
    taking it to taking the next, less the task's own run time, is what the node spends outside
    the task (receive, lease, bookkeeping; the upload and delete of a task overlap the next).
    Baseline of the same run: the bare task started the same way 50 times without Brenda.
(ii) Farm efficiency: 40 tasks of 0.5 s on 4 nodes. Efficiency = task time / (nodes x wall),
    wall measured from starting the nodes until the last output is stored, and also from the
    first task taken (steady state, without the nodes' start-up).

Run: ``python bench/farm.py [--trivial N] [--tasks N] [--nodes N] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path

from shared.core.config import Config, load_config
from shared.outputs.store import FolderStore
from shared.tasks import queue
from shared.tasks.task import FrameChunk, ScriptTask
from shared.workstation.local_aws import local_endpoint

TRIVIAL = 'echo "$START" > "$OUTDIR/frame_$START.txt"\n'
TAKEN = re.compile(r"^(\S+ \S+) brenda_node\.node INFO: task \d+: frames (\d+) ")
RAN = re.compile(r"brenda_node\.node INFO: task frames (\d+) rendered in ([0-9.]+) s")


def settings(root: Path, name: str) -> dict[str, str]:
    return {
        "WORK_QUEUE": f"sqs://{name}",
        "BLENDER_PROJECT": f"file://{root / 'project'}",
        "RENDER_OUTPUT": f"file://{root / name}",
        "RUNNING_ON_EC2": "0",
        "RECEIVE_WAIT": "1",
    }


def config_of(values: dict[str, str]) -> Config:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BRENDA_")}
    return load_config(environ={**environ, **{f"BRENDA_{k}": v for k, v in values.items()}})


def push(values: dict[str, str], script: str, count: int) -> None:
    tasks = [
        ScriptTask(FrameChunk(n, n, 1), None, script.replace("$START", str(n)))
        for n in range(1, count + 1)
    ]
    queue.push(config_of(values), tasks)


def start_node(values: dict[str, str], folder: Path) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BRENDA_")}
    environ.update({f"BRENDA_{k}": v for k, v in values.items()})
    environ["BRENDA_WORK_DIR"] = str(folder)
    return subprocess.Popen(
        [sys.executable, "-m", "shared.cli.node"],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for_outputs(folder: Path, count: int) -> float:
    store = FolderStore(folder)
    while len(store.names()) < count:
        time.sleep(0.05)
    return time.monotonic()


def taken_times(log: Path) -> tuple[dict[int, float], dict[int, float]]:
    taken: dict[int, float] = {}
    ran: dict[int, float] = {}
    for line in log.read_text().splitlines():
        if match := TAKEN.match(line):
            stamp = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            taken[int(match[2])] = stamp
        elif match := RAN.search(line):
            ran[int(match[1])] = float(match[2])
    return taken, ran


def bare_task_seconds(root: Path, count: int) -> list[float]:
    outdir = root / "bare"
    outdir.mkdir()
    script = root / "bare.sh"
    script.write_text(TRIVIAL.replace("$START", "1"))
    seconds = []
    for _ in range(count):
        started = time.monotonic()
        subprocess.run(
            ["/bin/bash", str(script)], env={**os.environ, "OUTDIR": str(outdir)}, check=True
        )
        seconds.append(time.monotonic() - started)
    return seconds


def overhead(root: Path, count: int) -> tuple[list[float], list[float]]:
    values = settings(root, "trivial")
    push(values, TRIVIAL, count)
    node = start_node(values, root / "node-trivial")
    wait_for_outputs(root / "trivial", count)
    node.wait(timeout=120)
    taken, ran = taken_times(root / "node-trivial" / "log")
    order = sorted(taken, key=taken.__getitem__)
    gaps = [taken[after] - taken[before] - ran[before] for before, after in pairwise(order)]
    return gaps, list(ran.values())


def efficiency(root: Path, count: int, nodes: int, seconds: float) -> tuple[float, float]:
    values = settings(root, "half")
    push(values, f'sleep {seconds}; echo > "$OUTDIR/frame_$START.txt"\n', count)
    started = time.monotonic()
    workers = [start_node(values, root / f"node-half-{n}") for n in range(nodes)]
    finished = wait_for_outputs(root / "half", count)
    for worker in workers:
        worker.wait(timeout=120)
    first_taken = min(
        min(taken_times(root / f"node-half-{n}" / "log")[0].values(), default=float("inf"))
        for n in range(nodes)
    )
    # The log's wall-clock stamps and the monotonic clock meet at the end of the run.
    steady_wall = time.time() - (time.monotonic() - finished) - first_taken
    return count * seconds / (nodes * (finished - started)), count * seconds / (nodes * steady_wall)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trivial", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="brenda-bench-") as scratch, local_endpoint():
        root = Path(scratch)
        (root / "project").mkdir()
        bare = bare_task_seconds(root, args.trivial)
        gaps, runs = overhead(root, args.trivial)
        whole, steady = efficiency(root, args.tasks, args.nodes, args.seconds)
    ms = 1000
    print(f"(i) per-task overhead, {args.trivial} trivial tasks on one node:")
    print(f"    bare task without Brenda (baseline)  median {statistics.median(bare) * ms:6.1f} ms")
    print(f"    task run time inside the node        median {statistics.median(runs) * ms:6.1f} ms")
    print(
        f"    node overhead outside the task       median {statistics.median(gaps) * ms:6.1f} ms"
        f"  (p90 {statistics.quantiles(gaps, n=10)[-1] * ms:.1f} ms; target < 150)"
    )
    print(f"(ii) {args.tasks} tasks of {args.seconds} s on {args.nodes} nodes:")
    print(f"    efficiency from starting the nodes   {whole:6.1%}  (target >= 85%)")
    print(f"    efficiency from the first task taken {steady:6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
