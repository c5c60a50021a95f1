# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the add-on crosses from bpy into Brenda's core: scene and preferences copied into
frozen dataclasses, and the .blend's external files listed, on the main thread only."""

from __future__ import annotations

import os
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ProjectFiles:
    """What the open .blend uses from disk, sorted by what packing does with it."""

    images: list[tuple[bpy.types.Image, Dependency]]
    """Images: kept in place inside the .blend's folder, else copied into ``external/`` and
    pointed there in the packed copy."""
    others: list[Dependency]
    """Other files inside the .blend's folder (libraries, sounds, fonts, caches): copied as they
    are, their relative paths keep working."""
    missing: list[str]
    unmovable: list[str]
    """Files other than images used by an absolute path outside the .blend's folder."""


def _image_target(image: bpy.types.Image, source: Path, root: Path) -> str:
    try:
        return source.relative_to(root).as_posix()
    except ValueError:
        flat_name = f"{image.name}-{source.name}".replace(os.sep, "_")
        return f"{EXTERNAL_FOLDER}{flat_name}"


def project_files() -> ProjectFiles:
    """Every file the .blend uses (Blender's own path API), and where each goes."""
    root = Path(bpy.data.filepath).parent.resolve()
    images: list[tuple[bpy.types.Image, Dependency]] = []
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
        images.append((image, Dependency(source, _image_target(image, source, root))))
    seen = {dependency.source for _, dependency in images}
    others: list[Dependency] = []
    unmovable: list[str] = []
    # Blender's own files (essentials asset libraries) are on every node already.
    blender_folders = [
        Path(folder).resolve()
        for folder in (bpy.utils.resource_path(kind) for kind in ("LOCAL", "SYSTEM", "USER"))
        if folder
    ]
    for path in bpy.utils.blend_paths(absolute=True, packed=False, local=True):
        if "#" in path or "<UDIM>" in path:
            continue  # frame and tile patterns, not single files
        source = Path(path).resolve()
        if source in seen or source.is_dir():
            continue
        if any(source.is_relative_to(folder) for folder in blender_folders):
            continue
        seen.add(source)
        if not source.is_file():
            missing.append(path)
        elif source.is_relative_to(root):
            others.append(Dependency(source, source.relative_to(root).as_posix()))
        else:
            unmovable.append(str(source))
    return ProjectFiles(images, others, missing, unmovable)


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
