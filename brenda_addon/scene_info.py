# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the add-on crosses from bpy into Brenda's core: scene and preferences copied into
frozen dataclasses, and which file and project root to pack, on the main thread only."""

from __future__ import annotations

from pathlib import Path

import bpy

from .preferences import preferences
from .shared.job import FarmSettings, JobSettings
from .shared.packing import find_project_root


def farm_settings(context: bpy.types.Context) -> FarmSettings:
    prefs = preferences(context)
    return FarmSettings(
        **{name: str(getattr(prefs, name)).strip() for name in FarmSettings.__dataclass_fields__}
    )


def project_paths(context: bpy.types.Context) -> tuple[Path, Path]:
    """The saved .blend and its project root: the scene's setting, else the nearest folder
    marked as a project (``.blender_project``, ``.git``, ``.svn``), else the .blend's folder."""
    blend = Path(bpy.data.filepath).resolve()
    chosen = context.scene.brenda.project_root.strip()
    root = Path(bpy.path.abspath(chosen)).resolve() if chosen else find_project_root(blend)
    return blend, root


def job_settings(context: bpy.types.Context) -> JobSettings:
    scene = context.scene
    blend, root = project_paths(context)
    # Outside its root the file is named alone here; packing refuses it with a sentence.
    blend_path = blend.relative_to(root).as_posix() if blend.is_relative_to(root) else blend.name
    job = scene.brenda
    start, end = (
        (scene.frame_start, scene.frame_end)
        if job.use_scene_range
        else (job.frame_start, job.frame_end)
    )
    return JobSettings(
        blend_path=blend_path,
        scene=scene.name,
        frame_start=start,
        frame_end=end,
        frame_step=scene.frame_step if job.use_scene_range else job.frame_step,
        frames_per_task=job.frames_per_task,
        tiles_x=job.tiles_x,
        tiles_y=job.tiles_y,
        file_format=job.file_format,
        node_count=job.node_count,
        spot=job.use_spot,
        spot_price=job.spot_price,
        done=job.done,
        priority=job.priority,
        render_anyway=job.render_anyway,
        allow_python=job.allow_python,
        timeout=job.task_timeout * 60 or None,
        single_colour=job.single_colour,
    )
