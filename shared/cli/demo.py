# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda demo``: Brenda on this machine, with no AWS account.

Starts an AWS-compatible endpoint on loopback (moto's server), turns the built-in frame template
into a work queue there and shows its status, exactly as ``brenda-work`` does against AWS.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from .. import work
from ..config import load_config
from ..local import local_endpoint
from ..tasks import chunk_frames, load_template, parse_frame_list, script_tasks, tile_grid
from .common import ArgumentParser, add_common_options, configure_logging, progress_bar, run_command

PROG = "brenda"
DEMO_QUEUE = "brenda-demo"


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Brenda, a render farm for Blender on AWS.",
        epilog="Other commands: brenda-work (the work queue).",
    )
    add_common_options(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="demo")
    demo = commands.add_parser(
        "demo",
        help="run Brenda against a local AWS-compatible endpoint (no AWS account needed)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--frames", default="1-240", metavar="LIST", help="frames to queue (default 1-240)"
    )
    demo.add_argument("--chunk", type=int, default=1, metavar="N", help="frames per task")
    demo.add_argument(
        "--tiles", default="0x0", metavar="XxY", help="subframe tiles per frame, like 2x2"
    )
    return parser


def parse_tiles(text: str) -> tuple[int, int]:
    from ..errors import TaskError

    across, _, down = text.lower().partition("x")
    if not (across.isdigit() and down.isdigit()):
        raise TaskError(f"Tiles '{text}' must be written ACROSSxDOWN, like 2x2.")
    return int(across), int(down)


def run_demo(args: argparse.Namespace) -> int:
    tiles = tile_grid(*parse_tiles(args.tiles))
    template, origin = load_template("subframe" if tiles else "frame")
    tasks = script_tasks(
        template, chunk_frames(parse_frame_list(args.frames), args.chunk), tiles, origin=origin
    )
    with local_endpoint() as endpoint:
        print(f"Local AWS-compatible endpoint: {endpoint}")
        config = load_config(
            args.config,
            overrides={"WORK_QUEUE": (f"sqs://{DEMO_QUEUE}", "brenda demo")},
        )
        started = time.perf_counter()
        with progress_bar() as progress:
            result = work.push(config, tasks, progress)
        elapsed = time.perf_counter() - started
        print(f"Pushed {result.count} tasks to {result.queue} in {elapsed:.2f} s.")
        counts = work.status(config)
        if counts is not None:
            print(
                f"Queue status: {counts.pending} pending, {counts.in_flight} in flight, "
                f"{counts.dead} dead-lettered."
            )
        work.reset(config, hard=True)
        print(f"Deleted {result.queue}; the local endpoint stops now.")
    return 0


def run(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(PROG, verbose=args.verbose)
    return run_demo(args)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, run, sys.argv[1:] if argv is None else argv)
