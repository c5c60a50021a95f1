# SPDX-License-Identifier: GPL-3.0-or-later
"""Frames per hour on one node for one-frame tasks: warm Blender against a Blender per task.

The scene is built with bpy so that loading it takes about as long as rendering a frame, as on
real projects: several dense meshes and large image textures in files beside the .blend. Both
ways render the same tasks with the node's own ``TaskRunner`` (the ``blender`` program on PATH,
else the ``bpy`` wheel), one after the other in the same run, each from a fresh start; the first
frame of each way is included, since a node pays it too.

Run: ``python bench/warm.py [--tasks N] [--objects N] [--textures N] [--samples N]
[--blender PROGRAM]``; ``--blender .venvs/py3.13/bin/brenda-blender`` measures Blender 5.2.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from brenda_node.blender import TaskRunner
from brenda_node.blenders import Blenders, blender_command
from brenda_node.warm import WarmPool, default_memory_limit
from shared.tasks.task import FrameChunk, RenderSettings, RenderTask

SCENE = """
import bpy, json, sys
settings = json.loads(sys.argv[sys.argv.index("--") + 1])
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = settings["samples"]
scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y = 160, 90
scene.render.resolution_percentage = 100
scene.frame_start, scene.frame_end = 1, 1000
folder = settings["folder"]
images = []
for number in range(settings["textures"]):
    image = bpy.data.images.new(f"texture{number}", 2048, 2048)
    image.generated_type = "COLOR_GRID"
    image.filepath_raw = f"{folder}/texture{number}.png"
    image.file_format = "PNG"
    image.save()
    images.append(image)
for number in range(settings["objects"]):
    x = number * 2 - settings["objects"]
    bpy.ops.mesh.primitive_ico_sphere_add(subdivisions=7, radius=0.8, location=(x, 0, 0))
    material = bpy.data.materials.new(f"material{number}")
    material.use_nodes = True
    texture = material.node_tree.nodes.new("ShaderNodeTexImage")
    texture.image = images[number % len(images)]
    shader = material.node_tree.nodes["Principled BSDF"]
    material.node_tree.links.new(texture.outputs["Color"], shader.inputs["Base Color"])
    bpy.context.object.data.materials.append(material)
bpy.ops.object.camera_add(location=(0, -14, 0), rotation=(1.5708, 0, 0))
scene.camera = bpy.context.object
bpy.ops.object.light_add(type="SUN", rotation=(0.6, 0.2, 0))
bpy.ops.wm.save_as_mainfile(filepath=f"{folder}/scene.blend")
"""


def build_scene(
    folder: Path, objects: int, textures: int, samples: int, blender: str | None
) -> None:
    script = folder / "build.py"
    script.write_text(SCENE, encoding="utf-8")
    settings = {"folder": str(folder), "objects": objects, "textures": textures, "samples": samples}
    command = [*blender_command(blender), "-b", "--python", str(script), "--", json.dumps(settings)]
    subprocess.run(command, check=True, capture_output=True, timeout=600)


def render_all(folder: Path, tasks: int, warm: bool, blender: str | None) -> tuple[float, float]:
    """Seconds to render ``tasks`` one-frame tasks, warm or with a Blender per task, and the
    seconds of it Blender reported rendering."""
    pool = WarmPool(1000, default_memory_limit()) if warm else None
    blenders = Blenders.of([blender], folder / "bin")
    runner = TaskRunner(folder, blenders, folder / "tmp", warm=pool)
    settings = RenderSettings(blend="scene.blend")
    started = time.monotonic()
    rendering = 0.0
    try:
        for frame in range(1, tasks + 1):
            task = RenderTask(FrameChunk(frame, frame, 1), None, settings)
            result = runner.run(task, folder / "out" / str(frame), stop=threading.Event())
            if result.failure() is not None:
                raise SystemExit(f"frame {frame} failed: {result.failure()}")
            rendering += result.render_seconds
    finally:
        if pool is not None:
            pool.discard()
    return time.monotonic() - started, rendering


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8, help="one-frame tasks per way (8)")
    parser.add_argument("--objects", type=int, default=6, help="dense meshes in the scene (6)")
    parser.add_argument("--textures", type=int, default=4, help="2048x2048 textures (4)")
    parser.add_argument("--samples", type=int, default=16, help="Cycles samples per frame (16)")
    parser.add_argument("--blender", help="the Blender program (default: as a node finds it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="brenda-bench-warm-") as scratch:
        folder = Path(scratch)
        build_scene(folder, args.objects, args.textures, args.samples, args.blender)
        print(Blenders.of([args.blender], folder / "bin").default.describe())
        size = sum(path.stat().st_size for path in folder.iterdir() if path.is_file())
        print(f"scene: {args.objects} meshes, {args.textures} textures, {size >> 20} MB on disk")
        cold = render_all(folder, args.tasks, warm=False, blender=args.blender)
        warm = render_all(folder, args.tasks, warm=True, blender=args.blender)
    for label, (seconds, rendering) in (("a Blender per task", cold), ("warm Blender", warm)):
        per_hour = args.tasks * 3600 / seconds
        print(
            f"{label:>20}: {args.tasks} frames in {seconds:6.1f} s = {per_hour:7.0f} frames/hour "
            f"({rendering / args.tasks:.2f} s a frame rendering, "
            f"{(seconds - rendering) / args.tasks:.2f} s starting and loading)"
        )
    print(f"speed-up: {cold[0] / warm[0]:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
