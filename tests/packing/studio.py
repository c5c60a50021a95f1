# SPDX-License-Identifier: GPL-3.0-or-later
"""Builds, with real Blender (the bpy wheel), a small studio project holding every kind of
dependency the packing tests check, renders frame 2 of it as the reference image, and prints one
JSON line. Not collected by pytest.

usage: python studio.py WORK [--missing-texture]

WORK/studio/ is the project root (it holds ``.blender_project``):

    shots/shot1.blend        the file to render; links libs/props.blend by //../
    shots/blendcache_shot1/  a particle system's baked disk cache
    libs/props.blend         a library: Crate (image by an absolute path outside the root) and
                             Ball (material linked from libs/materials.blend, a nested library,
                             saved zstd-compressed, whose image is //metal.png)
    textures/udim/           wood.1001.png and wood.1002.png, one UDIM image
    textures/seq/            glow.0001.png .. glow.0003.png, an image sequence following the frame
    textures/inside.png      used by an absolute path inside the root
    caches/lift.pc2          a mesh cache (Mesh Cache modifier) by //../
    clips/                   plate.0001.png .. plate.0003.png, a movie clip made of a sequence

Two image data-blocks use textures/inside.png (one by an absolute path, one by a relative one),
and one particle system has a disk cache that was never baked (a stale cache folder).
WORK/outside/ holds paint.png (used inside the library), a font and a sound, by absolute paths.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import sys
import wave
from pathlib import Path

import bpy

WORK = Path(sys.argv[1])
MISSING_TEXTURE = "--missing-texture" in sys.argv
STUDIO = WORK / "studio"
OUTSIDE = WORK / "outside"
SIZE = (64, 48)


def reset() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.save_version = 0


def png(path: Path, color: tuple[float, float, float], size: int = 4) -> Path:
    image = bpy.data.images.new(path.stem, size, size)
    image.pixels = [*color, 1.0] * (size * size)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.filepath_raw = str(path)
    image.file_format = "PNG"
    image.save()
    bpy.data.images.remove(image)
    return path


def emission_material(name: str, image: bpy.types.Image | None = None) -> bpy.types.Material:
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    tree = material.node_tree
    emission = tree.nodes.new("ShaderNodeEmission")
    if image is not None:
        texture = tree.nodes.new("ShaderNodeTexImage")
        texture.name = "Texture"
        texture.image = image
        texture.interpolation = "Closest"
        tree.links.new(texture.outputs["Color"], emission.inputs["Color"])
    else:
        emission.inputs["Color"].default_value = (0.9, 0.9, 0.2, 1.0)
    tree.links.new(emission.outputs[0], tree.nodes["Material Output"].inputs["Surface"])
    return material


def plane(
    name: str, location: tuple[float, float], material: bpy.types.Material
) -> bpy.types.Object:
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(
        [(-0.4, -0.4, 0), (0.4, -0.4, 0), (0.4, 0.4, 0), (-0.4, 0.4, 0)], [], [(0, 1, 2, 3)]
    )
    uv = mesh.uv_layers.new()
    for loop, coords in zip(uv.data, [(0, 0), (1, 0), (1, 1), (0, 1)], strict=True):
        loop.uv = coords
    mesh.materials.append(material)
    obj = bpy.data.objects.new(name, mesh)
    obj.location = (*location, 0)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def save(path: Path, *, compress: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(path), compress=compress, relative_remap=True)


def make_materials_library() -> None:
    reset()
    metal = bpy.data.images.load(str(png(STUDIO / "libs" / "metal.png", (0.1, 0.2, 0.9))))
    emission_material("Metal", metal).use_fake_user = True
    save(STUDIO / "libs" / "materials.blend", compress=True)
    metal.filepath = "//metal.png"
    bpy.ops.wm.save_mainfile(compress=True)


def make_props_library() -> None:
    reset()
    save(STUDIO / "libs" / "props.blend")
    paint = bpy.data.images.load(str(png(OUTSIDE / "paint.png", (0.9, 0.1, 0.1))))
    paint.filepath = str(OUTSIDE / "paint.png")  # absolute, outside the root
    plane("Crate", (-1.5, 0.8), emission_material("CrateMat", paint))
    with bpy.data.libraries.load(
        str(STUDIO / "libs" / "materials.blend"), link=True, relative=True
    ) as (
        _source,
        linked,
    ):
        linked.materials = ["Metal"]
    plane("Ball", (-0.5, 0.8), linked.materials[0])
    bpy.ops.wm.save_mainfile(relative_remap=False)


def udim_image() -> bpy.types.Image:
    folder = STUDIO / "textures" / "udim"
    png(folder / "wood.1001.png", (0.8, 0.4, 0.1))
    png(folder / "wood.1002.png", (0.1, 0.8, 0.4))
    image = bpy.data.images.load(str(folder / "wood.1001.png"))
    image.source = "TILED"
    image.filepath = "//../textures/udim/wood.<UDIM>.png"
    image.tiles.new(tile_number=1002)
    image.reload()
    return image


def sequence_image() -> bpy.types.Image:
    folder = STUDIO / "textures" / "seq"
    for frame, color in enumerate([(1.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 1.0)], start=1):
        png(folder / f"glow.{frame:04d}.png", color)
    image = bpy.data.images.load(str(folder / "glow.0001.png"))
    image.source = "SEQUENCE"
    image.filepath = "//../textures/seq/glow.0001.png"
    return image


def write_pc2(path: Path, points: list[tuple[float, float, float]], samples: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as stream:
        stream.write(struct.pack("<12siiffi", b"POINTCACHE2\0", 1, len(points), 0.0, 1.0, samples))
        for _ in range(samples):
            for point in points:
                stream.write(struct.pack("<3f", *point))


def wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(
            b"".join(struct.pack("<h", int(8000 * math.sin(i / 5))) for i in range(800))
        )
    return path


def particles(location: tuple[float, float]) -> None:
    marker = plane("Grain", (0, 0), emission_material("GrainMat"))
    marker.scale = (0.12, 0.12, 0.12)
    marker.location = (10, 10, 0)  # the instanced object itself stays out of view
    emitter = plane("Emitter", location, emission_material("EmitterMat"))
    emitter.modifiers.new("Particles", "PARTICLE_SYSTEM")
    settings = emitter.particle_systems[0].settings
    settings.count = 12
    settings.frame_start = settings.frame_end = 1
    settings.lifetime = 100
    settings.normal_factor = 0.0
    settings.object_align_factor[0] = 3.0
    settings.effector_weights.gravity = 0.0
    settings.render_type = "OBJECT"
    settings.instance_object = marker
    settings.particle_size = 1.0
    settings.show_unborn = False
    settings.use_dead = True
    emitter.show_instancer_for_render = False
    cache = emitter.particle_systems[0].point_cache
    cache.use_disk_cache = True
    bpy.context.scene.frame_start, bpy.context.scene.frame_end = 1, 3
    cache.frame_start, cache.frame_end = 1, 3
    with bpy.context.temp_override(
        scene=bpy.context.scene, active_object=emitter, object=emitter, point_cache=cache
    ):
        bpy.ops.ptcache.bake(bake=True)


def make_shot() -> Path:
    reset()
    scene = bpy.context.scene
    shot = STUDIO / "shots" / "shot1.blend"
    save(shot)
    with bpy.data.libraries.load(
        str(STUDIO / "libs" / "props.blend"), link=True, relative=True
    ) as (
        _source,
        linked,
    ):
        linked.objects = ["Crate", "Ball"]
    for obj in linked.objects:
        scene.collection.objects.link(obj)
    plane("Floor", (0.5, 0.8), emission_material("Wood", udim_image()))
    floor_uv = bpy.data.objects["Floor"].data.uv_layers[0]
    for loop in floor_uv.data:
        loop.uv = (loop.uv[0] * 2, loop.uv[1])
    glow = emission_material("Glow", sequence_image())
    user = glow.node_tree.nodes["Texture"].image_user
    user.frame_duration, user.frame_start, user.use_auto_refresh = 3, 1, True
    plane("Screen", (1.5, 0.8), glow)
    inside = bpy.data.images.load(str(png(STUDIO / "textures" / "inside.png", (0.5, 0.5, 0.5))))
    inside.filepath = str(STUDIO / "textures" / "inside.png")  # absolute, inside the root
    plane("Wall", (-1.5, -0.6), emission_material("Plaster", inside))
    trim = bpy.data.images.load(str(STUDIO / "textures" / "inside.png"), check_existing=False)
    trim.filepath = "//../textures/inside.png"  # the same file again, by a relative path
    plane("Trim", (10, -10), emission_material("TrimMat", trim))
    stale = plane("Stale", (-10, 10), emission_material("StaleMat"))
    stale.modifiers.new("Never Baked", "PARTICLE_SYSTEM")
    stale.particle_systems[0].point_cache.use_disk_cache = True  # a cache folder never written
    lift = plane("Lift", (-0.5, -0.9), emission_material("LiftMat"))
    points = [(x, y + 0.4, 0.0) for x, y, _ in (v.co for v in lift.data.vertices)]
    write_pc2(STUDIO / "caches" / "lift.pc2", points, samples=5)
    cache = lift.modifiers.new("Cache", "MESH_CACHE")
    cache.cache_format = "PC2"
    cache.filepath = "//../caches/lift.pc2"
    font = OUTSIDE / "mono.woff2"
    shutil.copyfile(
        Path(bpy.utils.system_resource("DATAFILES", path="fonts")) / "DejaVuSansMono.woff2", font
    )
    text = bpy.data.curves.new("Label", "FONT")
    text.body = "B"
    text.size = 0.9
    text.font = bpy.data.fonts.load(str(font))
    text.materials.append(emission_material("Ink"))
    label = bpy.data.objects.new("Label", text)
    label.location = (0.3, -1.1, 0)
    scene.collection.objects.link(label)
    speaker = bpy.data.objects.new("Speaker", bpy.data.speakers.new("Speaker"))
    speaker.data.sound = bpy.data.sounds.load(str(wav(OUTSIDE / "hum.wav")))
    scene.collection.objects.link(speaker)
    particles((1.5, -0.6))
    for frame in range(1, 4):
        png(STUDIO / "clips" / f"plate.{frame:04d}.png", (0.2, 0.2, 0.2 * frame))
    plate = bpy.data.movieclips.load(str(STUDIO / "clips" / "plate.0001.png"))
    plate.filepath = "//../clips/plate.0001.png"
    plate.use_fake_user = True  # a tracking plate: an image-sequence movie clip

    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    camera.location = (0, 0, 5)
    camera.data.type = "ORTHO"
    camera.data.ortho_scale = 4.4
    scene.collection.objects.link(camera)
    scene.camera = camera
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 2
    scene.cycles.use_denoising = False
    scene.cycles.device = "CPU"
    scene.view_settings.view_transform = "Standard"
    scene.render.resolution_x, scene.render.resolution_y = SIZE
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = 1, 3
    bpy.ops.wm.save_mainfile(relative_remap=False)
    return shot


def render_reference(shot: Path, frame: int) -> Path:
    bpy.ops.wm.open_mainfile(filepath=str(shot))
    scene = bpy.context.scene
    scene.frame_set(frame)
    reference = WORK / f"reference_{frame}.png"
    scene.render.filepath = str(reference)
    scene.render.image_settings.file_format = "PNG"
    bpy.ops.render.render(write_still=True)
    return reference


(STUDIO / ".blender_project").mkdir(parents=True, exist_ok=True)
make_materials_library()
make_props_library()
shot = make_shot()
reference = render_reference(shot, 2)
for leftover in (shot.parent / "blendcache_shot1").glob(f"{b'Stale'.hex().upper()}_*"):
    leftover.unlink()  # what Blender wrote on the way; the cache stays unbaked and empty
if MISSING_TEXTURE:
    (STUDIO / "textures" / "inside.png").unlink()
print("STUDIO " + json.dumps({"blend": str(shot), "reference": str(reference)}))
