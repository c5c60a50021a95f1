# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-work``: turn a task template into a work queue (push, status, reset)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence

from .. import work
from ..config import Config, load_config
from ..errors import TaskError, UsageError
from ..tasks import (
    IMAGE_FORMATS,
    FrameRange,
    RenderSettings,
    Task,
    chunk_frames,
    describe,
    encode_task,
    load_template,
    parse_frame_list,
    render_tasks,
    script_tasks,
    shuffled,
    tile_grid,
)
from ..urls import SqsUrl
from .common import (
    ArgumentParser,
    add_common_options,
    configure_logging,
    progress_bar,
    run_command,
    usage_errors,
)

PROG = "brenda-work"
COMMANDS = ("push", "status", "reset")

DESCRIPTION = """\
Manage Brenda's work queue (WORK_QUEUE=sqs://NAME in the configuration).

commands:
  push    make one task per frame chunk (and tile) and send them to the queue
  status  show tasks pending, in flight on nodes, and dead-lettered after failing
  reset   empty the queue and its dead-letter queue (-H: delete them)
"""

EPILOG = """\
examples:
  brenda-work -T frame -e 240 push          frames 1-240, one task each
  brenda-work -T frame -s 1 -e 25 -S 10 push
                                            tasks of 10 frames: 1-10, 11-20, 21-25
  brenda-work -T subframe -e 10 -X 2 -Y 2 push
                                            4 tiles per frame, assembled by the nodes
  brenda-work -T frame --frames 1-10,15,20-40:2 -d push
                                            print the tasks a frame list makes
  brenda-work --render --format OPEN_EXR -e 100 push
                                            structured tasks, rendered without a shell
  brenda-work status
  brenda-work -H reset

templates: -T takes a file, or a built-in template: frame, subframe.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=COMMANDS, metavar="push|status|reset")
    add_common_options(parser)
    parser.add_argument(
        "-d",
        "--dry-run",
        action="store_true",
        help="push: print the tasks, touch no queue",
    )
    parser.add_argument(
        "-H", "--hard", action="store_true", help="reset: delete the queues instead of emptying"
    )
    frames = parser.add_argument_group("frames")
    frames.add_argument("-s", "--start", type=int, metavar="N", help="first frame (default 1)")
    frames.add_argument("-e", "--end", type=int, metavar="N", help="last frame (inclusive)")
    frames.add_argument(
        "-j", "--step", type=int, metavar="N", help="render every Nth frame (default 1)"
    )
    frames.add_argument(
        "-f",
        "--frames",
        metavar="LIST",
        help="frame list instead of -s/-e/-j, like 1-10,15,20-40:2",
    )
    frames.add_argument(
        "-S",
        "--task-size",
        type=int,
        default=1,
        metavar="N",
        help="frames per task (multiframe; default 1)",
    )
    frames.add_argument(
        "-X", "--subdiv-x", type=int, default=0, metavar="N", help="tiles across (subframe)"
    )
    frames.add_argument(
        "-Y", "--subdiv-y", type=int, default=0, metavar="N", help="tiles down (subframe)"
    )
    frames.add_argument(
        "-r", "--randomize", action="store_true", help="push the tasks in random order"
    )
    frames.add_argument("--seed", type=int, metavar="N", help="seed for -r (repeatable order)")
    kind = parser.add_argument_group("what each task runs")
    kind.add_argument(
        "-T",
        "--task-script",
        metavar="FILE",
        help="task template: a file, or a built-in template (frame, subframe)",
    )
    kind.add_argument(
        "--render",
        action="store_true",
        help="structured render tasks instead of a template (the node runs Blender itself)",
    )
    kind.add_argument(
        "--format",
        default="PNG",
        choices=IMAGE_FORMATS,
        metavar="FORMAT",
        help="--render: image format (default PNG; also OPEN_EXR, JPEG, TIFF, ...)",
    )
    kind.add_argument("--scene", help="--render: scene to render (default: the active scene)")
    kind.add_argument(
        "--blend", metavar="PATH", help="--render: .blend inside the project (default: the one)"
    )
    kind.add_argument(
        "--render-anyway",
        action="store_true",
        help="--render: render even when files are missing on the node (default: the task fails)",
    )
    kind.add_argument(
        "--timeout",
        type=int,
        metavar="SECONDS",
        help="--render: seconds a task may run before the node stops it (default: TASK_TIMEOUT)",
    )
    kind.add_argument(
        "--single-colour",
        action="store_true",
        help="--render: fail frames that are one colour all over (a missing camera or light)",
    )
    kind.add_argument(
        "--allow-python",
        action="store_true",
        help="--render: let the .blend run its own Python (drivers, scripts); default: off, and a "
        "frame whose drivers need Python fails",
    )
    return parser


def frame_ranges(args: argparse.Namespace) -> tuple[FrameRange, ...]:
    if args.frames is not None:
        flags = (("-s", args.start), ("-e", args.end), ("-j", args.step))
        clashing = [flag for flag, value in flags if value is not None]
        if clashing:
            raise TaskError(f"Give either --frames or {'/'.join(clashing)}, not both.")
        return parse_frame_list(args.frames)
    if args.end is None:
        raise TaskError("The last frame is missing: give -e N (or a frame list with --frames).")
    start = 1 if args.start is None else args.start
    step = 1 if args.step is None else args.step
    return (FrameRange(start, args.end, step),)


def make_tasks(args: argparse.Namespace) -> Collection[Task]:
    """Every task of the job in push order, made as they are read (a list when shuffled)."""
    if args.task_script is not None and args.render:
        raise TaskError("Give either a task template (-T) or --render, not both.")
    if args.task_script is None and not args.render:
        raise TaskError(
            "The task template is missing: give -T FILE (or -T frame, -T subframe), or --render."
        )
    chunks = chunk_frames(frame_ranges(args), args.task_size)
    tiles = tile_grid(args.subdiv_x, args.subdiv_y)
    tasks: Collection[Task]
    if args.render:
        settings = RenderSettings(
            file_format=args.format,
            scene=args.scene,
            blend=args.blend,
            render_anyway=args.render_anyway,
            allow_python=args.allow_python,
            timeout=args.timeout,
            single_colour=args.single_colour,
        )
        tasks = render_tasks(settings, chunks, tiles)
    else:
        template, origin = load_template(args.task_script)
        tasks = script_tasks(template, chunks, tiles, origin=origin)
    if args.randomize:
        tasks = shuffled(tasks, args.seed)
    return tasks


def check_command_options(args: argparse.Namespace) -> None:
    if args.hard and args.command != "reset":
        raise UsageError("-H/--hard applies only to reset.")
    if args.dry_run and args.command != "push":
        raise UsageError("-d/--dry-run applies only to push.")


def cmd_push(args: argparse.Namespace, config: Config) -> int:
    with usage_errors():
        tasks = make_tasks(args)
    if args.dry_run:
        for task in tasks:
            encode_task(task)
        for task in tasks:
            sys.stdout.write(describe(task))
        queue = config.url("WORK_QUEUE", SqsUrl)
        target = str(queue) if queue else "the work queue (WORK_QUEUE is not set)"
        print(
            f"Dry run: {len(tasks)} tasks would go to {target}; nothing was sent.", file=sys.stderr
        )
        return 0
    with progress_bar() as progress:
        result = work.push(config, tasks, progress)
    print(f"Pushed {result.count} tasks to {result.queue} ({result.region}).")
    return 0


def cmd_status(config: Config) -> int:
    queue = config.require_url("WORK_QUEUE", SqsUrl)
    counts = work.status(config)
    if counts is None:
        print(f"Queue {queue} does not exist: nothing has been pushed.")
        return 0
    print(f"Queue {queue}")
    print(f"  pending        {counts.pending:>8}")
    print(f"  in flight      {counts.in_flight:>8}")
    if counts.delayed:
        print(f"  delayed        {counts.delayed:>8}")
    dead = "(no dead-letter queue)" if counts.dead is None else f"{counts.dead:>8}"
    print(f"  dead-lettered  {dead}")
    if counts.dead:
        print("Dead-lettered tasks (they failed on every try; fix them and push again):")
        for task in work.dead_letters(config):
            print(f"  {task.what}: {task.error or 'no error recorded in RENDER_OUTPUT'}")
    return 0


def cmd_reset(args: argparse.Namespace, config: Config) -> int:
    queue = config.require_url("WORK_QUEUE", SqsUrl)
    if not work.reset(config, hard=args.hard):
        print(f"Queue {queue} does not exist: nothing to reset.")
    elif args.hard:
        print(f"Deleted {queue} and its dead-letter queue.")
    else:
        print(f"Emptied {queue} and its dead-letter queue.")
    return 0


def run(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(PROG, verbose=args.verbose)
    check_command_options(args)
    config = load_config(args.config)
    if args.command == "push":
        return cmd_push(args, config)
    if args.command == "status":
        return cmd_status(config)
    return cmd_reset(args, config)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, run, sys.argv[1:] if argv is None else argv)
