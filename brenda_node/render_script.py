# SPDX-License-Identifier: GPL-3.0-or-later
"""The render script of structured tasks, run inside Blender: ``blender -b FILE -P THIS -- JSON``.

With ``{"serve": true}`` as its JSON it keeps the file loaded and reads one task's JSON per line
on stdin (warm Blender, see ``serve``).

It runs in Blender's Python (the ``blender`` executable or the bpy host), never in the node, and
imports bpy only when run. The JSON after ``--`` holds the frames ``[start, end, step]``, the tile
``[min_x, max_x, min_y, max_y]`` or null, the image format, the scene (null: the active one) and
the output path with ``#`` marks, ``render_anyway`` and ``allow_python``. A tile renders only its
region, in a full-size image (border render, not cropped) as Brenda's subframe template does.

The node opens the file with its Python disabled unless the job allows it (``--disable-autoexec``):
a driver that needs Python then fails the task with its expression named, rather than render with
the driver's value frozen. Registered scripts that Blender skipped (a rig's UI script) only warn.

Before rendering it asks Blender what the task's frames read that is not on disk: libraries and
linked data-blocks, images (with the UDIM tiles and the sequence frames these frames show), fonts,
Alembic/USD caches, mesh caches, volumes and baked point caches. Any missing file fails the task
with an error naming it, unless the job says "render anyway": a farm never renders magenta and
calls it done. After rendering it prints ``BRENDA-OUTPUT: <path>`` for each frame file that
exists, which is how the node knows every frame was written.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

OUTPUT_MARK = "BRENDA-OUTPUT: "
SIZE_MARK = "BRENDA-SIZE: "
READY_MARK = "BRENDA-READY"
DEVICE_MARK = "BRENDA-DEVICE: "
DENOISE_MARK = "BRENDA-DENOISE: "
DONE_MARK = "BRENDA-TASK-DONE"
MISSING_SHOWN = 5
_TRAILING_NUMBER = re.compile(r"(\d+)(?=\.[^./]*$|$)")


def sequence_frame(frame: int, start: int, duration: int, offset: int, cyclic: bool) -> int:
    """The number of the file an image sequence shows at ``frame`` (Blender's
    ``BKE_image_user_frame_get``): counted from ``start``, clamped to ``duration`` files or
    looping over them, then shifted by ``offset``."""
    if duration <= 0:
        return frame + offset
    position = frame - start + 1
    if cyclic:
        position %= duration
        if position <= 0:
            position += duration
    return min(max(position, 0), duration) + offset


def sequence_file(path: str, number: int) -> str:
    """The file of an image sequence holding ``number``: the last run of digits in the name
    replaced, keeping its width (``glow.0001.png`` -> ``glow.0012.png``)."""
    folder, name = os.path.split(path)
    match = _TRAILING_NUMBER.search(name)
    if match is None:
        return path
    digits = f"{number:0{len(match.group(1))}d}"
    return os.path.join(folder, name[: match.start()] + digits + name[match.end() :])


def udim_file(path: str, tile: int) -> str:
    """One tile of a tiled image path (``<UDIM>`` or ``<UVTILE>``)."""
    u, v = (tile - 1001) % 10 + 1, (tile - 1001) // 10 + 1
    return path.replace("<UDIM>", str(tile)).replace("<UVTILE>", f"u{u}_v{v}")


def _image_users(bpy: Any, image: Any) -> Iterator[Any]:
    """The image users (frame settings) of every texture node showing ``image``."""
    trees = [item.node_tree for item in (*bpy.data.materials, *bpy.data.worlds, *bpy.data.lights)]
    trees += list(bpy.data.node_groups)
    for tree in trees:
        for node in tree.nodes if tree is not None else ():
            if getattr(node, "image", None) == image and hasattr(node, "image_user"):
                yield node.image_user


def _image_files(bpy: Any, image: Any, frames: range) -> Iterator[str]:
    path = bpy.path.abspath(image.filepath_raw, library=image.library)
    if image.source == "TILED":
        for tile in image.tiles:
            yield udim_file(path, tile.number)
    elif image.source == "SEQUENCE":
        users = list(_image_users(bpy, image))
        for user in users:
            for frame in frames:
                number = sequence_frame(
                    frame,
                    user.frame_start,
                    user.frame_duration,
                    user.frame_offset,
                    user.use_cyclic,
                )
                yield sequence_file(path, number)
        if not users:
            yield path
    else:
        yield path


def _point_cache_files(bpy: Any, obj: Any, frames: range) -> Iterator[tuple[str, str]]:
    """Files of the baked disk caches of ``obj``'s particle systems, for ``frames``."""
    owner = bpy.path.abspath(obj.library.filepath) if obj.library else bpy.data.filepath
    blend = os.path.splitext(os.path.basename(owner))[0]
    for system in obj.particle_systems:
        cache = system.point_cache
        if not (cache.use_disk_cache and cache.is_baked):
            continue
        folder = (
            bpy.path.abspath(cache.filepath, library=obj.library)
            if cache.use_external
            else bpy.path.abspath(f"//blendcache_{blend}", library=obj.library)
        )
        prefix = cache.name or obj.name.encode().hex().upper()
        index = max(cache.index, 0)
        for frame in frames:
            if cache.frame_start <= frame <= cache.frame_end:
                name = f"{prefix}_{frame:06d}_{index:02d}.bphys"
                yield os.path.join(folder, name), f"particle cache of object '{obj.name}'"


def missing_files(bpy: Any, frames: range) -> list[str]:
    """Files rendering ``frames`` reads that are not on disk, each once, with what uses it."""
    wanted: dict[str, str] = {}

    def need(path: str, user: str) -> None:
        wanted.setdefault(os.path.normpath(path), user)

    for library in bpy.data.libraries:
        # Blender remaps a nested library's path relative to the opened file, not to its parent.
        need(bpy.path.abspath(library.filepath), f"library '{library.name}'")
    for image in bpy.data.images:
        if image.users and image.packed_file is None and image.source in _IMAGE_SOURCES:
            for path in _image_files(bpy, image, frames):
                need(path, f"image '{image.name}'")
    for font in bpy.data.fonts:
        if font.users and font.packed_file is None and font.filepath != "<builtin>":
            need(bpy.path.abspath(font.filepath, library=font.library), f"font '{font.name}'")
    for cache in bpy.data.cache_files:
        if cache.users and not cache.is_sequence:
            need(bpy.path.abspath(cache.filepath, library=cache.library), f"cache '{cache.name}'")
    for volume in bpy.data.volumes:
        if volume.users and volume.packed_file is None and not volume.is_sequence:
            path = bpy.path.abspath(volume.filepath, library=volume.library)
            need(path, f"volume '{volume.name}'")
    for obj in bpy.data.objects:
        for modifier in obj.modifiers:
            if modifier.type == "MESH_CACHE":
                path = bpy.path.abspath(modifier.filepath, library=obj.library)
                need(path, f"mesh cache of object '{obj.name}'")
        for path, user in _point_cache_files(bpy, obj, frames):
            need(path, user)
    missing = [f"{path} ({user})" for path, user in wanted.items() if not os.path.isfile(path)]
    placeholders = [
        f"{type(item).__name__} '{item.name}' from {item.library.filepath}"
        for collection in (bpy.data.objects, bpy.data.materials, bpy.data.meshes)
        for item in collection
        if item.library is not None and item.is_missing
    ]
    return missing + placeholders


_IMAGE_SOURCES = {"FILE", "SEQUENCE", "TILED", "MOVIE"}


def _drivers(item: Any) -> Iterator[tuple[Any, Any]]:
    """``(owner, driver F-curve)`` of a data-block and of the node tree inside it."""
    for owner in (item, getattr(item, "node_tree", None)):
        animation = getattr(owner, "animation_data", None) if owner is not None else None
        if animation is not None:
            for curve in animation.drivers:
                yield owner, curve


def all_drivers(bpy: Any) -> Iterator[tuple[Any, Any]]:
    """``(owner, driver F-curve)`` of every data-block of the file."""
    for collection in bpy.data.bl_rna.properties:
        if collection.type == "COLLECTION":
            for item in getattr(bpy.data, collection.identifier):
                yield from _drivers(item)


def python_drivers(bpy: Any) -> list[str]:
    """Drivers Blender did not run because the file's Python may not run."""
    if not bpy.app.autoexec_fail:
        return []
    return [
        f"'{curve.driver.expression}' driving {curve.data_path} of "
        f"{type(owner).__name__} '{owner.name}'"
        for owner, curve in all_drivers(bpy)
        if curve.driver.type == "SCRIPTED" and not curve.driver.is_valid
    ]


def refuse_python_drivers(bpy: Any) -> None:
    blocked = python_drivers(bpy)
    if blocked:
        more = f" and {len(blocked) - 1} more" if len(blocked) > 1 else ""
        raise SystemExit(
            f"Error: the driver {blocked[0]}{more} needs Python, which this job does not allow "
            "(allow Python in the job's settings, or push with --allow-python)"
        )
    if bpy.app.autoexec_fail:
        print(
            f"Warning: Blender skipped the file's own scripts ({bpy.app.autoexec_fail_message}): "
            "this job does not allow Python",
            flush=True,
        )


def refuse_missing(missing: list[str]) -> None:
    if not missing:
        return
    shown = "; ".join(missing[:MISSING_SHOWN])
    more = f" and {len(missing) - MISSING_SHOWN} more" if len(missing) > MISSING_SHOWN else ""
    noun = "file the render reads is" if len(missing) == 1 else "files the render reads are"
    raise SystemExit(
        f"Error: {len(missing)} {noun} missing on the node: {shown}{more} "
        "(pack the project with Brenda, or let the job render anyway)"
    )


def arguments() -> dict[str, Any]:
    try:
        return dict(json.loads(sys.argv[sys.argv.index("--") + 1]))
    except (ValueError, IndexError) as error:
        raise SystemExit(
            f"Error: the render script needs its settings after '--' ({error})"
        ) from None


def use_device(bpy: Any, scene: Any, device: str) -> str:
    """Make Cycles render on ``device`` (CPU, or a GPU backend such as CUDA or OPTIX); a node
    without that GPU fails the task rather than render on its CPU. Returns what it renders on."""
    if scene.render.engine != "CYCLES":
        return f"{scene.render.engine} (no Cycles device)"
    if device == "CPU":
        scene.cycles.device = "CPU"
        return "CPU"
    preferences = bpy.context.preferences.addons["cycles"].preferences
    try:
        preferences.compute_device_type = device
    except TypeError:
        raise SystemExit(
            f"Error: the job renders on {device}, which this node's Blender cannot use"
        ) from None
    preferences.refresh_devices()
    found = [item for item in preferences.devices if item.type == device]
    if not found:
        seen = ", ".join(sorted({item.name for item in preferences.devices})) or "no device"
        raise SystemExit(
            f"Error: the job renders on {device}, but this node has no {device} device "
            f"(Blender sees {seen}); launch GPU nodes or render the job on CPU"
        )
    for item in preferences.devices:
        item.use = item.type == device
    scene.cycles.device = "GPU"
    return f"{device}: {', '.join(item.name for item in found)}"


def environment_differences(
    bpy: Any, scene: Any, wanted: dict[str, Any], newer_ok: bool = False
) -> list[str]:
    """How this Blender differs from the artist's: version (a newer one only counts when the job
    does not accept it), add-ons, colour management."""
    addon_utils: Any = importlib.import_module("addon_utils")  # Blender's own module

    found = []
    version = ".".join(str(part) for part in bpy.app.version[:2])
    artist = tuple(int(part) for part in wanted["blender"].split("."))
    if wanted["blender"] != version and not (newer_ok and bpy.app.version[:2] > artist):
        found.append(f"Blender {version} here, {wanted['blender']} where the job was pushed")
    for name, addon_version in wanted.get("addons", ()):
        module = sys.modules.get(name)
        if not addon_utils.check(name)[1]:
            module = addon_utils.enable(name, default_set=False)
        if module is None:
            found.append(f"add-on {name} {addon_version} is not on this node")
            continue
        here = ".".join(str(part) for part in addon_utils.module_bl_info(module).get("version", ()))
        if here != addon_version:
            found.append(f"add-on {name} is {here or 'unversioned'} here, {addon_version} at push")
    ocio = os.path.basename(os.environ.get("OCIO", "")) or "builtin"
    colour = {
        "display device": (scene.display_settings.display_device, wanted.get("display", "")),
        "view transform": (scene.view_settings.view_transform, wanted.get("view", "")),
        "look": (scene.view_settings.look, wanted.get("look", "")),
        "OCIO config": (ocio, wanted.get("ocio", "")),
    }
    for what, (here, there) in colour.items():
        if there and here != there:
            found.append(f"{what} {here} here, {there} at push")
    return found


def check_environment(
    bpy: Any, scene: Any, wanted: dict[str, Any] | None, newer_ok: bool = False
) -> None:
    if wanted is None:
        return
    differences = environment_differences(bpy, scene, wanted, newer_ok)
    if not differences:
        return
    text = "; ".join(differences)
    if wanted.get("on_mismatch", "fail") == "fail":
        raise SystemExit(f"Error: this node's Blender differs from the artist's: {text}")
    print(f"Warning: this node's Blender differs from the artist's: {text}", flush=True)


def enable_project_addons(bpy: Any, scene: Any) -> None:
    """Add-ons shipped in the project's ``addons/`` folder, enabled (they are Python: only for
    jobs that allow Python). Drivers that failed when the file loaded, before the add-ons that
    define their functions were there, are evaluated again."""
    addon_utils: Any = importlib.import_module("addon_utils")  # Blender's own module

    packed = project_addons()
    if not packed:
        return
    sys.path.insert(0, os.path.join(os.getcwd(), ADDONS_FOLDER))
    enabled = False
    for entry in packed:
        name = entry.removesuffix(".py")
        if name.isidentifier() and addon_utils.enable(name, default_set=False) is not None:
            print(f"Info: enabled the project's add-on {name}", flush=True)
            enabled = True
    if enabled:
        for _, curve in all_drivers(bpy):
            curve.driver.is_valid = True
            # Setting it tags the driver for evaluation at the next frame change.
            curve.driver.expression = curve.driver.expression
        scene.frame_set(scene.frame_current)


ADDONS_FOLDER = "addons"


def project_addons() -> list[str]:
    """What the project's ``addons/`` folder holds (the task runs in the project's folder)."""
    folder = os.path.join(os.getcwd(), ADDONS_FOLDER)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def refuse_project_addons() -> None:
    """A project that packs add-ons renders as the artist's only with them, and they are
    Python: a job that does not allow Python fails rather than render without them."""
    packed = project_addons()
    if packed:
        raise SystemExit(
            f"Error: the project packs the add-on {', '.join(packed)}, which is Python, and this "
            "job does not allow Python (allow Python in the job's settings, or push with "
            "--allow-python)"
        )


def denoise_after_assembly(scene: Any, settings: dict[str, Any]) -> dict[str, Any] | None:
    """For a tile of a scene Cycles denoises: render it noisy with the passes the denoiser needs
    (a multilayer OpenEXR), so that the frame is denoised once, whole, after its tiles are
    assembled (``denoise``): denoising each tile alone shows seams. Returns what that needs."""
    if scene.render.engine != "CYCLES":
        return None
    layers = [layer for layer in scene.view_layers if layer.use]
    # A warm Blender renders task after task: each starts from the file's own settings.
    if "brenda_denoising" not in scene:
        scene["brenda_denoising"] = bool(scene.cycles.use_denoising)
        scene["brenda_passes"] = [layer.cycles.denoising_store_passes for layer in layers]
    scene.cycles.use_denoising = bool(scene["brenda_denoising"])
    for layer, stored in zip(layers, scene["brenda_passes"], strict=False):
        layer.cycles.denoising_store_passes = bool(stored)
    if settings["tile"] is None or not scene.cycles.use_denoising:
        return None
    if len(layers) != 1 or (compositor(scene) is not None and scene.render.use_compositing):
        print(
            "Warning: each tile is denoised alone (seams may show): whole-frame denoising of "
            "tiles needs one view layer and no compositing",
            flush=True,
        )
        return None
    image = scene.render.image_settings
    after = {
        "format": image.file_format,
        "color_depth": image.color_depth,
        "color_mode": image.color_mode,
        "layer": layers[0].name,
        "view": scene.view_settings.view_transform,
        "look": scene.view_settings.look,
        "exposure": scene.view_settings.exposure,
        "gamma": scene.view_settings.gamma,
        "display": scene.display_settings.display_device,
        "prefilter": scene.cycles.denoising_prefilter,
        "quality": scene.cycles.denoising_quality,
    }
    scene.cycles.use_denoising = False
    layers[0].cycles.denoising_store_passes = True
    set_file_format(image, "OPEN_EXR_MULTILAYER")
    image.color_depth = "32"
    return after


# Blender 5.0 made multilayer OpenEXR and video media types of their own: file_format then takes
# only the formats of the image settings' media type.
MEDIA_TYPES = {"OPEN_EXR_MULTILAYER": "MULTI_LAYER_IMAGE", "FFMPEG": "VIDEO"}


def set_file_format(image: Any, file_format: str) -> None:
    """Set an image settings' format, on every Blender (4.2 to 5.x)."""
    if hasattr(image, "media_type"):
        image.media_type = MEDIA_TYPES.get(file_format, "IMAGE")
    image.file_format = file_format


def compositor(scene: Any) -> Any:
    """The scene's compositing node tree, or None when it composites nothing (Blender 5.0 keeps
    it in ``compositing_node_group``; before, ``node_tree`` counted only with ``use_nodes``)."""
    if hasattr(scene, "compositing_node_group"):
        return scene.compositing_node_group
    return scene.node_tree if scene.use_nodes else None


def new_compositor(bpy: Any, scene: Any) -> tuple[Any, Any]:
    """An empty compositing node tree for ``scene``, and the input its result goes to."""
    if hasattr(scene, "compositing_node_group"):
        tree = bpy.data.node_groups.new("Brenda denoising", "CompositorNodeTree")
        scene.compositing_node_group = tree
        tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        return tree, tree.nodes.new("NodeGroupOutput").inputs["Image"]
    scene.use_nodes = True
    tree = scene.node_tree
    for node in list(tree.nodes):
        tree.nodes.remove(node)
    return tree, tree.nodes.new("CompositorNodeComposite").inputs["Image"]


def set_denoiser(denoiser: Any, prefilter: str, quality: str) -> None:
    """The Denoise node set as Cycles denoised (settings are menu inputs from Blender 5.0; 4.2's
    node has no quality and denoises at its best)."""
    if "Prefilter" in denoiser.inputs:
        denoiser.inputs["Prefilter"].default_value = prefilter.title()
        denoiser.inputs["Quality"].default_value = quality.title()
        denoiser.inputs["HDR"].default_value = True
        return
    denoiser.prefilter = prefilter
    if hasattr(denoiser, "quality"):
        denoiser.quality = quality
    denoiser.use_hdr = True


def denoise(bpy: Any, settings: dict[str, Any]) -> None:
    """Denoise an assembled frame once, whole, with Blender's compositor (OpenImageDenoise, as
    Cycles does) and write it as the job asked, in the scene's colour management."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    after = settings["after"]
    scene.render.resolution_x, scene.render.resolution_y = after["size"]
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = after["view"]
    scene.view_settings.look = after["look"]
    scene.view_settings.exposure = after["exposure"]
    scene.view_settings.gamma = after["gamma"]
    scene.display_settings.display_device = after["display"]
    tree, result = new_compositor(bpy, scene)
    source = tree.nodes.new("CompositorNodeImage")
    source.image = bpy.data.images.load(settings["noisy"])
    source.layer = after["layer"]
    denoiser = tree.nodes.new("CompositorNodeDenoise")
    set_denoiser(denoiser, after["prefilter"], after["quality"])
    tree.links.new(source.outputs["Combined"], denoiser.inputs["Image"])
    tree.links.new(source.outputs["Denoising Normal"], denoiser.inputs["Normal"])
    tree.links.new(source.outputs["Denoising Albedo"], denoiser.inputs["Albedo"])
    tree.links.new(denoiser.outputs["Image"], result)
    image = scene.render.image_settings
    set_file_format(image, after["format"])
    image.color_mode = after["color_mode"]
    if after["color_depth"]:
        image.color_depth = after["color_depth"]
    scene.render.use_file_extension = False
    scene.render.filepath = settings["output"]
    bpy.ops.render.render(write_still=True)
    print(f"{OUTPUT_MARK}{settings['output']}", flush=True)


RESTORED_IMAGE_SETTINGS = ("file_format", "color_mode", "color_depth", "use_exr_interleave")


def restore_image_settings(scene: Any) -> None:
    """Put the scene's output settings back as the file has them, so that a warm Blender starts
    every task where a fresh one would (a denoised tile's task changes them)."""
    image = scene.render.image_settings
    if "brenda_image" not in scene:
        kept = [name for name in RESTORED_IMAGE_SETTINGS if hasattr(image, name)]
        scene["brenda_image"] = {name: getattr(image, name) for name in kept}
    stored = scene["brenda_image"]
    set_file_format(image, stored["file_format"])
    for name in RESTORED_IMAGE_SETTINGS[1:]:
        if name in stored:
            setattr(image, name, stored[name])


def render_task(bpy: Any, settings: dict[str, Any]) -> None:
    """Render one task's frames into its output path; print their size and files."""
    name = settings["scene"]
    if name is not None and name not in bpy.data.scenes:
        raise SystemExit(f"Error: the file has no scene named '{name}'")
    scene = bpy.data.scenes[name] if name is not None else bpy.context.scene
    render = scene.render
    restore_image_settings(scene)
    set_file_format(render.image_settings, settings["format"])
    render.filepath = settings["output"]
    render.use_file_extension = True
    tile = settings["tile"]
    render.use_border = tile is not None
    if tile is not None:
        render.use_crop_to_border = False
        render.border_min_x, render.border_max_x, render.border_min_y, render.border_max_y = tile
    start, end, step = settings["frames"]
    if settings.get("allow_python", False):
        enable_project_addons(bpy, scene)
    else:
        refuse_project_addons()
    check_environment(
        bpy, scene, settings.get("environment"), settings.get("blender_newer_ok", False)
    )
    print(f"{DEVICE_MARK}{use_device(bpy, scene, settings.get('device', 'CPU'))}", flush=True)
    after = denoise_after_assembly(scene, settings)
    if tile is not None and hasattr(render.image_settings, "use_exr_interleave"):
        # Blender 5.0 writes multilayer OpenEXR as one part per pass; tiles are assembled (and
        # their denoising passes read) from one interleaved part, as Blender 4.x wrote them.
        render.image_settings.use_exr_interleave = True
    if not settings.get("allow_python", False):
        scene.frame_set(start)
        refuse_python_drivers(bpy)
    if not settings.get("render_anyway", False):
        refuse_missing(missing_files(bpy, range(start, end + 1, step)))
    scene.frame_start, scene.frame_end, scene.frame_step = start, end, step
    percent = render.resolution_percentage
    width, height = render.resolution_x * percent // 100, render.resolution_y * percent // 100
    print(f"{SIZE_MARK}{width} {height}", flush=True)
    if after is not None:
        print(f"{DENOISE_MARK}{json.dumps({**after, 'size': [width, height]})}", flush=True)
    bpy.ops.render.render(animation=True, scene=scene.name)
    for frame in range(start, end + 1, step):
        path = render.frame_path(frame=frame)
        if os.path.isfile(path):
            print(f"{OUTPUT_MARK}{path}", flush=True)


RELAY_HANDLER = "brenda_relay_progress"


def relay_progress(bpy: Any) -> None:
    """From Blender 5.0 a background render prints no progress, only its "Saved:" line (as a log
    line): print the render statistics Blender hands its ``render_stats`` handlers as 4.x printed
    them, ``Fra:N ... Sample 3/16`` and ``Time: 00:01.25 (Saving: ...)``, so that the node sees
    frames, samples and render times on every version. Registered once per process."""
    handlers = bpy.app.handlers
    if bpy.app.version < (5, 0, 0) or any(
        getattr(handler, "__name__", "") == RELAY_HANDLER for handler in handlers.render_stats
    ):
        return
    rendering = {"frame": 0}

    @handlers.persistent  # type: ignore[untyped-decorator]
    def brenda_render_pre(scene: Any, *_: Any) -> None:
        rendering["frame"] = scene.frame_current

    @handlers.persistent  # type: ignore[untyped-decorator]
    def brenda_relay_progress(text: str) -> None:
        shown = text if text.startswith("Time:") else f"Fra:{rendering['frame']} | {text}"
        print(shown, flush=True)

    handlers.render_pre.append(brenda_render_pre)
    handlers.render_stats.append(brenda_relay_progress)


def serve(bpy: Any) -> None:
    """Warm Blender: the file stays loaded and renders task after task, one JSON line each on
    stdin, each answered with ``BRENDA-TASK-DONE`` once its frames are written. A task that
    fails ends the process (the node starts a fresh one); so does the end of stdin."""
    for scene in bpy.data.scenes:
        scene.render.use_persistent_data = True  # Cycles keeps what it built between renders
    print(READY_MARK, flush=True)
    for line in sys.stdin:
        if line.strip():
            render_task(bpy, json.loads(line))
            print(DONE_MARK, flush=True)


def main() -> None:
    # Blender's own module, used as Blender runs it (the add-on is type-checked against stubs).
    bpy: Any = importlib.import_module("bpy")
    settings = arguments()
    relay_progress(bpy)
    if settings.get("serve"):
        serve(bpy)
    elif settings.get("denoise"):
        denoise(bpy, settings["denoise"])
    else:
        render_task(bpy, settings)


if __name__ == "__main__":
    main()
