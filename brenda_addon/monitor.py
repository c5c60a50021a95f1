# SPDX-License-Identifier: GPL-3.0-or-later
"""The Brenda Jobs panel's data. A timer reads the farm's jobs in a thread that never touches
bpy (``shared.services.monitor``) and applies them on the main thread, every 5 s while a job
renders and the panel is drawn, backing off to 5 minutes while Blender is idle; thumbnails of
the selected job's newest frames go through ``bpy.utils.previews``."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import bpy
import bpy.utils.previews

from . import scene_info
from .background import BackgroundWork
from .shared.core.progress import Progress
from .shared.jobs.settings import FarmSettings, farm_config
from .shared.services.monitor import FarmMonitor, FarmView, RefreshSchedule

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25
"""How often the timer looks at a refresh in flight (main-thread Python only, no requests)."""


class _Monitor:
    """What the timer keeps between its calls."""

    def __init__(self) -> None:
        self.monitors: dict[FarmSettings, FarmMonitor] = {}
        self.previews: Any = None
        self.work: BackgroundWork | None = None
        self.schedule = RefreshSchedule()
        self.due = 0.0
        self.watched = False


_state = _Monitor()


def farm_monitor(farm: FarmSettings) -> FarmMonitor:
    """One monitor per farm setting, so that its caches make the next refresh cheap."""
    if farm not in _state.monitors:
        _state.monitors.clear()
        folder = Path(bpy.app.tempdir or tempfile.gettempdir()) / "brenda" / "frames"
        _state.monitors[farm] = FarmMonitor(farm_config(farm), folder)
    return _state.monitors[farm]


def read_farm(farm: FarmSettings, selected: str, progress: Progress) -> FarmView:
    return farm_monitor(farm).read(selected, progress)


def download(farm: FarmSettings, job_id: str, folder: Path, progress: Progress) -> list[Path]:
    return farm_monitor(farm).download(job_id, folder, progress)


def apply(state: Any, farm: FarmView) -> None:
    """Copy what a refresh read into ``WindowManager.brenda`` (main thread)."""
    views = farm.jobs
    state.fleet = "\n".join(farm.fleet)
    state.jobs.clear()
    for view in views:
        item = state.jobs.add()
        item.job_id, item.state, item.priority = view.id, view.state, view.priority
        item.frames, item.stored, item.summary = view.frames, view.stored, view.summary
        item.latest = "\n".join(str(path) for path in view.latest)
        item.details = "\n".join(view.details)
    if views and state.selected_job not in {view.id for view in views}:
        state.selected_job = views[0].id
    state.jobs_read = True


def thumbnail(path: str) -> Any:
    """The frame's preview (``bpy.types.ImagePreview``), loaded once; None before register."""
    previews = _state.previews
    if previews is None:
        return None
    if path not in previews:
        previews.load(path, path, "IMAGE")
    return previews[path]


def preview_icon(path: str) -> int:
    preview = thumbnail(path)
    return 0 if preview is None else int(preview.icon_id)


def watched() -> None:
    """The panel was drawn: someone is looking (called from its draw)."""
    _state.watched = True


def refresh_soon() -> None:
    _state.due = 0.0


def tick() -> float:
    """The ``bpy.app.timers`` callback: start a refresh when one is due, apply it when done."""
    try:
        return _tick(bpy.context)
    except Exception:  # a timer that raises is dropped by Blender: log and keep going
        log.exception("Brenda's job refresh failed")
        return _state.schedule.slowest


def _tick(context: Any) -> float:
    state = context.window_manager.brenda
    now = time.monotonic()
    work = _state.work
    if work is not None:
        if not work.done:
            return POLL_SECONDS
        _state.work = None
        if work.error is not None:
            state.last_error = str(work.error)
        else:
            apply(state, work.result)
        rendering = work.error is None and any(view.rendering for view in work.result.jobs)
        wait = _state.schedule.next_wait(rendering=rendering, watched=_state.watched)
        _state.due, _state.watched = now + wait, False
        for window in context.window_manager.windows:
            for area in window.screen.areas:
                area.tag_redraw()
        return POLL_SECONDS
    if now < _state.due:
        return min(1.0, _state.due - now)
    farm = scene_info.farm_settings(context)
    if farm.missing() or not bpy.app.online_access:
        _state.due = now + _state.schedule.fastest  # nothing to ask until the settings are there
        return POLL_SECONDS
    selected = state.selected_job
    _state.work = BackgroundWork(lambda progress: read_farm(farm, selected, progress))
    _state.work.start()
    return POLL_SECONDS


def register() -> None:
    _state.previews = bpy.utils.previews.new()
    bpy.app.timers.register(tick, first_interval=1.0, persistent=True)


def unregister() -> None:
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    if _state.previews is not None:
        bpy.utils.previews.remove(_state.previews)
    _state.previews = None
    _state.monitors.clear()
