# SPDX-License-Identifier: GPL-3.0-or-later
"""The Brenda sidebar panel (3D View > Sidebar > Brenda): the job at a glance."""

from __future__ import annotations

from typing import Any

import bpy

from .operators import why_not_ready


class BRENDA_PT_farm(bpy.types.Panel):
    bl_idname = "BRENDA_PT_farm"
    bl_label = "Brenda Render Farm"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Brenda"

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
        column.prop(job, "node_count")
        row = column.row(align=True)
        row.prop(job, "use_spot")
        sub = row.row(align=True)
        sub.enabled = job.use_spot
        sub.prop(job, "spot_price")
        column.prop(job, "done")

        column = layout.column(align=True)
        column.operator("brenda.upload_project", icon="EXPORT")
        column.operator("brenda.push_tasks", icon="SEQ_STRIP_DUPLICATE")
        column.operator("brenda.launch_nodes", icon="PLAY")
        column.operator("brenda.refresh_status", icon="FILE_REFRESH")
        column.operator("brenda.download_frames", icon="IMPORT")
        column.operator("brenda.stop_farm", icon="CANCEL")
        row = layout.row(align=True)
        row.operator("brenda.build_ebs_volume", text="Build EBS Volume", icon="DISK_DRIVE")
        row.operator("brenda.snapshot_ebs_volume", text="Snapshot", icon="FILE_TICK")

        box = layout.box()
        if state.uploaded_key:
            box.label(text=f"Project: {state.uploaded_key}", icon="FILE_BLEND")
        if state.busy:
            box.progress(factor=state.progress, text=f"{state.busy} (Esc cancels)")
        if state.frames_total:
            box.progress(
                factor=state.frames_stored / state.frames_total,
                text=f"{state.frames_stored} / {state.frames_total} frames stored",
            )
        if state.refreshed:
            box.label(
                text=f"Queue: {state.pending} pending, {state.in_flight} rendering, "
                f"{state.dead} failed"
            )
            cost = state.node_hours * state.price
            box.label(
                text=f"Nodes: {state.nodes_running}"
                + (f"  Cost so far: US$ {cost:.2f}" if state.price else "")
            )
        if state.last_error:
            box.label(text=state.last_error, icon="ERROR")


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
    column.prop(job, "randomize")
    column.prop(job, "file_format")


def draw_project(layout: Any, job: Any, state: Any) -> None:
    """The project root, "render anyway", and the last packing report, a line per finding."""
    column = layout.column(align=True)
    column.prop(job, "project_root")
    column.prop(job, "render_anyway")
    column.prop(job, "allow_python")
    column.prop(job, "task_timeout")
    column.prop(job, "single_colour")
    column.operator("brenda.check_project", icon="VIEWZOOM")
    if state.report:
        report = column.box()
        for line in state.report.splitlines():
            report.label(text=line, icon="ERROR" if line.startswith("Missing:") else "DOT")


classes = (BRENDA_PT_farm,)
register, unregister = bpy.utils.register_classes_factory(classes)
