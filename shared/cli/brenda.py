# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda``: ``pack`` and ``upload`` a .blend's project, and ``demo``.

``brenda demo`` is a whole render farm on this machine, with no AWS account: it starts an
AWS-compatible endpoint on loopback (moto's server), makes a small sample scene with Blender (or
takes ``--blend FILE``), packs and uploads it to S3 there, pushes its frames to a work queue, starts
local ``brenda-node`` processes, shows their progress, then downloads the frames (tiles assembled by
the nodes), writes a contact sheet and prints a summary. Brenda's code does not know the endpoint is
not AWS: this is the farm that runs on EC2, on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from OpenImageIO import ROI, ImageBuf, ImageBufAlgo, ImageSpec
from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from brenda_node import sample_scene
from brenda_node.blenders import blender_command

from .. import __version__
from ..core.config import Config, load_config
from ..core.errors import BrendaError, TaskError, UsageError
from ..core.text import counted
from ..core.urls import S3Url
from ..jobs.costs import JobCost, Ledger, format_dollars, job_cost, stored_ledgers
from ..outputs.store import open_store
from ..project import packing
from ..project.content import default_hash_cache
from ..services import project as project_service
from ..services.project import Project
from ..tasks import queue
from ..tasks.task import (
    RenderSettings,
    RenderTask,
    chunk_frames,
    frame_file_names,
    parse_frame_list,
    render_tasks,
    tile_grid,
)
from ..workstation.local_aws import local_endpoint
from . import ebs as brenda_ebs
from . import run as brenda_run
from . import tool as brenda_tool
from . import work as brenda_work
from .common import (
    ArgumentParser,
    configure_logging,
    help_text,
    progress_bar,
    run_command,
    usage_errors,
)

PROG = "brenda"
BUCKET = "brenda-demo"
PROJECT_KEY = "project.tar.gz"
QUEUE = "brenda-demo"
REFRESH_SECONDS = 0.5
DEFAULT_FRAMES = "1-24"
THUMBNAIL_WIDTH = 160
SHEET_COLUMNS = 6
RENDER_ANYWAY = "run it again with --render-anyway"
"""How pack, upload and demo render without missing files."""
SIZE_LIMITS = (4, 65536)
"""The frame sizes Blender renders: it makes a smaller one 4 pixels wide, silently."""


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Brenda, a render farm for Blender on AWS.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=other_commands(),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log what Brenda does, step by step"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{demo,pack,upload}")
    pack = commands.add_parser(
        "pack",
        help="pack a .blend and every file it uses into a project archive",
        description="Pack FILE.blend with every file it uses (libraries, images, UDIM tiles, "
        "sequences, caches, fonts, sounds) into a tar.gz that nodes render from "
        "(BLENDER_PROJECT). Paths are made relative to the project root; files outside it go "
        "to _outside_project/. Prints the preflight report first.",
    )
    pack.add_argument("blend", type=Path, metavar="FILE.blend", help="the .blend to render")
    pack.add_argument(
        "-p",
        "--project-root",
        type=Path,
        metavar="ROOT",
        help="the project root (default: the nearest folder above the .blend holding "
        ".blender_project, .git or .svn, else the .blend's folder)",
    )
    pack.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT",
        help="the archive to write (default: FILE.tar.gz in the current folder)",
    )
    pack.add_argument(
        "-d", "--dry-run", action="store_true", help="print the report only; write nothing"
    )
    pack.add_argument(
        "--render-anyway",
        action="store_true",
        help="pack even when files the render reads are missing",
    )
    pack.add_argument(
        "--addon",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="an add-on the scene needs (its package folder or .py file), packed as addons/NAME "
        "and enabled on the nodes; add-ons are Python, so the job must allow Python; repeatable",
    )
    upload = commands.add_parser(
        "upload",
        help="upload a project, sending only the files the farm's store lacks",
        description="Upload FILE.blend (packed as 'brenda pack' packs it) or a project FOLDER to "
        "the farm's content store under FARM_PROJECTS: every file stored once, by its SHA-256, "
        "and only the files the store lacks are sent. Prints the project version's URL, for "
        "BLENDER_PROJECT or 'brenda-work submit --project'.",
    )
    upload.add_argument("target", type=Path, metavar="FILE.blend|FOLDER")
    upload.add_argument(
        "-p", "--project-root", type=Path, metavar="ROOT", help="the project root, as for pack"
    )
    upload.add_argument(
        "--render-anyway",
        action="store_true",
        help="upload even when files the render reads are missing",
    )
    upload.add_argument(
        "--addon",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="an add-on the scene needs, as for pack; repeatable",
    )
    upload.add_argument("-c", "--config", metavar="FILE", help="configuration file")
    demo = commands.add_parser(
        "demo",
        help="run a render farm on this machine (no AWS account needed)",
        description=help_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--frames",
        metavar="LIST",
        help="frames to render, like 1-24 or 1-10,15 (default: the --blend file's own range, "
        "else 1-24)",
    )
    demo.add_argument("--chunk", type=int, default=1, metavar="N", help="frames per task")
    demo.add_argument(
        "--tiles", default="0x0", metavar="XxY", help="render each frame in tiles, like 2x2"
    )
    demo.add_argument(
        "--nodes",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="local nodes (default: one per CPU)",
    )
    demo.add_argument("--blend", type=Path, metavar="FILE", help="render this .blend instead")
    demo.add_argument(
        "--size", default="320x180", metavar="WxH", help="sample scene size (default 320x180)"
    )
    demo.add_argument(
        "--samples",
        type=int,
        default=16,
        metavar="N",
        help="sample scene Cycles samples (default 16)",
    )
    demo.add_argument(
        "--render-anyway",
        action="store_true",
        help="--blend: render even when files the render reads are missing",
    )
    demo.add_argument(
        "--output",
        type=Path,
        default=Path("brenda-demo"),
        metavar="DIR",
        help="where each run's folder (frames, contact sheet, node logs) goes (default "
        "./brenda-demo)",
    )
    return parser


OTHER_COMMANDS = (
    ("brenda-work", "the work queue and the farm's jobs", brenda_work.COMMANDS),
    ("brenda-node", "a worker that renders tasks", ()),
    ("brenda-run", "rent nodes on EC2, watch and stop them", brenda_run.COMMANDS),
    ("brenda-tool", "on every node at once, and the farm's size", brenda_tool.COMMANDS),
    ("brenda-ebs", "EBS volumes and snapshots for big projects", brenda_ebs.COMMANDS),
)


def other_commands() -> str:
    """The other commands, each with all of its own, for ``brenda --help``."""
    lines = ["other commands (each has --help):"]
    for prog, what, commands in OTHER_COMMANDS:
        lines += textwrap.wrap(
            f"{what}: {', '.join(commands)}" if commands else what,
            width=96,
            initial_indent=f"  {prog:<13} ",
            subsequent_indent=" " * 16,
        )
    return "\n".join(lines)


def parse_pair(text: str, what: str, example: str) -> tuple[int, int]:
    first, _, second = text.lower().partition("x")
    if not (first.isdigit() and second.isdigit()):
        raise TaskError(f"{what} '{text}' must be written as two numbers like {example}.")
    return int(first), int(second)


@dataclass(frozen=True)
class DemoTasks:
    """The demo's render: its tasks, pushed to the demo's own work queue."""

    tasks: list[RenderTask]
    frames: list[str]
    """The names of the frames the demo stores (assembled frames for tiles)."""
    last_frame: int


def plan(
    args: argparse.Namespace, frames: str, blend: str | None = None, blender: str | None = None
) -> DemoTasks:
    """The demo's tasks for ``frames``; ``blend`` is the .blend's path in the project (None:
    the one), saved by Blender ``blender``."""
    if args.nodes < 1:
        raise TaskError(f"--nodes must be 1 or more, not {args.nodes}.")
    if args.chunk < 1:
        raise TaskError(f"--chunk must be 1 or more, not {args.chunk}.")
    width, height = parse_pair(args.size, "Size", "320x180")
    smallest, largest = SIZE_LIMITS
    if not (smallest <= width <= largest and smallest <= height <= largest):
        raise TaskError(
            f"--size {args.size}: both numbers must be from {smallest} to {largest} (pixels)."
        )
    if args.samples < 1:
        raise TaskError(f"--samples must be 1 or more, not {args.samples}.")
    across, down = parse_pair(args.tiles, "Tiles", "2x2 (across x down)")
    if (across == 0) != (down == 0):
        raise TaskError(f"--tiles {args.tiles}: both numbers must be above 0 (0x0: no tiles).")
    tiles = tile_grid(across, down)
    chunks = chunk_frames(parse_frame_list(frames), args.chunk)
    settings = RenderSettings(blend=blend, blender=blender, render_anyway=args.render_anyway)
    tasks = list(render_tasks(settings, chunks, tiles))
    numbers = {frame for chunk in chunks for frame in chunk.frames()}
    return DemoTasks(tasks, sorted(frame_file_names(settings, numbers)), max(numbers))


def farm_settings() -> dict[str, str]:
    return {
        "WORK_QUEUE": f"sqs://{QUEUE}",
        "BLENDER_PROJECT": f"s3://{BUCKET}/{PROJECT_KEY}",
        "RENDER_OUTPUT": f"s3://{BUCKET}/frames",
        "RUNNING_ON_EC2": "0",
        "RECEIVE_WAIT": "1",
        "DONE": "exit",
        "ERROR_PAUSE": "1",
    }


def make_project(args: argparse.Namespace, demo: DemoTasks, folder: Path) -> tuple[Path, DemoTasks]:
    """The project archive and the demo rendering it: ``--blend`` packed with every file it uses,
    or the sample scene made by Blender."""
    archive = folder / PROJECT_KEY
    if args.blend is not None:
        given = Project(args.blend, render_anyway=args.render_anyway)
        report = project_service.check(given)
        project_service.refuse_missing(given, report, RENDER_ANYWAY)
        report = project_service.pack(given, archive, report)
        print(report.summary())
        return archive, plan(args, job_frames(args), report.blend, report.blender)
    project = folder / "project"
    project.mkdir(parents=True)
    width, height = parse_pair(args.size, "Size", "320x180")
    settings = {
        "output": str(project / "sample.blend"),
        "width": width,
        "height": height,
        "samples": args.samples,
        "frames": max(1, demo.last_frame),
    }
    command = [
        *blender_command(None),
        "-b",
        "--python-exit-code",
        "1",
        "--python",
        str(sample_scene.__file__),
        "--",
        json.dumps(settings),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not (project / "sample.blend").is_file():
        tail = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["no output"]
        raise BrendaError(f"Blender could not make the sample scene: {tail[0]}")
    with tarfile.open(archive, "w:gz") as bundle:
        bundle.add(project / "sample.blend", arcname="sample.blend")
    return archive, demo


def start_nodes(count: int, folder: Path, config_file: Path) -> list[subprocess.Popen[bytes]]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("BRENDA_")}
    nodes = []
    for number in range(1, count + 1):
        work_dir = folder / f"node-{number}"
        work_dir.mkdir()
        node_environ = {**environ, "BRENDA_WORK_DIR": str(work_dir)}
        with (work_dir / "console").open("wb") as console:
            nodes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "shared.cli.node", "-c", str(config_file)],
                    env=node_environ,
                    stdout=console,
                    stderr=subprocess.STDOUT,
                )
            )
    return nodes


def node_status(folder: Path, number: int) -> dict[str, Any]:
    try:
        return dict(json.loads((folder / f"node-{number}" / "status.json").read_text()))
    except (OSError, ValueError):
        return {}


def watch(
    demo: DemoTasks,
    config: Config,
    nodes: list[subprocess.Popen[bytes]],
    folder: Path,
    frames_folder: Path,
) -> list[dict[str, Any]]:
    """Show progress and copy each frame into ``frames_folder`` as soon as it is stored, until
    the nodes have exited."""

    store = open_store(config)
    wanted = set(demo.frames)
    bar = Progress("Frames stored", BarColumn(), MofNCompleteColumn(), "ETA", TimeRemainingColumn())
    bar_task = bar.add_task("frames", total=len(wanted))

    def table() -> Table:
        nodes_table = Table("node", "state", "task", "frame", "sample", "tasks done")
        for number, node in enumerate(nodes, start=1):
            status = node_status(folder, number)
            state = status.get("state", "starting") if node.poll() is None else "exited"
            nodes_table.add_row(
                str(number),
                state,
                str(status.get("task") or ""),
                str(status.get("frame") or ""),
                str(status.get("sample") or ""),
                str(status.get("tasks_done", 0)),
            )
        return nodes_table

    copied: set[str] = set()
    with Live(Group(bar, table()), refresh_per_second=4, transient=False) as live:
        while True:
            finished = all(node.poll() is not None for node in nodes)
            for name in sorted(wanted.intersection(store.names()) - copied):
                store.get(name, frames_folder / name)
                copied.add(name)
            bar.update(bar_task, completed=len(copied))
            live.update(Group(bar, table()))
            if finished:
                break
            time.sleep(REFRESH_SECONDS)
    print()
    missing = sorted(wanted - copied)
    if missing:
        dead = queue.dead_letters(config)
        reasons = "; ".join(f"{task.what}: {task.error}" for task in dead[:3]) or "see the logs"
        raise BrendaError(f"{len(missing)} of {len(wanted)} frames were not rendered ({reasons}).")
    return [node_status(folder, number) for number in range(1, len(nodes) + 1)]


def contact_sheet(frames: list[Path], target: Path) -> None:

    images = [ImageBuf(str(path)) for path in frames]
    first = images[0].spec()
    width = min(THUMBNAIL_WIDTH, first.width)
    height = max(1, round(first.height * width / first.width))
    columns = min(SHEET_COLUMNS, len(images))
    rows = -(-len(images) // columns)
    sheet = ImageBuf(ImageSpec(columns * width, rows * height, 3, "uint8"))
    for index, image in enumerate(images):
        thumbnail = ImageBufAlgo.resize(image, roi=ROI(0, width, 0, height, 0, 1, 0, 3))
        column, row = index % columns, index // columns
        ImageBufAlgo.paste(sheet, column * width, row * height, 0, 0, thumbnail)
    if not sheet.write(str(target)):
        raise BrendaError(f"Could not write the contact sheet {target}: {sheet.geterror()}.")


def check_blend(blend: Path, option: str = "") -> None:
    """A .blend the command line names (with ``option``, if any) that is missing, or is not a
    .blend file Brenda can read, is a usage error, said at once, before anything starts."""
    named = f"{option} {blend}".lstrip()
    if not blend.exists():
        raise UsageError(f"{named} not found.")
    if blend.suffix != ".blend" or not blend.is_file():
        raise UsageError(f"{named} is not a .blend file.")
    with usage_errors():
        packing.scene_frames(blend)


def job_frames(args: argparse.Namespace) -> str:
    """``--frames``, else the --blend file's own frame range, else the sample's 1-24."""
    if args.frames is not None:
        return str(args.frames)
    if args.blend is None:
        return DEFAULT_FRAMES
    start, end, step = packing.scene_frames(args.blend)
    return f"{start}-{end}:{step}" if step > 1 else f"{start}-{end}"


def run_folder(output: Path) -> Path:
    """A new folder for this run inside ``output``, so runs never mix their frames."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(100):
        folder = output / (f"run-{stamp}" if attempt == 0 else f"run-{stamp}-{attempt}")
        try:
            (folder / "frames").mkdir(parents=True)
        except FileExistsError:
            continue
        except OSError as error:
            raise BrendaError(
                f"--output {output} cannot be written: {error.strerror or error}."
            ) from error
        return folder
    raise BrendaError(f"--output {output} already holds 100 runs started this second.")


def stop_on_sigterm(number: int, frame: object) -> None:
    """SIGTERM ends the demo as Ctrl-C does: nodes stopped, temporary files removed."""
    raise KeyboardInterrupt


def run_demo(args: argparse.Namespace) -> int:
    with usage_errors():
        if args.blend is not None:
            check_blend(args.blend, "--blend")
        demo = plan(args, job_frames(args))
    output = run_folder(args.output.resolve())
    frames_folder = output / "frames"
    print(f"This run's frames, contact sheet and logs: {output}")
    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        wall, statuses, demo, cost, warm = render(args, demo, output)
    except KeyboardInterrupt:
        kept = sum(1 for _ in frames_folder.iterdir()) if frames_folder.is_dir() else 0
        print(f"Interrupted: {counted(kept, 'frame')} stored so far, in {frames_folder}.")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    render_seconds = sum(float(status.get("render_seconds", 0)) for status in statuses)
    nodes = len(statuses)
    print(f"Frames:           {len(demo.frames)} in {frames_folder}")
    print(f"Contact sheet:    {output / 'contact-sheet.png'}")
    print(f"Wall time:        {wall:.1f} s on {counted(nodes, 'node')}")
    print(f"Render time:      {render_seconds / len(demo.frames):.2f} s per frame (mean)")
    print(f"Farm efficiency:  {render_seconds / (nodes * wall):.0%}")
    print(
        f"Cost:             {format_dollars(cost.dollars)} (a local farm is free; "
        f"{cost.node_seconds:.1f} node-seconds, {cost.render_seconds:.1f} s rendering)"
    )
    devices = sorted({str(status["device"]) for status in statuses if status.get("device")})
    print(f"Rendered on:      {', '.join(devices) or 'unknown'}")
    if warm is not None:
        first, later = warm
        print(
            f"Warm Blender:     {later:.2f} s a task once Blender is loaded, {first:.2f} s for "
            f"the first task on each node (Blender starting, loading the file): "
            f"{first / later:.1f}x faster"
        )
    return 0


def render(
    args: argparse.Namespace, demo: DemoTasks, output: Path
) -> tuple[float, list[dict[str, Any]], DemoTasks, JobCost, tuple[float, float] | None]:
    """The farm's run: endpoint, project, tasks, nodes; frames land in ``output`` as stored."""
    frames_folder = output / "frames"
    with tempfile.TemporaryDirectory(prefix="brenda-demo-") as scratch, local_endpoint() as url:
        folder = Path(scratch)
        print(f"Local AWS-compatible endpoint: {url}")
        config_file = folder / "brenda.conf"
        settings = farm_settings()
        config_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        environ = {k: v for k, v in os.environ.items() if not k.startswith("BRENDA_")}
        config = load_config(config_file, environ=environ)
        archive, demo = make_project(args, demo, folder)
        blend = args.blend.name if args.blend is not None else "sample.blend"
        project_service.upload_archive(config, archive, BUCKET, PROJECT_KEY)
        result = queue.push(config, demo.tasks)
        print(
            f"Project {blend} uploaded; {counted(result.count, 'task')} for "
            f"{counted(len(demo.frames), 'frame')} pushed to {result.queue}; starting "
            f"{counted(args.nodes, 'node')}."
        )
        started = time.monotonic()
        nodes = start_nodes(args.nodes, folder, config_file)
        try:
            statuses = watch(demo, config, nodes, folder, frames_folder)
        finally:
            for node in nodes:
                if node.poll() is None:
                    node.terminate()
                node.wait()
            keep_logs(folder, output, len(nodes))
        wall = time.monotonic() - started
        ledgers = stored_ledgers(open_store(config))
        cost = job_cost(ledgers, running=0, now=time.time(), stale=0)
        contact_sheet([frames_folder / name for name in demo.frames], output / "contact-sheet.png")
    return wall, statuses, demo, cost, warm_gain(ledgers)


def warm_gain(ledgers: list[Ledger]) -> tuple[float, float] | None:
    """Mean seconds of a node's first task (Blender started and the file loaded for it) and of
    its later ones (warm Blender); None without both."""
    firsts = [ledger.tasks[0].wall_seconds for ledger in ledgers if ledger.tasks]
    laters = [task.wall_seconds for ledger in ledgers for task in ledger.tasks[1:]]
    if not firsts or not laters:
        return None
    return sum(firsts) / len(firsts), sum(laters) / len(laters)


def keep_logs(folder: Path, output: Path, count: int) -> None:
    logs = output / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for number in range(1, count + 1):
        console = folder / f"node-{number}" / "console"
        if console.exists():
            shutil.copyfile(console, logs / f"node-{number}.log")


def project_of(args: argparse.Namespace, blend: Path) -> Project:
    """The project ``brenda pack`` or ``brenda upload`` packs: ``blend``, the root and add-ons
    given; a .blend that is missing or none, or an add-on that is none, is a usage error."""
    check_blend(blend)
    with usage_errors():
        addons = tuple(packing.Addon.at(path) for path in args.addon)
        packing.check_addons(addons)
    return Project(blend, args.project_root, addons, args.render_anyway)


def checked(project: Project) -> packing.PackReport:
    """The preflight report, printed; missing files the render reads stop here unless the
    project renders anyway."""
    report = project_service.check(project)
    for line in report.lines():
        print(line)
    project_service.refuse_missing(project, report, RENDER_ANYWAY)
    return report


def run_pack(args: argparse.Namespace) -> int:
    """``brenda pack``: the preflight report, then the archive (unless a dry run)."""
    project = project_of(args, args.blend)
    report = checked(project)
    if args.dry_run:
        print("Dry run: nothing was written.")
        return 0
    archive = args.output or Path(f"{args.blend.stem}{packing.ARCHIVE_SUFFIX}")
    with progress_bar("bytes") as progress:
        report = project_service.pack(project, archive, report, progress)
    print(report.summary())
    print(f"Tasks render '{report.blend}' from {report.archive}.")
    return 0


def run_upload(args: argparse.Namespace) -> int:
    """``brenda upload``: hash, ask the store what it lacks, send that, then the manifest."""
    target = args.target
    if not target.exists():
        raise UsageError(f"{target} not found.")
    config = load_config(args.config)
    if config.optional_url("FARM_PROJECTS", S3Url) is None:
        raise UsageError(
            "brenda upload needs FARM_PROJECTS=s3://BUCKET/projects/ (the farm's store)."
        )
    if target.is_dir() and args.addon:
        raise UsageError(
            f"--addon goes with a .blend; {target} is a folder: put the add-ons in its addons/."
        )
    cache = default_hash_cache()
    if target.is_dir():
        with progress_bar("bytes") as progress:
            sent = project_service.upload_folder(config, target, progress, cache)
    else:
        project = project_of(args, target)
        report = checked(project)
        with progress_bar("bytes") as progress:
            sent = project_service.upload(config, project, report, progress, cache)
    print(
        f"Sent {sent.sent_files} of {counted(sent.files, 'file')}, "
        f"{packing.human_bytes(sent.sent_bytes)} of "
        f"{packing.human_bytes(sent.bytes)} (hashed {packing.human_bytes(cache.hashed)}; the "
        "rest of the hashes came from the cache)."
    )
    print(f"Project version: {sent.manifest_url}")
    return 0


def run(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(PROG, verbose=args.verbose)
    if args.command == "upload":
        return run_upload(args)
    return run_pack(args) if args.command == "pack" else run_demo(args)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
