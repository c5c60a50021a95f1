# SPDX-License-Identifier: GPL-3.0-or-later
"""Brenda's sample scene, made inside Blender: ``blender -b --python THIS -- JSON``.

Runs in Blender's Python (the ``blender`` executable or the bpy host) and imports bpy only when
run. The JSON after ``--`` gives ``output`` (the .blend to write), ``width``, ``height``,
``samples`` and ``frames``. The scene is a turning monkey head on a floor, rendered with Cycles on
the CPU without denoising or dithering, so a frame rendered in tiles equals the frame rendered
whole.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from typing import Any


def material(bpy: Any, name: str, color: tuple[float, float, float]) -> Any:
    made = bpy.data.materials.new(name)
    made.use_nodes = True
    made.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (*color, 1.0)
    return made


def main() -> None:
    # Blender's own module, used as Blender runs it (the add-on is type-checked against stubs).
    bpy: Any = importlib.import_module("bpy")

    settings = json.loads(sys.argv[sys.argv.index("--") + 1])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene

    bpy.ops.mesh.primitive_plane_add(size=30)
    bpy.context.object.data.materials.append(material(bpy, "Floor", (0.8, 0.75, 0.6)))
    bpy.ops.mesh.primitive_monkey_add(location=(0.0, 0.0, 1.2))
    monkey = bpy.context.object
    bpy.ops.object.shade_smooth()
    monkey.data.materials.append(material(bpy, "Monkey", (0.9, 0.25, 0.1)))
    frames = int(settings["frames"])
    # New keys turn at an even speed; set before inserting them, as Blender 5.0's actions keep
    # their curves in slots and layers, where 4.x had action.fcurves.
    bpy.context.preferences.edit.keyframe_new_interpolation_type = "LINEAR"
    monkey.rotation_euler = (0.0, 0.0, 0.0)
    monkey.keyframe_insert("rotation_euler", frame=1)
    monkey.rotation_euler = (0.0, 0.0, 2 * math.pi)
    monkey.keyframe_insert("rotation_euler", frame=frames + 1)
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.6, location=(2.0, 1.0, 0.6))
    bpy.context.object.data.materials.append(material(bpy, "Ball", (0.1, 0.35, 0.9)))

    bpy.ops.object.light_add(type="SUN", rotation=(0.7, 0.2, 0.5))
    bpy.context.object.data.energy = 4.0
    bpy.ops.object.camera_add(location=(0.0, -7.0, 3.5), rotation=(math.radians(70), 0.0, 0.0))
    scene.camera = bpy.context.object
    world = bpy.data.worlds.new("Sky")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.4, 0.55, 0.8, 1.0)
    scene.world = world

    render = scene.render
    render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = int(settings["samples"])
    scene.cycles.use_denoising = False
    render.dither_intensity = 0.0
    render.resolution_x = int(settings["width"])
    render.resolution_y = int(settings["height"])
    render.resolution_percentage = 100
    render.image_settings.file_format = "PNG"
    scene.frame_start, scene.frame_end = 1, frames
    bpy.ops.wm.save_as_mainfile(filepath=settings["output"])


if __name__ == "__main__":
    main()
