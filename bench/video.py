# SPDX-License-Identifier: GPL-3.0-or-later
"""How long ``brenda-work video`` takes to encode a shot, against rendering the same frames.

The scene is built with bpy (a textured, moving sphere on a plane, Cycles on the CPU) and its
frames rendered as PNGs in one Blender, timed inside it (rendering only: Blender's start and the
scene's build are left out, which flatters the render side). The same frames are then encoded
with the command's own ``encode_video`` (reading each PNG with OpenImageIO, converting and
encoding with PyAV) for each codec asked, in the same run; fetching from S3 is left out.

Run: ``python bench/video.py [--frames N] [--width N] [--height N] [--samples N]
[--codecs h264,prores] [--blender PROGRAM]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from brenda_node.blenders import blender_command
from shared.outputs.video import CODECS, encode_video

SCENE = """
import bpy, json, sys, time
settings = json.loads(sys.argv[sys.argv.index("--") + 1])
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = settings["samples"]
scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y = settings["width"], settings["height"]
scene.render.resolution_percentage = 100
scene.render.image_settings.file_format = "PNG"
scene.render.filepath = settings["folder"] + "/frame_######"
scene.frame_start, scene.frame_end = 1, settings["frames"]
bpy.ops.mesh.primitive_plane_add(size=20)
bpy.ops.mesh.primitive_uv_sphere_add(radius=1, location=(-3, 0, 1))
sphere = bpy.context.object
material = bpy.data.materials.new("grid")
material.use_nodes = True
texture = material.node_tree.nodes.new("ShaderNodeTexChecker")
texture.inputs["Scale"].default_value = 8
shader = material.node_tree.nodes["Principled BSDF"]
material.node_tree.links.new(texture.outputs["Color"], shader.inputs["Base Color"])
sphere.data.materials.append(material)
sphere.keyframe_insert("location", frame=1)
sphere.location = (3, 0, 1)
sphere.rotation_euler = (0, 0, 3.1)
sphere.keyframe_insert("location", frame=settings["frames"])
sphere.keyframe_insert("rotation_euler", frame=settings["frames"])
bpy.ops.object.camera_add(location=(0, -9, 3), rotation=(1.3, 0, 0))
scene.camera = bpy.context.object
bpy.ops.object.light_add(type="SUN", rotation=(0.6, 0.2, 0))
started = time.monotonic()
bpy.ops.render.render(animation=True)
print("RENDER_SECONDS", time.monotonic() - started)
"""


def render_frames(
    folder: Path, *, frames: int, width: int, height: int, samples: int, blender: str | None
) -> float:
    """Render the frames into ``folder``; the seconds Blender spent rendering them."""
    script = folder / "scene.py"
    script.write_text(SCENE, encoding="utf-8")
    settings = {
        "folder": str(folder),
        "frames": frames,
        "width": width,
        "height": height,
        "samples": samples,
    }
    command = [*blender_command(blender), "-b", "--python", str(script), "--", json.dumps(settings)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=3600)
    line = next(line for line in done.stdout.splitlines() if line.startswith("RENDER_SECONDS"))
    return float(line.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24, help="frames of the shot (24)")
    parser.add_argument("--width", type=int, default=960, help="frame width (960)")
    parser.add_argument("--height", type=int, default=540, help="frame height (540)")
    parser.add_argument("--samples", type=int, default=16, help="Cycles samples per frame (16)")
    parser.add_argument("--codecs", default="h264,prores", help="codecs to encode with")
    parser.add_argument("--blender", help="the Blender program (default: as a node finds it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="brenda-bench-video-") as scratch:
        folder = Path(scratch)
        render = render_frames(
            folder,
            frames=args.frames,
            width=args.width,
            height=args.height,
            samples=args.samples,
            blender=args.blender,
        )
        paths = sorted(folder.glob("frame_*.png"))
        assert len(paths) == args.frames, f"{len(paths)} frames rendered"
        frame_bytes = sum(path.stat().st_size for path in paths)
        print(
            f"{args.frames} frames {args.width}x{args.height}, Cycles {args.samples} samples "
            f"(CPU): rendered in {render:.2f} s ({render / args.frames:.3f} s a frame), "
            f"{frame_bytes / 1e6:.1f} MB of PNG"
        )
        for name in args.codecs.split(","):
            codec = CODECS[name]
            target = folder / f"shot{codec.suffix}"
            started = time.monotonic()
            video = encode_video(
                ((path.name, path) for path in paths), target, codec=codec, fps=Fraction(24)
            )
            seconds = time.monotonic() - started
            print(
                f"{name:>8}: encoded in {seconds:6.2f} s ({seconds / video.frames:.3f} s a frame, "
                f"{video.frames / seconds:6.1f} frames/s), {target.stat().st_size / 1e6:.2f} MB; "
                f"encode/render ratio: {seconds / render:.3f}"
            )


if __name__ == "__main__":
    sys.exit(main())
