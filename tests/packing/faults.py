# SPDX-License-Identifier: GPL-3.0-or-later
"""Builds, with real Blender (the bpy wheel), the two projects that packing once failed on, and
prints one JSON line. Not collected by pytest.

usage: python faults.py WORK

WORK/geometry_nodes/shot.blend
    an object with a Geometry Nodes modifier that has no bakes, saved, opened and saved again as
    an artist would: the file keeps a ``bakes`` pointer to nothing, which blender-asset-tracer's
    strict pointer walk refuses.
WORK/nested/ (the project root, holding ``.blender_project``)
    shots/shot.blend           links the object Ball from libs/props/props.blend
    libs/props/props.blend     a library whose Ball uses the material Metal, linked from
                               materials/metal.blend (a nested library in another folder)
    materials/metal.blend      the material, whose image is //metal.png next to it
WORK/nested_reference.png is shots/shot.blend's frame 1, rendered from the sources.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import bpy

WORK = Path(sys.argv[1])
NESTED = WORK / "nested"


def reset() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.save_version = 0


def save_as(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(path), relative_remap=True)


def triangle(name: str) -> bpy.types.Object:
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(-1.0, -1.0, 0.0), (1.0, -1.0, 0.0), (0.0, 1.0, 0.0)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def make_geometry_nodes_file() -> Path:
    reset()
    tree = bpy.data.node_groups.new("Passthrough", "GeometryNodeTree")
    tree.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    tree.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    given, result = tree.nodes.new("NodeGroupInput"), tree.nodes.new("NodeGroupOutput")
    tree.links.new(given.outputs[0], result.inputs[0])
    triangle("Shape").modifiers.new("GeometryNodes", "NODES").node_group = tree
    shot = WORK / "geometry_nodes" / "shot.blend"
    save_as(shot)
    bpy.ops.wm.open_mainfile(filepath=str(shot))
    bpy.ops.wm.save_mainfile()
    return shot


def make_nested_project() -> Path:
    reset()
    metal = NESTED / "materials" / "metal.png"
    texture = bpy.data.images.new("metal", 4, 4)
    texture.pixels = [0.1, 0.3, 0.9, 1.0] * 16
    save_as(NESTED / "materials" / "metal.blend")
    texture.filepath_raw = str(metal)
    texture.file_format = "PNG"
    texture.save()
    texture.filepath = "//metal.png"
    material = bpy.data.materials.new("Metal")
    material.use_nodes = True
    nodes = material.node_tree.nodes
    emission, image = nodes.new("ShaderNodeEmission"), nodes.new("ShaderNodeTexImage")
    image.image = texture
    material.node_tree.links.new(image.outputs["Color"], emission.inputs["Color"])
    material.node_tree.links.new(emission.outputs[0], nodes["Material Output"].inputs[0])
    material.use_fake_user = True
    bpy.ops.wm.save_mainfile()

    reset()
    save_as(NESTED / "libs" / "props" / "props.blend")
    with bpy.data.libraries.load(
        str(NESTED / "materials" / "metal.blend"), link=True, relative=True
    ) as (
        _source,
        linked,
    ):
        linked.materials = ["Metal"]
    triangle("Ball").data.materials.append(linked.materials[0])
    bpy.ops.wm.save_mainfile(relative_remap=True)

    reset()
    shot = NESTED / "shots" / "shot.blend"
    save_as(shot)
    with bpy.data.libraries.load(
        str(NESTED / "libs" / "props" / "props.blend"), link=True, relative=True
    ) as (
        _source,
        linked,
    ):
        linked.objects = ["Ball"]
    scene = bpy.context.scene
    scene.collection.objects.link(linked.objects[0])
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    camera.location = (0.0, 0.0, 3.0)
    camera.data.type = "ORTHO"
    camera.data.ortho_scale = 3.0
    scene.collection.objects.link(camera)
    scene.camera = camera
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 1
    scene.cycles.use_denoising = False
    scene.cycles.device = "CPU"
    scene.view_settings.view_transform = "Standard"
    scene.render.resolution_x, scene.render.resolution_y = 16, 16
    scene.render.resolution_percentage = 100
    scene.frame_start = scene.frame_end = 1
    bpy.ops.wm.save_mainfile(relative_remap=True)
    return shot


def render_reference(shot: Path) -> Path:
    bpy.ops.wm.open_mainfile(filepath=str(shot))
    reference = WORK / "nested_reference.png"
    bpy.context.scene.render.filepath = str(reference)
    bpy.context.scene.render.image_settings.file_format = "PNG"
    bpy.ops.render.render(write_still=True)
    return reference


(NESTED / ".blender_project").mkdir(parents=True, exist_ok=True)
geometry_nodes = make_geometry_nodes_file()
nested = make_nested_project()
reference = render_reference(nested)
made = {"geometry_nodes": str(geometry_nodes), "nested": str(nested), "reference": str(reference)}
print("FAULTS " + json.dumps(made))
