# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the add-on crosses from bpy into Brenda's core: scene and preferences copied into
frozen dataclasses, and which file and project root to pack, on the main thread only."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import bpy

from .preferences import preferences
from .shared.core.errors import BrendaError
from .shared.jobs.settings import FarmSettings, JobSettings
from .shared.project.packing import Addon, find_project_root
from .shared.services.farm import FleetOrder, NodeOrder
from .shared.services.project import Project
from .shared.tasks.task import DEVICES, Environment, RenderSettings


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


def project(context: bpy.types.Context) -> Project:
    """The saved .blend as a project to check, pack or upload."""
    blend, root = project_paths(context)
    job = context.scene.brenda
    return Project(blend, root, job_addons(context), job.render_anyway)


def launch_order(job: JobSettings) -> FleetOrder | NodeOrder:
    """The nodes the scene's job asks for: a self-sizing fleet of up to its node count, or that
    many nodes. Their types, image and spot price are the farm's settings (``farm_config``)."""
    if job.fleet:
        return FleetOrder(
            maximum=job.node_count,
            on_demand_base=0 if job.spot else job.node_count,
            budget=job.budget or None,
        )
    return NodeOrder(spot=job.spot, count=job.node_count)


def job_settings(context: bpy.types.Context) -> JobSettings:
    scene = context.scene
    blend, root = project_paths(context)
    # Outside its root the file is named alone here; packing refuses it with a sentence.
    blend_path = blend.relative_to(root).as_posix() if blend.is_relative_to(root) else blend.name
    job = scene.brenda
    addons = job_addons(context)
    start, end = (
        (scene.frame_start, scene.frame_end)
        if job.use_scene_range
        else (job.frame_start, job.frame_end)
    )
    return JobSettings(
        project=root.name,
        render=RenderSettings(
            blend=blend_path,
            scene=scene.name,
            file_format=job.file_format,
            render_anyway=job.render_anyway,
            allow_python=job.allow_python,
            blender_newer_ok=job.blender_newer_ok,
            timeout=job.task_timeout * 60 or None,
            single_colour=job.single_colour,
            device=render_device(context),
            environment=artist_environment(context, addons),
        ),
        frame_start=start,
        frame_end=end,
        frame_step=scene.frame_step if job.use_scene_range else job.frame_step,
        frames_per_task=job.frames_per_task,
        tiles_x=job.tiles_x,
        tiles_y=job.tiles_y,
        node_count=job.node_count,
        spot=job.use_spot,
        spot_price=job.spot_price,
        done=job.done,
        priority=job.priority,
        notify=job.notify.strip(),
        fleet=job.use_fleet,
        budget=job.budget if job.use_fleet else 0.0,
        addons=addons,
        video=job.video,
    )


def render_device(context: bpy.types.Context) -> str:
    """The scene's Cycles device as the nodes name it: CPU, or this Blender's GPU backend."""
    scene = context.scene
    if scene.render.engine != "CYCLES" or scene.cycles.device != "GPU":
        return "CPU"
    cycles = context.preferences.addons.get("cycles")
    backend = cycles.preferences.compute_device_type if cycles else "NONE"
    return backend if backend in DEVICES else "CPU"


def enabled_addons() -> list[Any]:
    """The modules of the add-ons and extensions enabled here that do not come with Blender
    (Brenda aside)."""
    # Blender's own module; its stubs say its functions return None.
    addon_utils: Any = importlib.import_module("addon_utils")
    bundled = tuple(
        folder
        for folder in (bpy.utils.resource_path(kind) for kind in ("LOCAL", "SYSTEM"))
        if folder
    )
    own = __package__ or ""
    return [
        module
        for module in addon_utils.modules()
        if module.__name__ != own
        and addon_utils.check(module.__name__)[1]
        and not (module.__file__ or "").startswith(bundled)
    ]


def short_name(module: Any) -> str:
    """What an add-on is packed and enabled as on the nodes: its module's last part (an
    extension's ``bl_ext.user_default.NAME`` is ``NAME``)."""
    return str(module.__name__).rsplit(".", 1)[-1]


def stored_properties(item: Any) -> list[str]:
    """The names of the properties registered by add-ons that a data-block stores (Blender 5.0
    keeps them apart from its custom properties)."""
    system = getattr(item, "bl_system_properties_get", None)
    if system is None:
        return [key for key, _ in item.items()]
    stored = system()
    return list(stored.keys()) if stored is not None else []


def used_addons() -> list[str]:
    """The enabled add-ons whose data the file holds, where that can be told: a property group
    of theirs stored on a data-block, or a node of theirs in a node tree."""
    found: set[str] = set()
    modules = {str(module.__name__): short_name(module) for module in enabled_addons()}

    def owner(value: Any) -> None:
        name = type(value).__module__
        for module, short in modules.items():
            if name == module or name.startswith(module + "."):
                found.add(short)

    for collection in (bpy.data.scenes, bpy.data.objects, bpy.data.materials, bpy.data.worlds):
        for item in collection:
            for key in stored_properties(item):
                owner(getattr(item, key, None))
    for tree in [*bpy.data.node_groups, *(m.node_tree for m in bpy.data.materials if m.node_tree)]:
        for node in tree.nodes:
            owner(node)
    return sorted(found)


def job_addons(context: bpy.types.Context) -> tuple[Addon, ...]:
    """The add-ons the scene's job names (Add-ons), with where their source is."""
    wanted = [name.strip() for name in context.scene.brenda.addons.split(",") if name.strip()]
    here = {short_name(module): module for module in enabled_addons()}
    addons = []
    for name in wanted:
        module = here.get(name)
        if module is None:
            raise BrendaError(
                f"The add-on {name} is not enabled in this Blender: enable it, or take it off "
                "the job's Add-ons."
            )
        path = Path(module.__file__)
        addons.append(Addon.at(path.parent if path.name == "__init__.py" else path))
    return tuple(addons)


def artist_environment(context: bpy.types.Context, addons: tuple[Addon, ...]) -> Environment:
    """This Blender as the nodes must match it: version, the job's add-ons (which the nodes
    enable from the project), colour management."""
    # Blender's own module; its stubs say its functions return None.
    addon_utils: Any = importlib.import_module("addon_utils")
    wanted = {addon.name for addon in addons}
    versions = []
    for module in enabled_addons():
        if short_name(module) in wanted:
            version = addon_utils.module_bl_info(module).get("version", ())
            versions.append((short_name(module), ".".join(str(part) for part in version)))
    scene = context.scene
    return Environment(
        blender=f"{bpy.app.version[0]}.{bpy.app.version[1]}",
        addons=tuple(sorted(versions)),
        display=scene.display_settings.display_device,
        view=scene.view_settings.view_transform,
        look=scene.view_settings.look,
        ocio=os.path.basename(os.environ.get("OCIO", "")) or "builtin",
        on_mismatch=scene.brenda.on_mismatch,
    )
