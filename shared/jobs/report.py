# SPDX-License-Identifier: GPL-3.0-or-later
"""A job's report: one HTML page that opens in any browser and fetches nothing. No bpy module
use; ``brenda-work report`` and the add-on's "Open Report" write it (``shared.services.report``),
and the node that sends a job's ``finished`` stores it beside the frames (brenda_node/news.py).

The page holds a contact sheet of the stored frames (PNG thumbnails as ``data:`` URIs), charts of
render seconds and cost per frame and of frames stored over time (inline SVG), the nodes by type
and market with their share of the work and cost, the failed tasks with their errors, and the
job's settings, Blender and project version as ``brenda-work show`` prints them.

Reading it costs what ``brenda-work show`` reads (``job_details``), each ledger once more (whole,
as ``stored_ledgers`` reads them), and a GET of each stored frame (up to ``MAX_THUMBNAILS``),
``FETCHERS`` at a time, each deleted here once shrunk. When frames were stored is when their tasks
ended, as the ledgers say. Nodes write the ledgers, frames' names and failure notes, so every
word of them is escaped: shown, never obeyed.
"""

from __future__ import annotations

import base64
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from .. import __version__
from ..core.charts import area_chart, bar_chart
from ..core.errors import BrendaError, TaskError
from ..core.progress import Progress
from ..core.urls import S3Url, parse_url
from ..outputs.store import S3Store
from ..tasks.task import parse_frame_list
from .costs import Ledger, format_dollars, format_duration, stored_ledgers
from .details import FailureReader, JobDetails
from .registry import Job, JobRegistry, frame_names

MAX_THUMBNAILS = 1000
"""Stored frames shown as thumbnails at most (the first ones); the charts count every frame."""
FETCHERS = 8
BACKGROUND = "#ffffff"
"""The page's colour: anything a screenshot shows on it is drawn."""
RENDER_COLOUR = "#2b6cb0"
COST_COLOUR = "#c05621"
STORED_COLOUR = "#2f855a"
_TASK_FRAMES = re.compile(r"^frames (\S+)")


@dataclass(frozen=True)
class FrameShown:
    """A frame of the job on the contact sheet."""

    number: int
    name: str
    stored: bool
    thumbnail: bytes | None = None
    """Its PNG thumbnail (None: not stored, beyond ``MAX_THUMBNAILS``, or unreadable)."""
    problem: str = ""
    """Why a stored frame has no thumbnail."""


@dataclass(frozen=True)
class NodeGroup:
    """The nodes of one instance type and market, and what they did on the job."""

    instance_type: str
    market: str
    nodes: int
    tasks: int
    frames: float
    node_seconds: float
    dollars: float
    unpriced: int
    """Tasks whose price was not known (not in ``dollars``)."""


@dataclass(frozen=True)
class ReportData:
    details: JobDetails
    ledgers: list[Ledger]
    frames: list[FrameShown]
    made: float


def gather(registry: JobRegistry, job: Job, progress: Progress) -> ReportData:
    """What the report shows of the job: its details, ledgers, and stored frames' thumbnails."""
    details = FailureReader(registry).details(job, registry.report(job))
    url = parse_url(job.output, allowed=("s3",))
    assert isinstance(url, S3Url), "a believed record's output is under FARM_OUTPUTS"
    store = S3Store(registry.s3, url, concurrency=FETCHERS)
    ledgers = stored_ledgers(store)
    unstored = set(details.report.unstored)
    frames = [
        FrameShown(number, name, number not in unstored)
        for name, number in sorted(frame_names(job).items(), key=lambda item: item[1])
    ]
    shown = [frame for frame in frames if frame.stored][:MAX_THUMBNAILS]
    try:
        # Lazy OpenImageIO: a Blender without the module still loads the add-on and gets its
        # report, the frames named instead of shown.
        from ..outputs.thumbnails import thumbnail_png  # noqa: PLC0415 - lazy OpenImageIO
    except ImportError as error:
        missing = f"no thumbnail: this Python lacks the OpenImageIO module ({error})"
        frames = [replace(frame, problem=missing) if frame.stored else frame for frame in frames]
        return ReportData(details, ledgers, frames, time.time())
    progress.start(f"Making thumbnails of the frames of {job.id}", len(shown))
    with tempfile.TemporaryDirectory(prefix="brenda-report-") as scratch:

        def thumbnail(frame: FrameShown) -> FrameShown:
            progress.check()
            path = Path(scratch) / f"{frame.number}-{Path(frame.name).name}"
            store.get(frame.name, path)
            try:
                made = replace(frame, thumbnail=thumbnail_png(path, frame.name))
            except BrendaError as error:
                made = replace(frame, problem=str(error))
            finally:
                path.unlink(missing_ok=True)
            progress.advance()
            return made

        with ThreadPoolExecutor(FETCHERS) as pool:
            made = {frame.number: frame for frame in pool.map(thumbnail, shown)}
    frames = [made.get(frame.number, frame) for frame in frames]
    return ReportData(details, ledgers, frames, time.time())


def task_frames(task: str) -> tuple[int, ...]:
    """The frames of a ledger's task, by its title (``frames 1-4``, ``frames 3 tile ...``);
    none for a title that names none (a node's ledger is shown, not trusted)."""
    found = _TASK_FRAMES.match(task)
    if found is None:
        return ()
    try:
        return tuple(frame for item in parse_frame_list(found.group(1)) for frame in item.frames())
    except TaskError:
        return ()


def per_frame(ledgers: Iterable[Ledger]) -> dict[int, tuple[float, float]]:
    """Frame: its render seconds and dollars, every try of its tasks (and tiles) added up, a
    task's shared evenly among its frames."""
    seconds: dict[int, float] = defaultdict(float)
    dollars: dict[int, float] = defaultdict(float)
    for ledger in ledgers:
        for task in ledger.tasks:
            frames = task_frames(task.task)
            for frame in frames:
                seconds[frame] += task.render_seconds / len(frames)
                dollars[frame] += (task.dollars or 0.0) / len(frames)
    return {frame: (seconds[frame], dollars[frame]) for frame in seconds}


def node_groups(ledgers: Iterable[Ledger]) -> list[NodeGroup]:
    """The nodes by instance type and market, most frames first."""
    grouped: dict[tuple[str, str], list[Ledger]] = defaultdict(list)
    for ledger in ledgers:
        machine = ledger.machine
        grouped[(machine.instance_type or "-", machine.market)].append(ledger)
    groups = [
        NodeGroup(
            instance_type=kind,
            market=market,
            nodes=len({ledger.node for ledger in members}),
            tasks=sum(len(ledger.tasks) for ledger in members),
            frames=sum(
                task.frames
                for ledger in members
                for task in ledger.tasks
                if task.outcome == "stored"
            ),
            node_seconds=sum(task.wall_seconds for ledger in members for task in ledger.tasks),
            dollars=sum(task.dollars or 0.0 for ledger in members for task in ledger.tasks),
            unpriced=sum(task.dollars is None for ledger in members for task in ledger.tasks),
        )
        for (kind, market), members in grouped.items()
    ]
    return sorted(groups, key=lambda group: (-group.frames, group.instance_type, group.market))


def report_html(data: ReportData) -> str:
    """The report as one HTML page that refers to nothing outside itself."""
    details = data.details
    job, report = details.job, details.report
    title = f"Brenda report: job {job.id}"
    made = datetime.fromtimestamp(data.made, UTC).strftime("%Y-%m-%d %H:%M UTC")
    cost = report.cost
    unpriced = cost.unpriced_tasks > 0
    summary = (
        f"{report.stored} of {report.frames} frames stored; {len(details.failures)} failed tasks; "
        f"cost {format_dollars(cost.dollars, unpriced=unpriced)}, "
        f"{format_dollars(cost.per_frame, unpriced=unpriced)} a frame; "
        f"node time {format_duration(cost.node_seconds)}, "
        f"render time {format_duration(cost.render_seconds)}"
    )
    sections = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="summary">{escape(summary)}</p>',
        "<h2>Frames</h2>",
        _contact_sheet(data.frames),
        "<h2>Render time and cost per frame</h2>",
        _frame_charts(data.ledgers),
        "<h2>Frames stored over time</h2>",
        _stored_chart(data.ledgers),
        "<h2>Nodes by type and market</h2>",
        _nodes_table(node_groups(data.ledgers)),
        "<h2>Failures</h2>",
        _failures(details),
        "<h2>Job</h2>",
        _settings(details),
        f'<p class="footer">Made by Brenda {escape(__version__)} on {escape(made)}.</p>',
    ]
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head>\n<body>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


_STYLE = f"""
body {{ background: {BACKGROUND}; color: #1a202c; font-family: sans-serif; margin: 24px;
       max-width: 1120px; }}
h1 {{ font-size: 22px; }} h2 {{ font-size: 17px; margin-top: 28px; }}
.sheet {{ display: flex; flex-wrap: wrap; gap: 8px; }}
.sheet figure {{ margin: 0; width: 160px; font-size: 11px; }}
.sheet img {{ display: block; width: 160px; }}
.sheet .none {{ width: 158px; height: 88px; border: 1px dashed #a0aec0; color: #718096;
               display: flex; align-items: center; justify-content: center; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border-bottom: 1px solid #e2e8f0; padding: 3px 10px 3px 0; text-align: left;
         vertical-align: top; }}
td.number {{ text-align: right; }}
.footer {{ color: #718096; font-size: 11px; }}
"""


def _contact_sheet(frames: list[FrameShown]) -> str:
    figures = []
    for frame in frames:
        caption = f"<figcaption>{frame.number}</figcaption>"
        if frame.thumbnail is not None:
            data = base64.b64encode(frame.thumbnail).decode("ascii")
            image = (
                f'<img class="thumbnail" src="data:image/png;base64,{data}" '
                f'alt="frame {frame.number}" title="{escape(frame.name)}">'
            )
        elif not frame.stored:
            image = '<div class="none">not stored</div>'
        else:
            why = frame.problem or f"beyond the first {MAX_THUMBNAILS} frames"
            image = f'<div class="none" title="{escape(why)}">stored, not shown</div>'
        figures.append(f"<figure>{image}{caption}</figure>")
    return f'<div class="sheet">{"".join(figures)}</div>'


def _frame_charts(ledgers: list[Ledger]) -> str:
    frames = per_frame(ledgers)
    if not frames:
        return "<p>No node has noted a task of this job yet.</p>"
    ordered = sorted(frames.items())
    seconds = [(str(frame), values[0]) for frame, values in ordered]
    dollars = [(str(frame), values[1]) for frame, values in ordered]
    return (
        bar_chart(
            seconds,
            colour=RENDER_COLOUR,
            label="Render seconds per frame",
            unit_text="{:.1f} s",
            css_class="render-bar",
        )
        + "<br>"
        + bar_chart(
            dollars,
            colour=COST_COLOUR,
            label="Cost per frame (US$)",
            unit_text="${:.4f}",
            css_class="cost-bar",
        )
    )


def stored_over_time(ledgers: Iterable[Ledger]) -> list[tuple[float, float]]:
    """(moment, frames stored by then) at each stored task's end, from the first task's start
    (a tile adds its share of a frame)."""
    tasks = [task for ledger in ledgers for task in ledger.tasks]
    ends = sorted(
        (task.started + task.wall_seconds, task.frames)
        for task in tasks
        if task.outcome == "stored"
    )
    if not ends:
        return []
    points = [(min(task.started for task in tasks), 0.0)]
    for moment, frames in ends:
        points.append((moment, points[-1][1] + frames))
    return points


def _stored_chart(ledgers: list[Ledger]) -> str:
    points = stored_over_time(ledgers)
    if not points:
        return "<p>No node has stored a frame of this job yet.</p>"
    return area_chart(
        points,
        colour=STORED_COLOUR,
        label="Frames stored over time",
        x_text="{:.0f} s",
        y_text="{:.0f} frames",
        css_class="stored-area",
    )


def _nodes_table(groups: list[NodeGroup]) -> str:
    if not groups:
        return "<p>No node has worked on this job yet.</p>"
    all_frames = sum(group.frames for group in groups) or 1.0
    all_dollars = sum(group.dollars for group in groups) or 1.0
    head = (
        "<tr><th>instance type</th><th>market</th><th>nodes</th><th>tasks</th>"
        "<th>frames stored</th><th>share of frames</th><th>node time</th><th>cost</th>"
        "<th>share of cost</th></tr>"
    )
    rows = [
        "<tr>"
        + "".join(
            f'<td class="number">{escape(cell)}</td>' if index > 1 else f"<td>{escape(cell)}</td>"
            for index, cell in enumerate(
                (
                    group.instance_type,
                    group.market,
                    str(group.nodes),
                    str(group.tasks),
                    f"{group.frames:g}",
                    f"{100 * group.frames / all_frames:.0f}%",
                    format_duration(group.node_seconds),
                    format_dollars(group.dollars, unpriced=group.unpriced > 0),
                    f"{100 * group.dollars / all_dollars:.0f}%",
                )
            )
        )
        + "</tr>"
        for group in groups
    ]
    return f'<table class="nodes">{head}{"".join(rows)}</table>'


def _failures(details: JobDetails) -> str:
    if not details.failures:
        return "<p>No task failed.</p>"
    rows = [
        f"<tr><td>{escape(failure.task)}</td>"
        f"<td>{'dead-lettered' if failure.dead else 'failed'}</td>"
        f"<td>{escape(failure.error)}</td><td>{escape(failure.where)}</td></tr>"
        for failure in details.failures
    ]
    unread = (
        f"<p>{details.notes_unread} older failure notes were not read.</p>"
        if details.notes_unread
        else ""
    )
    return (
        '<table class="failures"><tr><th>task</th><th>state</th><th>last error</th>'
        f"<th>where</th></tr>{''.join(rows)}</table>{unread}"
    )


def _settings(details: JobDetails) -> str:
    rows = [
        f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>"
        for label, value in [("job", details.job.id), ("farm", details.job.farm), *details.rows()]
    ]
    return f'<table class="settings">{"".join(rows)}</table>'
