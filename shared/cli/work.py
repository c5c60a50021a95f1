# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-work``: a task template's work queue (push, status, reset) and the farm's jobs (submit,
jobs, pause, resume, cancel, retry, missing, priority, video, report, gc)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Collection, Sequence
from pathlib import Path

from ..aws import s3
from ..aws.session import cloud_errors, make_client
from ..core.config import Config, load_config
from ..core.errors import BrendaError, TaskError, UsageError
from ..core.text import counted
from ..core.urls import S3Url, SqsUrl, parse_url
from ..jobs import registry
from ..jobs.details import job_details
from ..outputs.video import CODECS, DEFAULT_CODEC, DEFAULT_FPS, parse_fps
from ..project.content import ContentStore, find_garbage, remove_garbage
from ..project.packing import human_bytes
from ..project.scenes import Scene
from ..project.version import job_blender
from ..services import jobs as job_service
from ..services import report as report_service
from ..services import video as video_service
from ..tasks import queue
from ..tasks.task import (
    DEVICES,
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
from .common import (
    ArgumentParser,
    add_common_options,
    configure_logging,
    progress_bar,
    run_command,
    usage_errors,
)

PROG = "brenda-work"
JOB_COMMANDS = tuple(action.value for action in registry.JobAction)
COMMANDS = (
    "push",
    "status",
    "reset",
    "submit",
    "jobs",
    "show",
    *JOB_COMMANDS,
    "video",
    "report",
    "gc",
)

DESCRIPTION = """\
Manage Brenda's work queue (WORK_QUEUE=sqs://NAME in the configuration) and the farm's jobs.

commands:
  push      make one task per frame chunk (and tile) and send them to the queue
  status    show tasks pending, in flight on nodes, and dead-lettered after failing
  reset     empty the queue and its dead-letter queue (-H: delete them)
  submit    a job: a packed project's frames in a queue of their own, served by every node of
            the farm (FARM_OUTPUTS=s3://BUCKET/PREFIX; frames go to PREFIX/<job>/)
  jobs      the farm's jobs: state, priority, frames stored, tasks waiting and running
  show JOB  one job in full: its settings, project, Blender, frames stored, missing and
            failed, and the last error of each failed or dead-lettered task
  pause JOB, resume JOB, cancel JOB, priority JOB N
            stop giving a job's tasks out, again give them out, delete its tasks (its nodes
            stop its running ones within JOB_REFRESH s, 15 by default), change its priority
            (higher goes first)
  retry JOB     put the job's dead-lettered tasks back to work
  missing JOB   queue the job's frames that are not stored (or stored empty), once it holds no
                task: while any waits, runs or is dead-lettered its frames are not missing, so
                missing refuses (--force: queue them anyway, as duplicates)
  video JOB     encode the job's stored frames, in frame order, into a video here (-o FILE,
                default <job id>.mp4; --fps, default 24; --codec, default h264)
  report JOB    write the job's report, one HTML page that fetches nothing (-o FILE, default
                <job id>-report.html): its frames' thumbnails, render time and cost per
                frame, frames stored over time, nodes by type and market, failures, settings
  gc        the content store under FARM_PROJECTS: what no project version of the last
            --days days (nor a job, nor a project's latest upload) uses; --delete removes it

JOB is a job's id (its .blend's name and four hex digits, like shot1-7f3a) or the start of only
one job's id, like shot1-7.
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
  brenda-work --project s3://studio/projects/shot1.tar.gz --blend shots/shot1.blend -e 240 \\
      --priority 5 submit
  brenda-work jobs
  brenda-work show shot1-7f3a
  brenda-work pause shot1-7f3a
  brenda-work missing shot1                 the one job whose id starts with shot1
  brenda-work video shot1-7f3a --fps 25 -o shot1.mp4
  brenda-work report shot1-7f3a -o shot1.html
  brenda-work --days 14 gc                  what gc would remove, with sizes

templates: -T takes a file, or a built-in template: frame, subframe.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=COMMANDS, metavar="COMMAND")
    parser.add_argument(
        "target",
        nargs="*",
        metavar="JOB [N]",
        help="job commands: the job (its id, or the start of only its id) and priority's N",
    )
    add_common_options(parser)
    jobs = parser.add_argument_group("jobs")
    jobs.add_argument(
        "--project",
        metavar="URL",
        help="submit: the packed project, s3:// or file:// (default: BLENDER_PROJECT)",
    )
    jobs.add_argument(
        "--priority",
        type=int,
        default=0,
        metavar="N",
        help="submit: the job's priority; higher goes first (default 0)",
    )
    jobs.add_argument(
        "--video",
        action="store_true",
        help="submit: once its last frame is stored, a node encodes the shot into "
        "<job id>.mp4 beside its frames (H.264, 24 fps)",
    )
    jobs.add_argument(
        "--notify",
        metavar="TARGET",
        help="submit: where the job's news goes (finished, a task dead-lettered, the budget "
        "stopped the fleet, cancelled): sns://TOPIC_ARN of a topic named brenda-FARM-..., or an "
        "https:// webhook (default: NOTIFY)",
    )
    parser.add_argument(
        "-d",
        "--dry-run",
        action="store_true",
        help="push: print the tasks, touch no queue",
    )
    parser.add_argument(
        "-H", "--hard", action="store_true", help="reset: delete the queues instead of emptying"
    )
    parser.add_argument(
        "--days", type=int, default=30, metavar="N", help="gc: keep what the last N days used"
    )
    parser.add_argument("--delete", action="store_true", help="gc: remove it (default: show)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="missing: queue the frames not stored even while the job holds tasks",
    )
    video = parser.add_argument_group("video")
    video.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="video and report: the file to write (default: <job id>.mp4, <job id>-report.html)",
    )
    video.add_argument(
        "--fps",
        metavar="N",
        help="video: frames per second, like 24, 29.97 or 30000/1001 (default 24, Blender's "
        "default: a job's record does not hold its scene's)",
    )
    video.add_argument(
        "--codec",
        choices=CODECS,
        default=DEFAULT_CODEC,
        help=f"video: {', '.join(CODECS)} (default {DEFAULT_CODEC}; ffv1 is lossless)",
    )
    video.add_argument(
        "--allow-gaps",
        action="store_true",
        help="video: encode the stored frames even when some are missing (default: refuse)",
    )
    frames = parser.add_argument_group("frames")
    frames.add_argument("-s", "--start", type=int, metavar="N", help="first frame (default 1)")
    frames.add_argument(
        "-e",
        "--end",
        type=int,
        metavar="N",
        help="last frame (inclusive; submit: the scene's range when neither -e nor --frames)",
    )
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
        "--device",
        choices=DEVICES,
        default="CPU",
        help="--render: where Cycles renders; a node without that GPU fails the task (CPU)",
    )
    kind.add_argument(
        "--allow-python",
        action="store_true",
        help="--render: let the .blend run its own Python (drivers, scripts); default: off, and a "
        "frame whose drivers need Python fails",
    )
    kind.add_argument(
        "--blender-newer-ok",
        action="store_true",
        help="--render: a node without the Blender version that saved the .blend may render it "
        "with a newer one; default: off, and such a task fails naming both versions",
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


def make_tasks(args: argparse.Namespace, blender: str | None = None) -> Collection[Task]:
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
        tasks = render_tasks(render_settings(args, blender), chunks, tiles)
    else:
        template, origin = load_template(args.task_script)
        tasks = script_tasks(template, chunks, tiles, origin=origin)
    if args.randomize:
        tasks = shuffled(tasks, args.seed)
    return tasks


def render_settings(args: argparse.Namespace, blender: str | None) -> RenderSettings:
    """The render settings the options give, for a file saved by Blender ``blender``."""
    return RenderSettings(
        blender=blender,
        blender_newer_ok=args.blender_newer_ok,
        file_format=args.format,
        scene=args.scene,
        blend=args.blend,
        render_anyway=args.render_anyway,
        allow_python=args.allow_python,
        timeout=args.timeout,
        single_colour=args.single_colour,
        device=args.device,
    )


def check_command_options(args: argparse.Namespace) -> None:
    if args.hard and args.command != "reset":
        raise UsageError("-H/--hard applies only to reset.")
    if args.dry_run and args.command not in ("push", "submit"):
        raise UsageError("-d/--dry-run applies only to push and submit.")
    if args.delete and args.command != "gc":
        raise UsageError("--delete applies only to gc.")
    if args.video and args.command != "submit":
        raise UsageError("--video applies only to submit (the video command makes one here).")
    if args.force and args.command != "missing":
        raise UsageError("--force applies only to missing.")
    if args.output and args.command not in ("video", "report"):
        raise UsageError("-o/--output applies only to video and report.")
    video_options = args.fps or args.allow_gaps or args.codec != DEFAULT_CODEC
    if video_options and args.command != "video":
        raise UsageError("--fps, --codec and --allow-gaps apply only to video.")
    if args.days < 1:
        raise UsageError(f"--days must be 1 or more, not {args.days}.")
    if args.target and args.command == "status":
        raise UsageError(status_with_a_job(args.target))
    if args.target and args.command not in (*JOB_COMMANDS, "show", "video", "report"):
        raise UsageError(f"{args.command} takes no arguments ({' '.join(args.target)}).")


def status_with_a_job(target: Sequence[str]) -> str:
    """What ``status JOB`` answers: status is the work queue's; a job's is ``show``."""
    return (
        f"status shows the work queue (WORK_QUEUE) and takes no job: to see job {target[0]}, "
        f"run 'brenda-work show {target[0]}'."
    )


def cmd_push(args: argparse.Namespace, config: Config) -> int:
    project = config.get("BLENDER_PROJECT")
    blender = job_blender(config, str(project), args.blend) if args.render and project else None
    with usage_errors():
        tasks = make_tasks(args, blender)
    if args.dry_run:
        for task in tasks:
            encode_task(task)
        for task in tasks:
            sys.stdout.write(describe(task))
        url = config.work_queue()
        target = str(url) if url else "the work queue (WORK_QUEUE is not set)"
        print(
            f"Dry run: {counted(len(tasks), 'task')} would go to {target}; nothing was sent.",
            file=sys.stderr,
        )
        return 0
    with progress_bar() as progress:
        result = queue.push(config, tasks, progress)
    print(f"Pushed {counted(result.count, 'task')} to {result.queue} ({result.region}).")
    return 0


def cmd_status(config: Config) -> int:
    url = config.url("WORK_QUEUE", SqsUrl)
    counts = queue.status(config)
    if counts is None:
        print(f"Queue {url} does not exist: nothing has been pushed.")
        return 0
    print(f"Queue {url}")
    print(f"  pending        {counts.pending:>8}")
    print(f"  in flight      {counts.in_flight:>8}")
    if counts.delayed:
        print(f"  delayed        {counts.delayed:>8}")
    dead = "(no dead-letter queue)" if counts.dead is None else f"{counts.dead:>8}"
    print(f"  dead-lettered  {dead}")
    if counts.dead:
        print("Dead-lettered tasks (they failed on every try; fix them and push again):")
        for task in queue.dead_letters(config):
            print(f"  {task.what}: {task.error or 'no error recorded in RENDER_OUTPUT'}")
    return 0


def cmd_reset(args: argparse.Namespace, config: Config) -> int:
    url = config.url("WORK_QUEUE", SqsUrl)
    if not queue.reset(config, hard=args.hard):
        print(f"Queue {url} does not exist: nothing to reset.")
    elif args.hard:
        print(f"Deleted {url} and its dead-letter queue.")
    else:
        print(f"Emptied {url} and its dead-letter queue.")
    return 0


def cmd_submit(args: argparse.Namespace, config: Config) -> int:
    with usage_errors():
        if args.task_script is not None:
            raise UsageError("submit makes structured render tasks; -T templates go with push.")
        configured = config.get("BLENDER_PROJECT")
        project = args.project or (str(configured) if configured else None)
        if project is None:
            raise UsageError("submit needs the packed project: --project URL or BLENDER_PROJECT.")
        parse_url(project, allowed=("s3", "file"))
        args.render = True
        from_scene = args.frames is None and args.end is None
        if not from_scene:
            frame_ranges(args)  # a bad frame list is refused before the project is read
    with progress_bar("bytes") as reading:
        contents = job_service.read_project_blend(config, project, args.blend, reading)
    with usage_errors():
        if from_scene:
            use_scene_frames(args, contents.scene(args.scene))
        frames = ",".join(str(frame_range) for frame_range in frame_ranges(args))
        job = registry.make_job(
            config,
            project=project,
            frames=frames,
            settings=render_settings(args, None),
            chunk=args.task_size,
            tiles=(args.subdiv_x, args.subdiv_y),
            priority=args.priority,
            video=args.video,
            notify=args.notify,
        )
        tasks = job.render_tasks()
    if args.dry_run:
        job = job_service.checked(config, job, contents)
        print(job.to_json())
        print(f"Dry run: job {job.id} would get {counted(len(tasks), 'task')}; nothing was sent.")
        return 0
    with progress_bar() as progress:
        made = job_service.submit(config, job, progress, contents=contents)
    print(f"Submitted job {made.id}: {counted(made.tasks, 'task')}, priority {made.priority}.")
    print(f"Its frames go to {made.output}")
    if made.video:
        print(f"Its video goes to {made.output}{registry.video_name(made)} once they are stored.")
    return 0


def use_scene_frames(args: argparse.Namespace, scene: Scene | None) -> None:
    """Frames from the scene's range where the command line gives no last frame (its -s and -j
    kept)."""
    if scene is None:
        raise UsageError(
            "The last frame is missing, and the .blend's frame range cannot be read here: give "
            "-e N (or a frame list with --frames)."
        )
    args.end = scene.end
    args.start = scene.start if args.start is None else args.start
    args.step = scene.step if args.step is None else args.step


def cmd_jobs(config: Config) -> int:
    for line in job_service.job_table(config).lines():
        print(line)
    return 0


def cmd_show(args: argparse.Namespace, config: Config) -> int:
    with usage_errors():
        if len(args.target) != 1:
            raise UsageError("show needs JOB, like: brenda-work show shot1-7f3a.")
    for line in job_details(config, args.target[0]).lines():
        print(line)
    return 0


def cmd_job(args: argparse.Namespace, config: Config) -> int:
    with usage_errors():
        action = registry.JobAction(args.command)
        wanted = 2 if action == registry.JobAction.PRIORITY else 1
        if len(args.target) != wanted:
            shape = "JOB N" if action == registry.JobAction.PRIORITY else "JOB"
            raise UsageError(
                f"{args.command} needs {shape}, like: brenda-work {args.command} "
                f"{shape.replace('JOB', 'shot1-7f3a')}."
            )
        if action == registry.JobAction.PRIORITY and not args.target[1].lstrip("-").isdigit():
            raise UsageError(f"The priority must be a whole number, not '{args.target[1]}'.")
    priority = int(args.target[1]) if action == registry.JobAction.PRIORITY else None
    with progress_bar() as progress:
        try:
            done = job_service.control(
                config,
                args.target[0],
                action,
                priority=priority,
                progress=progress,
                force=args.force,
            )
        except registry.JobHoldsTasksError as error:
            forcing = "give --force to queue every frame not stored anyway"
            raise BrendaError(error.sentence(forcing)) from error
    print(done)
    return 0


def cmd_video(args: argparse.Namespace, config: Config) -> int:
    with usage_errors():
        if len(args.target) != 1:
            raise UsageError("video needs JOB, like: brenda-work video shot1-7f3a.")
        fps = DEFAULT_FPS if args.fps is None else parse_fps(args.fps)
    with progress_bar("frames") as progress:
        made = video_service.job_video(
            config,
            args.target[0],
            Path(args.output) if args.output else None,
            fps=fps,
            codec=args.codec,
            allow_gaps=args.allow_gaps,
            progress=progress,
        )
    print(made.summary())
    return 0


def cmd_report(args: argparse.Namespace, config: Config) -> int:
    with usage_errors():
        if len(args.target) != 1:
            raise UsageError("report needs JOB, like: brenda-work report shot1-7f3a.")
    with progress_bar("frames") as progress:
        written = report_service.write_job_report(
            config, args.target[0], Path(args.output) if args.output else None, progress
        )
    print(written.summary())
    return 0


def cmd_gc(args: argparse.Namespace, config: Config) -> int:
    projects = config.url("FARM_PROJECTS", S3Url)
    store = ContentStore(make_client("s3", config), projects)
    garbage = find_garbage(store, days=args.days, live=live_versions(config), now=time.time())
    what = (
        f"{len(garbage.content)} stored files and {len(garbage.manifests)} project versions, "
        f"{human_bytes(garbage.bytes)} (keeping {human_bytes(garbage.kept_bytes)})"
    )
    if not args.delete:
        print(f"gc would remove {what}; run again with --delete to remove them.")
        return 0
    remove_garbage(store, garbage)
    print(f"Removed {what}.")
    return 0


MANIFEST_NAME = re.compile(r"manifests/([0-9a-f]{64})\.json")


def live_versions(config: Config) -> list[str]:
    """The project versions the farm's jobs may still render, which gc keeps: every job's but
    a cancelled one's, and any a record that cannot be read names."""
    if config.get("FARM_OUTPUTS") is None:
        return []
    jobs = registry.JobRegistry(config)
    read = jobs.jobs()
    live = [job.project for job in read if job.state != registry.JobState.CANCELLED]
    return live + _named_by_unread_records(jobs, {job.id for job in read})


def _named_by_unread_records(jobs: registry.JobRegistry, read: set[str]) -> list[str]:
    """Every project version a job record that could not be read names anywhere in its text:
    gc cannot tell whether such a job still renders, so it counts as live."""
    prefix = jobs.outputs.key(registry.RECORDS)
    named = []
    with cloud_errors(f"reading the job records in s3://{jobs.outputs.bucket}"):
        for item in s3.list_objects(jobs.s3, jobs.outputs.bucket, prefix):
            if item.key[len(prefix) :].removesuffix(".json") not in read:
                text = s3.read_text(jobs.s3, jobs.outputs.bucket, item.key) or ""
                named += [f"manifests/{name}.json" for name in MANIFEST_NAME.findall(text)]
    return named


def run(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(PROG, verbose=args.verbose)
    check_command_options(args)
    config = load_config(args.config)
    if args.command == "submit":
        return cmd_submit(args, config)
    if args.command == "jobs":
        return cmd_jobs(config)
    if args.command == "show":
        return cmd_show(args, config)
    if args.command in JOB_COMMANDS:
        return cmd_job(args, config)
    if args.command == "push":
        return cmd_push(args, config)
    if args.command == "status":
        return cmd_status(config)
    if args.command == "gc":
        return cmd_gc(args, config)
    if args.command == "video":
        return cmd_video(args, config)
    if args.command == "report":
        return cmd_report(args, config)
    return cmd_reset(args, config)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
