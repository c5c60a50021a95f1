# SPDX-License-Identifier: GPL-3.0-or-later
"""The job's settings on the scene (``Scene.brenda``) and the farm's state on the window manager
(``WindowManager.brenda``), which is runtime only and never saved in the .blend."""

from __future__ import annotations

import bpy

FORMATS = [
    ("PNG", "PNG", "8 or 16 bit PNG"),
    ("OPEN_EXR", "OpenEXR", "Floating-point OpenEXR"),
    ("JPEG", "JPEG", "JPEG"),
    ("TIFF", "TIFF", "TIFF"),
]
DONE_POLICIES = [
    ("shutdown", "Shut Down", "Nodes power off when the queue is done (no idle cost)"),
    ("exit", "Stay Up", "Nodes stop working but keep running (and billing)"),
    ("poll", "Keep Polling", "Nodes wait for more work"),
]


class BRENDA_PG_job(bpy.types.PropertyGroup):
    use_scene_range: bpy.props.BoolProperty(
        name="Scene Frame Range", default=True, description="Render the scene's frame range"
    )
    frame_start: bpy.props.IntProperty(name="Start", default=1, min=0)
    frame_end: bpy.props.IntProperty(name="End", default=250, min=0)
    frame_step: bpy.props.IntProperty(name="Step", default=1, min=1)
    frames_per_task: bpy.props.IntProperty(
        name="Frames per Task", default=1, min=1, description="Multiframe: frames each task renders"
    )
    tiles_x: bpy.props.IntProperty(name="Tiles X", default=0, min=0, description="0: no tiles")
    tiles_y: bpy.props.IntProperty(name="Tiles Y", default=0, min=0, description="0: no tiles")
    file_format: bpy.props.EnumProperty(name="Format", items=FORMATS, default="PNG")
    priority: bpy.props.IntProperty(
        name="Priority", default=0, description="Nodes render higher-priority jobs first"
    )
    notify: bpy.props.StringProperty(
        name="Notify",
        default="",
        description="Where the job's news goes (finished, a task failed on every try, the budget "
        "stopped the fleet, cancelled): sns://TOPIC_ARN of a topic named brenda-FARM-..., or an "
        "https:// webhook; empty: nowhere",
    )
    node_count: bpy.props.IntProperty(name="Nodes", default=4, min=1, max=1000)
    use_spot: bpy.props.BoolProperty(name="Spot", default=True, description="Cheap spot nodes")
    spot_price: bpy.props.FloatProperty(
        name="Max Price",
        default=0.0,
        min=0.0,
        precision=3,
        description="US$ per node-hour; 0: up to the on-demand price",
    )
    done: bpy.props.EnumProperty(name="When Done", items=DONE_POLICIES, default="shutdown")
    use_fleet: bpy.props.BoolProperty(
        name="Self-Sizing Fleet",
        default=False,
        description="Launch an Auto Scaling group of up to Nodes nodes (scale-in never stops a "
        "render) instead of a fixed number of nodes",
    )
    budget: bpy.props.FloatProperty(
        name="Budget",
        default=0.0,
        min=0.0,
        precision=2,
        description="US$ the farm may spend; the fleet then starts no more nodes. 0: no budget",
    )
    video: bpy.props.BoolProperty(
        name="Video of the Shot",
        default=False,
        description="Once the last frame is stored, a node encodes the shot into <job id>.mp4 "
        "beside its frames (H.264, 24 fps)",
    )
    project_root: bpy.props.StringProperty(
        name="Project Root",
        subtype="DIR_PATH",
        description="Folder the packed project's paths are relative to; empty: the nearest "
        "folder above the .blend holding .blender_project, .git or .svn, else the .blend's folder",
    )
    render_anyway: bpy.props.BoolProperty(
        name="Render Anyway",
        default=False,
        description="Pack and render even when files the render reads are missing",
    )
    task_timeout: bpy.props.IntProperty(
        name="Task Timeout (min)",
        default=0,
        min=0,
        max=7 * 24 * 60,
        description="Minutes a task may run before the node stops it as failed; 0: the farm's "
        "TASK_TIMEOUT (6 hours)",
    )
    single_colour: bpy.props.BoolProperty(
        name="Fail One-Colour Frames",
        default=False,
        description="A frame that is one colour all over (no camera, light or material) fails "
        "its task instead of being stored",
    )
    on_mismatch: bpy.props.EnumProperty(
        name="If a Node Differs",
        items=[
            (
                "fail",
                "Fail the Task",
                "A node with another Blender version, without an add-on "
                "or with other colour management fails the task, saying how it differs",
            ),
            ("warn", "Warn and Render", "The node renders anyway and logs how it differs"),
        ],
        default="fail",
    )
    addons: bpy.props.StringProperty(
        name="Add-ons",
        default="",
        description="Add-ons and extensions the scene needs, comma-separated module names: "
        "packed with the project and enabled on the nodes (they are Python: the job then "
        "allows Python). Check Project fills in the enabled ones the file uses",
    )
    addons_chosen: bpy.props.BoolProperty(default=False, options={"HIDDEN"})
    blender_newer_ok: bpy.props.BoolProperty(
        name="Newer Blender OK",
        default=False,
        description="A node without the Blender version that saved this file may render it with "
        "a newer one; off, such a frame fails naming both versions",
    )
    allow_python: bpy.props.BoolProperty(
        name="Allow Python",
        default=False,
        description="Let the nodes run the Python in this file (drivers, registered scripts); "
        "off, a frame whose drivers need Python fails",
    )


class BRENDA_PG_farm_job(bpy.types.PropertyGroup):
    """One of the farm's jobs as the last refresh found it (``shared.services.monitor.JobView``)."""

    job_id: bpy.props.StringProperty(name="Job")
    state: bpy.props.StringProperty(name="State")
    priority: bpy.props.IntProperty(name="Priority")
    frames: bpy.props.IntProperty(name="Frames")
    stored: bpy.props.IntProperty(name="Frames Stored")
    summary: bpy.props.StringProperty(name="Summary", description="Tasks, nodes, cost and ETA")
    latest: bpy.props.StringProperty(
        name="Latest Frames", description="Its newest stored frames on this machine, one a line"
    )
    details: bpy.props.StringProperty(
        name="Details",
        description="The selected job in full as brenda-work show prints it, one line a line: "
        "settings, frames stored, missing and failed, each failed task's last error",
    )


class BRENDA_PG_state(bpy.types.PropertyGroup):
    busy: bpy.props.StringProperty(name="Working On")
    progress: bpy.props.FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")
    uploaded_key: bpy.props.StringProperty(name="Uploaded Project")
    last_error: bpy.props.StringProperty(name="Last Error")
    report: bpy.props.StringProperty(name="Packing Report", description="One line per finding")
    jobs: bpy.props.CollectionProperty(type=BRENDA_PG_farm_job)
    selected_job: bpy.props.StringProperty(
        name="Selected Job", description="The job whose frames the panel shows"
    )
    jobs_read: bpy.props.BoolProperty(name="Jobs Read")
    fleet: bpy.props.StringProperty(
        name="Fleet", description="The farm's self-sizing fleet as the last refresh found it"
    )


classes = (BRENDA_PG_job, BRENDA_PG_farm_job, BRENDA_PG_state)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()
    # Blender adds these properties at run time, which type checkers cannot see.
    job = bpy.props.PointerProperty(type=BRENDA_PG_job)
    state = bpy.props.PointerProperty(type=BRENDA_PG_state)
    bpy.types.Scene.brenda = job  # type: ignore[attr-defined]
    bpy.types.WindowManager.brenda = state  # type: ignore[attr-defined]


def unregister() -> None:
    delattr(bpy.types.WindowManager, "brenda")
    delattr(bpy.types.Scene, "brenda")
    _unregister()
