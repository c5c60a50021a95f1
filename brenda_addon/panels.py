# SPDX-License-Identifier: GPL-3.0-or-later
"""The Brenda sidebar panel (3D View > Sidebar > Brenda): the job at a glance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy

from . import monitor, scene_info
from .operators import why_not_ready
from .shared.jobs.registry import JobAction, JobState


class _SidebarPanel(bpy.types.Panel):
    """In the 3D View's sidebar, Brenda tab."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Brenda"


class BRENDA_PT_farm(_SidebarPanel):
    bl_idname = "BRENDA_PT_farm"
    bl_label = "Brenda Render Farm"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        job = context.scene.brenda
        state = context.window_manager.brenda
        reason = why_not_ready(context)
        if reason is not None:
            layout.label(text=reason, icon="INFO")

        draw_frames(layout, job)
        draw_project(layout, job, state)

        column = layout.column(align=True)
        column.label(text=f"Renders on {scene_info.render_device(context)}", icon="RENDER_STILL")
        column.prop(job, "priority")
        column.prop(job, "notify")
        column.prop(job, "node_count")
        row = column.row(align=True)
        row.prop(job, "use_spot")
        sub = row.row(align=True)
        sub.enabled = job.use_spot
        sub.prop(job, "spot_price")
        column.prop(job, "done")
        column.prop(job, "video")
        row = column.row(align=True)
        row.prop(job, "use_fleet")
        sub = row.row(align=True)
        sub.enabled = job.use_fleet
        sub.prop(job, "budget")

        column = layout.column(align=True)
        column.operator("brenda.upload_project", icon="EXPORT")
        column.operator("brenda.push_job", icon="SEQ_STRIP_DUPLICATE")
        column.operator("brenda.launch_nodes", icon="PLAY")
        column.operator("brenda.stop_farm", icon="CANCEL")
        row = layout.row(align=True)
        row.operator("brenda.build_ebs_volume", text="Build EBS Volume", icon="DISK_DRIVE")
        row.operator("brenda.snapshot_ebs_volume", text="Snapshot", icon="FILE_TICK")

        box = layout.box()
        if state.uploaded_key:
            box.label(text=f"Project: {state.uploaded_key}", icon="FILE_BLEND")
        if state.busy:
            box.progress(factor=state.progress, text=f"{state.busy} (Esc cancels)")
        if state.last_error:
            box.label(text=state.last_error, icon="ERROR")


class BRENDA_PT_jobs(_SidebarPanel):
    """The farm's jobs: progress, cost, actions, and the selected job's newest frames."""

    bl_idname = "BRENDA_PT_jobs"
    bl_label = "Jobs"
    bl_parent_id = "BRENDA_PT_farm"

    def draw(self, context: bpy.types.Context) -> None:
        monitor.watched()
        layout = self.layout
        state = context.window_manager.brenda
        row = layout.row(align=True)
        row.operator("brenda.refresh_jobs", icon="FILE_REFRESH")
        row.operator("brenda.download_frames", icon="IMPORT")
        row.operator("brenda.open_report", icon="URL")
        if state.fleet:
            box = layout.box()
            for line in state.fleet.splitlines():
                failed = line.strip().startswith("failed:")
                box.label(text=line.strip(), icon="ERROR" if failed else "NONE")
        if not state.jobs_read:
            layout.label(text="The farm's jobs show here once read", icon="INFO")
        elif not state.jobs:
            layout.label(text="No jobs yet: Push Job makes one", icon="INFO")
        for item in state.jobs:
            draw_job(layout.box(), item, selected=item.job_id == state.selected_job)


def draw_job(box: Any, item: Any, *, selected: bool) -> None:
    """A job's name and state, progress bar, summary line, actions and, when selected, frames."""
    row = box.row(align=True)
    icon = "RADIOBUT_ON" if selected else "RADIOBUT_OFF"
    row.operator(
        "brenda.select_job", text=item.job_id, icon=icon, emboss=False
    ).job_id = item.job_id
    row.label(text=f"{item.state}, priority {item.priority}")
    fraction = item.stored / item.frames if item.frames else 0.0
    box.progress(factor=fraction, text=f"{item.stored} / {item.frames} frames")
    box.label(text=item.summary)
    if item.state != JobState.CANCELLED:
        actions = box.row(align=True)
        paused = item.state == JobState.PAUSED
        toggle = (JobAction.RESUME, "PLAY") if paused else (JobAction.PAUSE, "PAUSE")
        for action, icon in (
            toggle,
            (JobAction.CANCEL, "CANCEL"),
            (JobAction.RETRY, "RECOVER_LAST"),
            (JobAction.MISSING, "IMAGE_BACKGROUND"),
            ("raise", "TRIA_UP"),
            ("lower", "TRIA_DOWN"),
        ):
            button = actions.operator("brenda.job_action", text="", icon=icon)
            button.job_id, button.action = item.job_id, action
    if selected and item.latest:
        grid = box.grid_flow(columns=3, even_columns=True, align=True)
        for path in item.latest.splitlines():
            cell = grid.column(align=True)
            cell.template_icon(icon_value=monitor.preview_icon(path), scale=4.0)
            cell.operator("brenda.open_frame", text=Path(path).name).filepath = path
        playing = box.row(align=True)
        playing.operator("brenda.open_sequence", text="Play Frames", icon="IMAGE_DATA")
        video = playing.row(align=True)
        video.enabled = item.stored == item.frames  # a video of every frame: the job is done
        video.operator("brenda.open_video", text="Open Video", icon="FILE_MOVIE")
    if selected and item.details:
        draw_details(box.box(), item.details.splitlines())


SHOWN_FAILURES = 20
"""Failed tasks the panel lists at most (a label each, drawn on every redraw)."""


def draw_details(box: Any, lines: list[str]) -> None:
    """The selected job as ``brenda-work show`` prints it: its settings and frames, then each
    failed task's last error, marked as an error (the first ``SHOWN_FAILURES``)."""
    heading = next((n for n, line in enumerate(lines) if line.startswith("Failed tasks")), None)
    end = len(lines) if heading is None else heading + 1 + SHOWN_FAILURES
    for number, line in enumerate(lines[1:end], 1):  # the first names the job, as its row does
        failed = heading is not None and number > heading
        box.label(text=line.strip(), icon="ERROR" if failed else "NONE")
    if len(lines) > end:
        box.label(
            text=f"... and {len(lines) - end} more: see 'brenda-work show {lines[0].split()[1]}'"
        )


def draw_frames(layout: Any, job: Any) -> None:
    """Which frames, in what tasks and tiles, in what format."""
    column = layout.column(align=True)
    column.prop(job, "use_scene_range")
    if not job.use_scene_range:
        row = column.row(align=True)
        row.prop(job, "frame_start")
        row.prop(job, "frame_end")
        row.prop(job, "frame_step")
    column.prop(job, "frames_per_task")
    row = column.row(align=True)
    row.prop(job, "tiles_x")
    row.prop(job, "tiles_y")
    column.prop(job, "file_format")


def draw_project(layout: Any, job: Any, state: Any) -> None:
    """The project root, "render anyway", and the last packing report, a line per finding."""
    column = layout.column(align=True)
    column.prop(job, "project_root")
    column.prop(job, "render_anyway")
    column.prop(job, "allow_python")
    column.prop(job, "task_timeout")
    column.prop(job, "single_colour")
    column.prop(job, "on_mismatch")
    column.prop(job, "blender_newer_ok")
    column.prop(job, "addons")
    if job.addons.strip():
        column.label(text="Add-ons are Python: this job allows Python", icon="INFO")
    column.operator("brenda.check_project", icon="VIEWZOOM")
    if state.report:
        report = column.box()
        for line in state.report.splitlines():
            report.label(text=line, icon="ERROR" if line.startswith("Missing:") else "DOT")


classes = (BRENDA_PT_farm, BRENDA_PT_jobs)
register, unregister = bpy.utils.register_classes_factory(classes)
