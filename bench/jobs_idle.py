# SPDX-License-Identifier: GPL-3.0-or-later
"""What an idle node costs in requests with 1, 10 and 100 active jobs on its farm.

An idle node is one whose farm has active jobs but no task waiting (the last tasks are running
on other nodes): it must notice new tasks quickly and notice the end, without flooding SQS and
S3 when a fleet of 1,000 nodes idles together. The bench makes the jobs on a local moto server
(one task each, held "in flight" by the bench so that no job is done), runs the node's real job
loop for ``--seconds`` and counts every AWS request it makes, by API.

Run: ``python bench/jobs_idle.py [--seconds S] [--jobs 1,10,100]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from brenda_node.node import Node, Stopper
from brenda_node.sources import JobsSource
from shared.core.config import load_config
from shared.jobs.registry import JobRegistry, make_job
from shared.tasks.task import RenderSettings
from shared.workstation.local_aws import local_endpoint

FLEET = 1000


def idle_requests(jobs: int, seconds: float, work: Path) -> Counter[str]:
    """Requests per API made by one idle node over ``seconds``, with ``jobs`` active jobs."""
    environ = {
        **{key: value for key, value in os.environ.items() if not key.startswith("BRENDA_")},
        "BRENDA_FARM": f"bench{jobs}",
        "BRENDA_FARM_OUTPUTS": "s3://bench/frames/",
        "BRENDA_RUNNING_ON_EC2": "0",
        "BRENDA_DONE": "poll",
    }
    config = load_config(environ=environ)
    registry = JobRegistry(config)
    registry.s3.create_bucket(Bucket="bench")
    for _ in range(jobs):
        job = registry.submit(
            make_job(config, project="file:///nowhere", frames="1", settings=RenderSettings())
        )
        queue = registry.queue(job)
        assert queue is not None
        assert queue.receive(wait_seconds=0, visibility_timeout=3600) is not None
    counted: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        counted[model.name] += 1

    for client in (registry.s3, registry.sqs):
        client.meta.events.register("before-call", count)
    node = Node(config, work, Stopper())
    node.state.begin("poll")
    loop = threading.Thread(target=node.loop, args=(JobsSource(registry, node),), daemon=True)
    loop.start()
    node.stopper.event.wait(seconds)
    node.stopper.stop("bench over")
    loop.join(timeout=30)
    return counted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--jobs", default="1,10,100")
    args = parser.parse_args()
    print(
        f"idle node, {args.seconds:.0f} s each; requests per minute per node, and for a fleet "
        f"of {FLEET:,} idle nodes per second"
    )
    with local_endpoint():
        for jobs in (int(item) for item in args.jobs.split(",")):
            with tempfile.TemporaryDirectory() as work:
                counted = idle_requests(jobs, args.seconds, Path(work))
            minutes = args.seconds / 60
            total = sum(counted.values()) / minutes
            detail = ", ".join(
                f"{name} {number / minutes:.1f}" for name, number in sorted(counted.items())
            )
            print(
                f"  {jobs:>3} jobs: {total:7.1f}/min per node ({detail}); "
                f"fleet {total * FLEET / 60:,.0f}/s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
