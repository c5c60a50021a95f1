# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the add-on crosses from bpy into Brenda's core: scene and preferences copied into
frozen dataclasses, and the .blend's external files listed, on the main thread only."""

from __future__ import annotations

import os
from pathlib import Path

import bpy

from .preferences import preferences
from .shared.job import EXTERNAL_FOLDER, Dependency, FarmSettings, JobSettings


def farm_settings(context: bpy.types.Context) -> FarmSettings:
    prefs = preferences(context)
    return FarmSettings(
        **{name: str(getattr(prefs, name)).strip() for name in FarmSettings.__dataclass_fields__}
    )


def job_settings(context: bpy.types.Context) -> JobSettings:
    scene = context.scene
    job = scene.brenda
    start, end = (
        (scene.frame_start, scene.frame_end)
        if job.use_scene_range
        else (job.frame_start, job.frame_end)
    )
    return JobSettings(
        blend_name=Path(bpy.data.filepath).name,
        scene=scene.name,
        frame_start=start,
        frame_end=end,
        frame_step=scene.frame_step if job.use_scene_range else job.frame_step,
        frames_per_task=job.frames_per_task,
        tiles_x=job.tiles_x,
        tiles_y=job.tiles_y,
        randomize=job.randomize,
        file_format=job.file_format,
        node_count=job.node_count,
        spot=job.use_spot,
        spot_price=job.spot_price,
        done=job.done,
    )


def external_images() -> tuple[list[tuple[bpy.types.Image, Dependency]], list[str]]:
    """Every image file the .blend uses, with where it goes in the project; and missing ones.

    Files inside the .blend's folder keep their relative place; files elsewhere (absolute paths)
    go to ``external/`` and the image is pointed there in the packed copy.
    """
    root = Path(bpy.data.filepath).parent.resolve()
    used: list[tuple[bpy.types.Image, Dependency]] = []
    missing: list[str] = []
    for image in bpy.data.images:
        if image.packed_file is not None or image.source not in {"FILE", "SEQUENCE", "MOVIE"}:
            continue
        if not image.filepath:
            continue
        source = Path(bpy.path.abspath(image.filepath, library=image.library)).resolve()
        if not source.is_file():
            missing.append(f"{image.name} ({image.filepath})")
            continue
        try:
            target = source.relative_to(root).as_posix()
        except ValueError:
            flat_name = f"{image.name}-{source.name}".replace(os.sep, "_")
            target = f"{EXTERNAL_FOLDER}{flat_name}"
        used.append((image, Dependency(source, target)))
    return used, missing


def save_project_copy(folder: Path, images: list[tuple[bpy.types.Image, Dependency]]) -> Path:
    """Save a copy of the open .blend into ``folder`` with every image path relative to it.

    The open file is left as it was.
    """
    copy = folder / Path(bpy.data.filepath).name
    originals = [(image, image.filepath_raw) for image, _ in images]
    try:
        for image, dependency in images:
            image.filepath_raw = f"//{dependency.target}"
        bpy.ops.wm.save_as_mainfile(filepath=str(copy), copy=True, relative_remap=False)
    finally:
        for image, path in originals:
            image.filepath_raw = path
    return copy
