# SPDX-License-Identifier: GPL-3.0-or-later
"""Drives the installed Brenda extension inside real Blender (the bpy wheel), in one process per
phase; prints one JSON line of findings for test_addon.py. Not collected by pytest.

usage: python scenario.py PHASE ZIP WORK ENDPOINT [JOB]
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import bpy

PHASE, ZIP, WORK, ENDPOINT = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
KEPT = sys.argv[5] if len(sys.argv) > 5 else ""
"""The job the first phase pushed and kept, for the later phases."""
MODULE = "bl_ext.user_default.brenda"
ONLINE_OPERATORS = (
    "upload_project",
    "push_job",
    "launch_nodes",
    "refresh_jobs",
    "download_frames",
    "open_sequence",
    "open_video",
    "open_report",
    "build_ebs_volume",
    "snapshot_ebs_volume",
    "stop_farm",
)
findings: dict[str, Any] = {}


class RecordingLayout:
    """Stands in for a UI layout so the panel's draw can run without a window; records labels."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.enabled = True
        self.use_property_split = False

    def label(self, text: str = "", **_: Any) -> None:
        self.lines.append(text)

    def progress(self, factor: float = 0.0, text: str = "", **_: Any) -> None:
        self.lines.append(f"progress {factor:.2f} {text}")

    def operator(self, name: str, **_: Any) -> Any:
        self.lines.append(f"button {name}")
        lines = self.lines

        class Properties:
            def __setattr__(self, key: str, value: Any) -> None:
                lines.append(f"  {key}={value}")

        return Properties()

    def template_icon(self, icon_value: int = 0, **_: Any) -> None:
        self.lines.append("thumbnail")

    def prop(self, data: Any, name: str, **_: Any) -> None:
        getattr(data, name)  # the property must exist

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self  # column(), row(), box(), separator()


def draw_panel(name: str = "BRENDA_PT_farm") -> list[str]:
    lines: list[str] = []
    panel_type = getattr(bpy.types, name)
    fake = type("PanelSelf", (), {"layout": RecordingLayout(lines)})()
    panel_type.draw(fake, bpy.context)
    return lines


def call(operator: str, **kwargs: Any) -> str:
    """Run ``bpy.ops.brenda.<operator>``; returns "FINISHED" or the error Blender raised."""
    try:
        result = getattr(bpy.ops.brenda, operator)(**kwargs)
    except RuntimeError as error:
        return f"error: {error}"
    return ",".join(sorted(result))


def install() -> None:
    bpy.context.preferences.system.use_online_access = True
    result = bpy.ops.extensions.package_install_files(
        filepath=str(ZIP), repo="user_default", enable_on_install=True
    )
    assert result == {"FINISHED"}, result
    prefs = bpy.context.preferences.addons[MODULE].preferences
    findings["preferences_installed"] = {
        name: getattr(prefs, name) for name in ("profile", "region", "farm", "ami")
    }
    prefs.endpoint_url = ENDPOINT
    prefs.region = "us-east-1"
    prefs.project_bucket = "addon-projects"
    prefs.output_bucket = "addon-frames"
    prefs.farm = "addon"
    prefs.ami = "ami-12c6146b"


def texture(path: Path, color: tuple[float, float, float]) -> bpy.types.Image:
    image = bpy.data.images.new(path.stem, 4, 4)
    image.pixels = [*color, 1.0] * 16
    path.parent.mkdir(parents=True, exist_ok=True)
    image.filepath_raw = str(path)
    image.file_format = "PNG"
    image.save()
    return image


def textured_plane(image: bpy.types.Image, x: float) -> None:
    bpy.ops.mesh.primitive_plane_add(size=2, location=(x, 0, 0))
    material = bpy.data.materials.new(image.name)
    material.use_nodes = True
    nodes = material.node_tree.nodes
    emission = nodes.new("ShaderNodeEmission")
    node = nodes.new("ShaderNodeTexImage")
    node.image = image
    material.node_tree.links.new(node.outputs["Color"], emission.inputs["Color"])
    material.node_tree.links.new(emission.outputs[0], nodes["Material Output"].inputs["Surface"])
    bpy.context.object.data.materials.append(material)


def make_scene() -> Path:
    for item in list(bpy.data.objects):
        bpy.data.objects.remove(item)
    project = WORK / "project"
    red = texture(project / "textures" / "red.png", (1.0, 0.0, 0.0))
    green = texture(WORK / "elsewhere" / "green.png", (0.0, 1.0, 0.0))
    textured_plane(red, -1.0)
    textured_plane(green, 1.0)
    bpy.ops.object.camera_add(location=(0, 0, 5))
    camera = bpy.context.object
    camera.data.type = "ORTHO"
    camera.data.ortho_scale = 4.0
    scene = bpy.context.scene
    scene.camera = camera
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 1
    scene.cycles.use_denoising = False
    scene.view_settings.view_transform = "Standard"
    scene.render.resolution_x, scene.render.resolution_y = 40, 20
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = 1, 2
    blend = project / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    red.filepath = "//textures/red.png"
    green.filepath = str(WORK / "elsewhere" / "green.png")
    bpy.ops.wm.save_mainfile()
    return blend


def cancelled_upload() -> str:
    """The upload operator's background path, cancelled as Esc does once sending has begun:
    the error it ends with."""
    operators = importlib.import_module(f"{MODULE}.operators")
    background = importlib.import_module(f"{MODULE}.background")
    scene_info = importlib.import_module(f"{MODULE}.scene_info")
    settings = importlib.import_module(f"{MODULE}.shared.jobs.settings")
    project_service = importlib.import_module(f"{MODULE}.shared.services.project")
    config = settings.farm_config(scene_info.farm_settings(bpy.context))
    project, report = operators.preflight(bpy.context, save=True)
    work = background.BackgroundWork(
        lambda progress: project_service.upload(config, project, report, progress)
    )

    def escape_once_sending(progress: Any) -> None:
        if progress.description.startswith("Uploading"):
            progress.cancel()

    work.progress.on_change = escape_once_sending
    work.start()
    while not work.done:
        time.sleep(0.01)
    return str(work.error)


def phase_submit() -> None:
    install()
    findings["classes"] = sorted(
        name for name in dir(bpy.types) if name.startswith(("BRENDA_OT", "BRENDA_PT", "BRENDA_PG"))
    )
    findings["properties"] = [
        type(bpy.context.scene.brenda).__name__,
        type(bpy.context.window_manager.brenda).__name__,
    ]
    findings["unsaved"] = call("push_job")
    findings["panel_unsaved"] = draw_panel()
    blend = make_scene()
    library = WORK / "elsewhere" / "library.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(library), copy=True)
    with bpy.data.libraries.load(str(library), link=True) as (source, linked):
        linked.materials = source.materials[:1]
    plane = next(item for item in bpy.context.scene.objects if item.type == "MESH")
    plane.data.materials.append(linked.materials[0])  # used, so it is saved
    archive = Path(bpy.app.tempdir) / "brenda" / "shot.tar.gz"
    findings["pack_outside_library"] = call("pack_project")
    with tarfile.open(archive) as bundle:
        findings["archive_with_library"] = sorted(bundle.getnames())
    bpy.data.libraries.remove(bpy.data.libraries[0])
    findings["pack"] = call("pack_project")
    with tarfile.open(archive) as bundle:
        findings["archive"] = sorted(bundle.getnames())
    findings["paths_kept"] = [image.filepath for image in bpy.data.images]
    scene = bpy.context.scene
    scene.brenda.use_scene_range = False
    scene.brenda.frame_start, scene.brenda.frame_end = 5, 3
    findings["bad_range"] = call("push_job")
    scene.brenda.use_scene_range = True
    findings["cancelled_upload"] = cancelled_upload()
    findings["upload"] = call("upload_project")
    findings["ebs"] = [call("build_ebs_volume"), call("snapshot_ebs_volume")]
    state = bpy.context.window_manager.brenda
    scene.brenda.notify = " https://hooks.example.com/brenda "
    findings["push"] = call("push_job")
    kept = state.selected_job
    scene.brenda.notify = ""
    scene.brenda.priority, scene.brenda.video = 3, True
    findings["push_urgent"] = call("push_job")
    scene.brenda.video = False
    urgent = state.selected_job
    scene.brenda.node_count = 2
    scene.brenda.spot_price = 0.25
    findings["launch"] = call("launch_nodes")
    scene.brenda.use_fleet, scene.brenda.budget = True, 40.0
    findings["fleet"] = call("launch_nodes")
    scene.brenda.use_fleet = False
    findings["refresh"] = call("refresh_jobs")
    findings["jobs"] = [
        [item.job_id, item.state, item.priority, item.frames] for item in state.jobs
    ]
    findings["actions"] = [
        call("job_action", job_id=kept, action="raise"),
        call("job_action", job_id=urgent, action="cancel"),
    ]
    findings["kept"], findings["cancelled"] = kept, urgent
    findings["after_actions"] = refreshed_by_the_timer()
    findings["panel_running"] = draw_panel("BRENDA_PT_jobs")
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.endpoint_url = "http://127.0.0.1:9"
    findings["unreachable"] = {name: call(name) for name in ONLINE_OPERATORS}
    findings["panel_error"] = draw_panel()
    prefs.endpoint_url = ENDPOINT
    bpy.context.preferences.system.use_online_access = False
    findings["offline"] = call("push_job")
    bpy.context.preferences.system.use_online_access = True
    findings["blend"] = str(blend)


def refreshed_by_the_timer() -> list[list[Any]]:
    """Run the panel's timer as Blender would until its refresh thread is read and applied."""
    monitor = importlib.import_module(f"{MODULE}.monitor")
    state = bpy.context.window_manager.brenda
    state.jobs.clear()
    monitor.refresh_soon()
    deadline = time.monotonic() + 60
    while not state.jobs and time.monotonic() < deadline:
        time.sleep(monitor.tick())
    return [[item.job_id, item.state, item.priority] for item in state.jobs]


def phase_collect() -> None:
    install()
    bpy.ops.wm.open_mainfile(filepath=str(WORK / "project" / "shot.blend"))
    state = bpy.context.window_manager.brenda
    state.selected_job = KEPT
    findings["refresh"] = call("refresh_jobs")
    findings["jobs"] = [[item.job_id, item.stored, item.frames] for item in state.jobs]
    findings["panel_done"] = draw_panel("BRENDA_PT_jobs")
    latest = next(item.latest.splitlines() for item in state.jobs if item.job_id == KEPT)
    findings["latest"] = [Path(path).name for path in latest]
    monitor = importlib.import_module(f"{MODULE}.monitor")
    findings["thumbnails"] = [list(monitor.thumbnail(path).image_size) for path in latest]
    findings["open"] = call("open_frame", filepath=latest[0])
    findings["opened"] = [
        image.name for image in bpy.data.images if image.name.startswith("frame_")
    ]
    findings["download"] = call("download_frames")
    findings["frames"] = sorted(
        path.name for path in (WORK / "project" / "brenda_frames" / KEPT).iterdir()
    )
    findings["report"] = call("open_report")
    findings["stop"] = call("stop_farm")
    bpy.ops.preferences.addon_disable(module=MODULE)
    findings["unregistered"] = not hasattr(bpy.types.Scene, "brenda") and not any(
        name.startswith("BRENDA_") for name in dir(bpy.types)
    )


def phase_failures() -> None:
    """The Jobs panel of a farm whose job KEPT failed, as its timer reads it in a thread."""
    install()
    bpy.ops.wm.save_as_mainfile(filepath=str(WORK / "looking.blend"))
    bpy.context.window_manager.brenda.selected_job = KEPT
    findings["jobs"] = refreshed_by_the_timer()
    findings["panel"] = draw_panel("BRENDA_PT_jobs")


def sequence_pixels(image: bpy.types.Image, frame: int) -> list[float]:
    """The pixels of the sequence's file frame ``frame``, as Blender reads them through an image
    user (an image texture's, which loads the frame it is set to)."""
    probe = bpy.data.textures.new("probe", "IMAGE")
    probe.image = image
    probe.image_user.frame_duration = 10_000
    probe.image_user.frame_current = frame
    probe.evaluate((0.5, 0.5, 0.0))  # loads that frame, which image.pixels then holds
    bpy.data.textures.remove(probe)
    return list(image.pixels)


def phase_playback() -> None:
    """Play Frames and Open Video of job KEPT with an Image and a Movie Clip Editor open."""
    install()
    (WORK / "looking").mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(WORK / "looking" / "shot.blend"))
    areas = bpy.context.screen.areas
    areas[0].type, areas[1].type = "IMAGE_EDITOR", "CLIP_EDITOR"
    state = bpy.context.window_manager.brenda
    state.selected_job = KEPT
    findings["refresh"] = call("refresh_jobs")
    findings["panel"] = draw_panel("BRENDA_PT_jobs")
    findings["sequence"] = call("open_sequence")
    folder = WORK / "looking" / "brenda_frames" / KEPT
    fetched = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    findings["sequence_again"] = call("open_sequence")
    findings["fetched_once"] = fetched == {
        path.name: path.stat().st_mtime_ns for path in folder.iterdir()
    }
    findings["images"] = [[image.name, image.source] for image in bpy.data.images]
    space = areas[0].spaces.active
    image, user = space.image, space.image_user
    findings["shown"] = image.name
    findings["image_path"] = bpy.path.abspath(image.filepath)
    findings["image_user"] = [user.frame_start, user.frame_offset, user.frame_duration]
    findings["pixels"] = {}
    for frame in (3, 9, 14):
        bpy.context.scene.frame_set(frame)  # the editor's image user follows the scene
        findings["pixels"][frame] = [user.frame_current, sequence_pixels(image, user.frame_current)]
    findings["size"] = list(image.size)
    findings["video"] = call("open_video")
    clip = areas[1].spaces.active.clip
    findings["clip"] = [clip.name, bpy.path.abspath(clip.filepath), clip.frame_duration]
    findings["last_error"] = state.last_error


def phase_no_credentials() -> None:
    install()
    bpy.ops.wm.open_mainfile(filepath=str(WORK / "project" / "shot.blend"))
    bpy.context.window_manager.brenda.selected_job = KEPT
    findings["errors"] = {name: call(name) for name in ONLINE_OPERATORS}


def phase_studio() -> None:
    """Check and pack the studio project made by tests/packing/studio.py in WORK."""
    install()
    bpy.ops.wm.open_mainfile(filepath=str(WORK / "studio" / "shots" / "shot1.blend"))
    scene_info = importlib.import_module(f"{MODULE}.scene_info")
    findings["blend_path"] = scene_info.job_settings(bpy.context).blend_path
    findings["check"] = call("check_project")
    findings["panel"] = draw_panel()
    findings["pack"] = call("pack_project")
    if findings["pack"] != "FINISHED":
        bpy.context.scene.brenda.render_anyway = True
        findings["pack_anyway"] = call("pack_project")
    archive = Path(bpy.app.tempdir) / "brenda" / "shot1.tar.gz"
    if archive.exists():
        shutil.copyfile(archive, WORK / "addon-shot1.tar.gz")


# Two add-ons of the artist's: one keeps settings in the scene (the file uses it), one does not.
TINT_ADDON = """
import bpy
bl_info = {"name": "Brenda tint", "version": (1, 2, 0), "blender": (4, 2, 0)}
class TintSettings(bpy.types.PropertyGroup):
    strength: bpy.props.FloatProperty(default=1.0)
def register():
    bpy.utils.register_class(TintSettings)
    bpy.types.Scene.brenda_tint = bpy.props.PointerProperty(type=TintSettings)
def unregister():
    del bpy.types.Scene.brenda_tint
    bpy.utils.unregister_class(TintSettings)
"""
UNUSED_ADDON = """
bl_info = {"name": "Unused", "version": (0, 1, 0), "blender": (4, 2, 0)}
def register():
    pass
def unregister():
    pass
"""


def phase_addons() -> None:
    """The add-ons the file uses preselected, packed, and the job allowing their Python."""
    install()
    addons = Path(bpy.utils.user_resource("SCRIPTS", path="addons", create=True))
    (addons / "brenda_tint").mkdir(exist_ok=True)
    (addons / "brenda_tint" / "__init__.py").write_text(TINT_ADDON)
    (addons / "unused_addon.py").write_text(UNUSED_ADDON)
    bpy.utils.refresh_script_paths()  # the folder was made after Blender started
    for name in ("brenda_tint", "unused_addon"):
        bpy.ops.preferences.addon_enable(module=name)
    project = WORK / "tinted"
    project.mkdir(exist_ok=True)
    bpy.context.scene.brenda_tint.strength = 2.0
    bpy.ops.wm.save_as_mainfile(filepath=str(project / "tinted.blend"))
    findings["check"] = call("check_project")
    job = bpy.context.scene.brenda
    findings["preselected"] = job.addons
    findings["panel"] = draw_panel()
    findings["pack"] = call("pack_project")
    scene_info = importlib.import_module(f"{MODULE}.scene_info")
    settings = scene_info.job_settings(bpy.context)
    findings["allow_python"] = settings.render_settings().allow_python
    findings["environment"] = [list(item) for item in settings.render.environment.addons]
    archive = Path(bpy.app.tempdir) / "brenda" / "tinted.tar.gz"
    with tarfile.open(archive) as bundle:
        findings["packed"] = sorted(name for name in bundle.getnames() if "addons" in name)
    job.addons = "no_such_addon"
    findings["unknown"] = call("pack_project")


def phase_own_settings() -> None:
    """Upload, push and launch (a fleet, then nodes) with the preferences install() sets, while
    the artist's ~/.brenda.conf and BRENDA_* variables say other things."""
    install()
    make_scene()
    state, job = bpy.context.window_manager.brenda, bpy.context.scene.brenda
    findings["upload"] = call("upload_project")
    findings["push"] = call("push_job")
    findings["job"] = state.selected_job
    job.node_count, job.use_fleet = 2, True
    findings["fleet"] = call("launch_nodes")
    job.use_fleet = False
    findings["launch"] = call("launch_nodes")
    findings["last_error"] = state.last_error


def phase_fleet() -> None:
    """Launch Nodes as a self-sizing fleet of up to 3 spot nodes with a US$ 25 budget."""
    install()
    make_scene()
    job = bpy.context.scene.brenda
    job.node_count, job.use_fleet, job.budget = 3, True, 25.0
    findings["fleet"] = call("launch_nodes")


{
    "submit": phase_submit,
    "own-settings": phase_own_settings,
    "fleet": phase_fleet,
    "addons": phase_addons,
    "collect": phase_collect,
    "no-credentials": phase_no_credentials,
    "failures": phase_failures,
    "playback": phase_playback,
    "studio": phase_studio,
}[PHASE]()
print("FINDINGS " + json.dumps(findings))
