# SPDX-License-Identifier: GPL-3.0-or-later
"""Brenda's operators (F3 search: "Brenda: ..."), each scriptable as ``bpy.ops.brenda.*``.

Thin glue: copy the scene and preferences into ``shared`` dataclasses, call ``shared``, turn a
``BrendaError`` into one report sentence. ``execute`` is the blocking path (scripts, ``blender
-b``); uploads and downloads run in a thread from ``invoke``, with progress and Esc to cancel.
"""

from __future__ import annotations

import tempfile
import webbrowser
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import bpy

from . import monitor, scene_info
from .background import BackgroundWork
from .shared.core.errors import BrendaError
from .shared.core.progress import Progress
from .shared.core.text import counted
from .shared.jobs.registry import JobAction
from .shared.jobs.settings import farm_config
from .shared.project.content import Upload
from .shared.project.packing import PackReport, human_bytes
from .shared.services import farm as farm_service
from .shared.services import jobs as job_service
from .shared.services import project as project_service
from .shared.services import report as report_service
from .shared.services.farm import FleetOrder
from .shared.services.project import Project

if TYPE_CHECKING:
    from .shared.services import playback

FRAMES_FOLDER = "//brenda_frames"
Result = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]


def archive_path(project: Project) -> Path:
    return Path(bpy.app.tempdir or tempfile.gettempdir()) / "brenda" / f"{project.name}.tar.gz"


def why_not_ready(context: bpy.types.Context, *, online: bool = True) -> str | None:
    if not bpy.data.filepath:
        return "Save the .blend file first"
    if online and not bpy.app.online_access:
        return "Allow online access in Preferences > System to reach AWS"
    missing = scene_info.farm_settings(context).missing()
    if online and missing:
        return f"Set the {', '.join(missing)} in Brenda's add-on preferences"
    return None


def selected_job(context: bpy.types.Context) -> str:
    job_id: str = context.window_manager.brenda.selected_job
    if not job_id:
        raise BrendaError("Select a job in the Brenda Jobs panel first (refresh to list them).")
    return job_id


def job_folder(job_id: str) -> Path:
    """Where the job's frames (and video) go on this machine, next to the .blend."""
    return Path(bpy.path.abspath(FRAMES_FOLDER)) / job_id


class _BrendaOperator(bpy.types.Operator):
    """Shared behaviour: poll explains itself, errors become one report sentence."""

    online: ClassVar[bool] = True

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        reason = why_not_ready(context, online=cls.online)
        if reason is not None:
            cls.poll_message_set(reason)
            return False
        return True

    def run(self, context: bpy.types.Context, action: Callable[[], str]) -> Result:
        state = context.window_manager.brenda
        try:
            message = action()
        except BrendaError as error:
            state.last_error = str(error)
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        self.report({"INFO"}, message)
        return {"FINISHED"}


def preflight(context: bpy.types.Context, *, save: bool) -> tuple[Project, PackReport]:
    """The packing report of the .blend as saved (saved first when ``save``: scripts change data
    without marking the file dirty, so it is always saved), shown in the panel; missing files
    the render reads stop here unless the job renders anyway."""
    state = context.window_manager.brenda
    unsaved = bpy.data.is_dirty
    if save:
        bpy.ops.wm.save_mainfile()
    project = scene_info.project(context)
    report = project_service.check(project)
    lines = report.lines()
    if unsaved and not save:
        lines.append("Unsaved changes are not checked; packing saves the file first")
    state.report = "\n".join(lines)
    project_service.refuse_missing(project, report)
    return project, report


class BRENDA_OT_check_project(_BrendaOperator):
    """List what packing the saved .blend would take along, and what is missing"""

    bl_idname = "brenda.check_project"
    bl_label = "Brenda: Check Project"
    online = False

    def execute(self, context: bpy.types.Context) -> Result:
        def check() -> str:
            job = context.scene.brenda
            if not job.addons_chosen:  # preselected once; the artist edits the list after
                job.addons, job.addons_chosen = ", ".join(scene_info.used_addons()), True
            _, report = preflight(context, save=False)
            return (
                f"{counted(report.files, 'file')} ({human_bytes(report.bytes)}) to pack, "
                f"{len(report.missing)} missing, {len(report.outside)} from outside the root."
            )

        return self.run(context, check)


class BRENDA_OT_pack_project(_BrendaOperator):
    """Save the .blend, then pack it with every file it uses into one project archive"""

    bl_idname = "brenda.pack_project"
    bl_label = "Brenda: Pack Project"
    online = False

    def execute(self, context: bpy.types.Context) -> Result:
        def pack() -> str:
            project, report = preflight(context, save=True)
            return project_service.pack(
                project, archive_path(project), report, Progress()
            ).summary()

        return self.run(context, pack)


class _ModalWork(_BrendaOperator):
    """Runs ``start_work`` in a thread from ``invoke``, showing progress; Esc cancels."""

    _work: BackgroundWork | None = None
    _timer: Any = None

    def start_work(self, context: bpy.types.Context) -> BackgroundWork:
        raise NotImplementedError

    def finish(self, context: bpy.types.Context, result: Any) -> str:
        raise NotImplementedError

    def execute(self, context: bpy.types.Context) -> Result:
        def blocking() -> str:
            background = self.start_work(context)
            return self.finish(context, background.work(background.progress))

        return self.run(context, blocking)

    def invoke(self, context: bpy.types.Context, event: Any) -> Result:
        try:
            self._work = self.start_work(context)
        except BrendaError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        self._work.start()
        state = context.window_manager.brenda
        state.busy, state.progress = self.bl_label, 0.0
        self._timer = context.window_manager.event_timer_add(0.1, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: Any) -> Result:
        assert self._work is not None
        state = context.window_manager.brenda
        if event.type == "ESC":
            self._work.progress.cancel()
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state.progress = self._work.fraction
        for area in context.screen.areas if context.screen else ():
            area.tag_redraw()
        if not self._work.done:
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        state.busy = ""
        if self._work.error is not None:
            state.last_error = str(self._work.error)
            self.report({"ERROR"}, str(self._work.error))
            return {"CANCELLED"}
        self.report({"INFO"}, self.finish(context, self._work.result))
        return {"FINISHED"}


class BRENDA_OT_upload_project(_ModalWork):
    """Pack the project and upload it to the project bucket (Esc cancels)"""

    bl_idname = "brenda.upload_project"
    bl_label = "Brenda: Upload Project"

    def start_work(self, context: bpy.types.Context) -> BackgroundWork:
        farm = scene_info.farm_settings(context)
        project, report = preflight(context, save=True)
        return BackgroundWork(
            lambda progress: project_service.upload(farm_config(farm), project, report, progress)
        )

    def finish(self, context: bpy.types.Context, result: Any) -> str:
        sent: Upload = result
        context.window_manager.brenda.uploaded_key = sent.manifest_url.rsplit("/", 1)[-1]
        return (
            f"Uploaded the project: sent {sent.sent_files} of {counted(sent.files, 'file')}, "
            f"{human_bytes(sent.sent_bytes)} of {human_bytes(sent.bytes)}."
        )


class BRENDA_OT_push_job(_ModalWork):
    """Make a job of the uploaded project: the farm's nodes render it by priority (Esc cancels)"""

    bl_idname = "brenda.push_job"
    bl_label = "Brenda: Push Job"

    def start_work(self, context: bpy.types.Context) -> BackgroundWork:
        farm, job = scene_info.farm_settings(context), scene_info.job_settings(context)
        job.frames()  # a bad frame range is refused here, before any thread starts
        return BackgroundWork(
            lambda progress: job_service.submit_scene(farm_config(farm, job), job, progress)
        )

    def finish(self, context: bpy.types.Context, result: Any) -> str:
        context.window_manager.brenda.selected_job = result.id
        monitor.refresh_soon()
        return f"Pushed job {result.id}."


class BRENDA_OT_launch_nodes(_BrendaOperator):
    """Launch the render nodes (spot or on-demand, as set in the Brenda panel)"""

    bl_idname = "brenda.launch_nodes"
    bl_label = "Brenda: Launch Nodes"

    spot_prices: ClassVar[str] = ""
    gpu_offers: ClassVar[list[str]] = []

    def invoke(self, context: bpy.types.Context, event: Any) -> Result:
        try:
            farm, job = scene_info.farm_settings(context), scene_info.job_settings(context)
            prices = farm_service.launch_prices(farm_config(farm, job), None, job.render.device)
        except BrendaError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        type(self).spot_prices = (
            f"Spot price now: US$ {prices.spot:.4f}/hour"
            if prices.spot is not None
            else "No spot price known"
        )
        type(self).gpu_offers = [
            f"{offer.instance_type}: spot US$ {offer.spot:.4f}, on-demand US$ {offer.on_demand}"
            if offer.spot is not None
            else f"{offer.instance_type}: no spot price, on-demand US$ {offer.on_demand}"
            for offer in prices.gpu_offers
        ]
        return context.window_manager.invoke_props_dialog(self)

    def draw(self, context: bpy.types.Context) -> None:
        job = context.scene.brenda
        self.layout.label(text=self.spot_prices)
        if self.gpu_offers:
            device = scene_info.render_device(context)
            self.layout.label(
                text=f"The scene renders on {device}: set a GPU instance type in the "
                "preferences, or its tasks fail on these nodes",
                icon="ERROR",
            )
            for offer in self.gpu_offers:
                self.layout.label(text=offer)
        market = "spot" if job.use_spot else "on-demand"
        if job.use_fleet:
            budget = f", stopping at US$ {job.budget:.2f} spent" if job.budget else ""
            self.layout.label(
                text=f"Make a self-sizing fleet of up to {job.node_count} {market} nodes{budget}?"
            )
        else:
            self.layout.label(text=f"Launch {job.node_count} {market} nodes?")

    def execute(self, context: bpy.types.Context) -> Result:
        def launch() -> str:
            farm, job = scene_info.farm_settings(context), scene_info.job_settings(context)
            config, order = farm_config(farm, job), scene_info.launch_order(job)
            if isinstance(order, FleetOrder):
                return farm_service.start_fleet(config, order)
            return farm_service.start_nodes(config, order)

        return self.run(context, launch)


class BRENDA_OT_refresh_jobs(_BrendaOperator):
    """Read the farm's jobs now: progress, cost, the newest frames of the selected job and why
    its failed frames failed"""

    bl_idname = "brenda.refresh_jobs"
    bl_label = "Brenda: Refresh Jobs"

    def execute(self, context: bpy.types.Context) -> Result:
        farm = scene_info.farm_settings(context)

        def refresh() -> str:
            read = monitor.read_farm(farm, context.window_manager.brenda.selected_job, Progress())
            monitor.apply(context.window_manager.brenda, read)
            return f"{len(read.jobs)} jobs on farm {farm.farm}."

        return self.run(context, refresh)


JOB_ACTIONS = [
    (JobAction.PAUSE.value, "Pause", "Hand out no more of its tasks"),
    (JobAction.RESUME.value, "Resume", "Hand out its tasks again"),
    (JobAction.CANCEL.value, "Cancel", "Delete its tasks; nodes stop its running ones"),
    (JobAction.RETRY.value, "Retry", "Put its failed (dead-lettered) tasks back to work"),
    (
        JobAction.MISSING.value,
        "Render Missing",
        "Queue the frames that are not stored, or stored empty, once the job holds no task",
    ),
    ("raise", "Raise Priority", "Render it before jobs of lower priority"),
    ("lower", "Lower Priority", "Let jobs of higher priority go first"),
]


class BRENDA_OT_job_action(_BrendaOperator):
    """Pause, resume, cancel, retry, re-render missing frames of, or reprioritise a job"""

    bl_idname = "brenda.job_action"
    bl_label = "Brenda: Job Action"

    job_id: bpy.props.StringProperty(name="Job")
    action: bpy.props.EnumProperty(name="Action", items=JOB_ACTIONS)

    @classmethod
    def description(cls, context: bpy.types.Context, properties: Any) -> str:
        return next(text for name, _, text in JOB_ACTIONS if name == properties.action)

    def invoke(self, context: bpy.types.Context, event: Any) -> Result:
        if self.action == JobAction.CANCEL:
            return context.window_manager.invoke_confirm(self, event)
        return self.execute(context)

    def execute(self, context: bpy.types.Context) -> Result:
        farm, job_id, action = scene_info.farm_settings(context), self.job_id, self.action
        shown = {view.job_id: view for view in context.window_manager.brenda.jobs}
        priority = shown[job_id].priority if job_id in shown else 0

        def act() -> str:
            config = farm_config(farm)
            if action in ("raise", "lower"):
                moved = priority + (1 if action == "raise" else -1)
                message = job_service.control(config, job_id, JobAction.PRIORITY, priority=moved)
            else:
                message = job_service.control(config, job_id, JobAction(action))
            monitor.refresh_soon()
            return message

        return self.run(context, act)


class BRENDA_OT_select_job(bpy.types.Operator):
    """Show this job's newest frames"""

    bl_idname = "brenda.select_job"
    bl_label = "Brenda: Select Job"

    job_id: bpy.props.StringProperty(name="Job")

    def execute(self, context: bpy.types.Context) -> Result:
        context.window_manager.brenda.selected_job = self.job_id
        monitor.refresh_soon()
        return {"FINISHED"}


class BRENDA_OT_open_frame(bpy.types.Operator):
    """Open this frame in the Image Editor"""

    bl_idname = "brenda.open_frame"
    bl_label = "Brenda: Open Frame"

    filepath: bpy.props.StringProperty(name="Frame", subtype="FILE_PATH")

    def execute(self, context: bpy.types.Context) -> Result:
        return show_image(self, context, Path(self.filepath))


def show_image(operator: bpy.types.Operator, context: bpy.types.Context, path: Path) -> Result:
    """Load ``path`` as an image and show it in every Image Editor."""
    if not path.is_file():
        operator.report({"ERROR"}, f"{path} is not on this machine any more: refresh the jobs.")
        return {"CANCELLED"}
    image = bpy.data.images.load(str(path), check_existing=True)
    image.reload()
    shown = editors(context, "IMAGE_EDITOR")
    for area in shown:
        area.spaces.active.image = image
    where = "in the Image Editor" if shown else f"as image '{image.name}' (open an Image Editor)"
    operator.report({"INFO"}, f"{path.name} is shown {where}.")
    return {"FINISHED"}


class BRENDA_OT_download_frames(_ModalWork):
    """Download the selected job's stored frames next to the .blend and show the latest one"""

    bl_idname = "brenda.download_frames"
    bl_label = "Brenda: Download Frames"

    def start_work(self, context: bpy.types.Context) -> BackgroundWork:
        farm, job_id = scene_info.farm_settings(context), selected_job(context)
        folder = job_folder(job_id)
        return BackgroundWork(lambda progress: monitor.download(farm, job_id, folder, progress))

    def finish(self, context: bpy.types.Context, result: Any) -> str:
        paths: list[Path] = result
        if not paths:
            return "No frames are stored yet."
        show_image(self, context, paths[-1])
        return f"Downloaded {len(paths)} frames to {paths[-1].parent}."


def editors(context: bpy.types.Context, kind: str) -> list[Any]:
    """The open areas of ``kind`` (``IMAGE_EDITOR``, ``CLIP_EDITOR``) in the current screen."""
    return [area for area in (context.screen.areas if context.screen else ()) if area.type == kind]


def show_sequence(context: bpy.types.Context, frames: playback.LocalFrames) -> str:
    """Load the frames as one image sequence, named after the job, and play it in every Image
    Editor from the job's first frame to its last at the scene's frames of the same numbers."""
    first, last = frames.numbers[0], frames.numbers[-1]
    image = bpy.data.images.load(str(frames.paths[0]), check_existing=True)
    image.source = "SEQUENCE"
    image.name = frames.job
    image.reload()  # frames fetched since it was loaded last
    shown = editors(context, "IMAGE_EDITOR")
    for area in shown:
        space = area.spaces.active
        space.image = image
        user = space.image_user
        # Scene frame N shows the job's frame N (file frame = frame - start + 1 + offset).
        user.frame_start, user.frame_offset = first, first - 1
        user.frame_duration = last - first + 1
    where = "in the Image Editor" if shown else f"as image '{image.name}' (open an Image Editor)"
    gaps = " (frames not stored show empty)" if len(frames.numbers) < last - first + 1 else ""
    played = f"Frame {first} plays" if first == last else f"Frames {first}-{last} play"
    return f"{played} {where}{gaps}: {frames.summary()}."


def _playback() -> ModuleType:
    """The frames' and video's use cases: they read images with OpenImageIO, which Blender's
    Python holds from 4.4 (the add-on itself loads without it)."""
    try:
        from .shared.services import playback  # noqa: PLC0415 - lazy OpenImageIO

    except ImportError as error:
        raise BrendaError(
            f"Playing a job's frames needs Blender 4.4 or newer ({error}); 'brenda-work video "
            "JOB' makes its video on the command line."
        ) from error
    return playback


class BRENDA_OT_open_sequence(_ModalWork):
    """Fetch the selected job's stored frames next to the .blend (each once) and play them as an
    image sequence in the Image Editor (Esc cancels)"""

    bl_idname = "brenda.open_sequence"
    bl_label = "Brenda: Play Frames"

    def start_work(self, context: bpy.types.Context) -> BackgroundWork:
        farm, job_id = scene_info.farm_settings(context), selected_job(context)
        folder, fetch = job_folder(job_id), _playback().fetch_frames
        return BackgroundWork(lambda progress: fetch(farm_config(farm), job_id, folder, progress))

    def finish(self, context: bpy.types.Context, result: Any) -> str:
        return show_sequence(context, result)


class BRENDA_OT_open_video(_ModalWork):
    """Open the selected job's video as a movie clip: the farm's own encode when it stored one,
    else made here from its stored frames at the scene's frame rate (Esc cancels)"""

    bl_idname = "brenda.open_video"
    bl_label = "Brenda: Open Video"

    def start_work(self, context: bpy.types.Context) -> BackgroundWork:
        farm, job_id = scene_info.farm_settings(context), selected_job(context)
        folder = job_folder(job_id)
        render = context.scene.render
        fps = Fraction(render.fps / render.fps_base).limit_denominator(1001)  # 23.976: 24000/1001
        fetch_video = _playback().fetch_video
        return BackgroundWork(
            lambda progress: fetch_video(farm_config(farm), job_id, folder, progress, fps=fps)
        )

    def finish(self, context: bpy.types.Context, result: Any) -> str:
        video: playback.LocalVideo = result
        clip = bpy.data.movieclips.load(str(video.path), check_existing=True)
        shown = editors(context, "CLIP_EDITOR")
        for area in shown:
            area.spaces.active.clip = clip
        where = "in the Movie Clip Editor" if shown else f"as movie clip '{clip.name}'"
        return f"{video.summary()} It is open {where}, {clip.frame_duration} frames."


class BRENDA_OT_open_report(_ModalWork):
    """Write the selected job's report (frames, time and cost, nodes, failures) and open it in
    the web browser (Esc cancels)"""

    bl_idname = "brenda.open_report"
    bl_label = "Brenda: Open Report"

    def start_work(self, context: bpy.types.Context) -> BackgroundWork:
        farm, job_id = scene_info.farm_settings(context), selected_job(context)
        target = Path(bpy.app.tempdir or tempfile.gettempdir()) / "brenda" / f"{job_id}.html"
        return BackgroundWork(
            lambda progress: report_service.write_job_report(
                farm_config(farm), job_id, target, progress
            )
        )

    def finish(self, context: bpy.types.Context, result: Any) -> str:
        written: report_service.WrittenReport = result
        # webbrowser rather than wm.url_open: it says whether a browser took the page.
        if webbrowser.open(written.path.as_uri()):
            return f"Opened the report of job {written.job} in the web browser."
        return f"No web browser opened; the report of job {written.job} is {written.path}."


class BRENDA_OT_build_ebs_volume(_BrendaOperator):
    """Start a helper that copies the uploaded project onto a new EBS volume, then powers off"""

    bl_idname = "brenda.build_ebs_volume"
    bl_label = "Brenda: Build EBS Volume"

    size_gb: bpy.props.IntProperty(name="Size (GB)", default=0, min=0, description="0: automatic")

    def execute(self, context: bpy.types.Context) -> Result:
        def build() -> str:
            farm, job = scene_info.farm_settings(context), scene_info.job_settings(context)
            # The helper copies the project archive: packed and uploaded for it.
            project, report = preflight(context, save=True)
            return project_service.fill_volume(
                farm_config(farm, job),
                project,
                report,
                archive_path(project),
                bucket=farm.project_bucket,
                key=job.project_key(),
                size=self.size_gb or None,
                image=farm.ami or None,
            )

        return self.run(context, build)


class BRENDA_OT_snapshot_ebs_volume(_BrendaOperator):
    """Snapshot the volume the EBS helper filled, named after the .blend (ebs://NAME)"""

    bl_idname = "brenda.snapshot_ebs_volume"
    bl_label = "Brenda: Snapshot EBS Volume"

    def execute(self, context: bpy.types.Context) -> Result:
        def snapshot() -> str:
            farm, job = scene_info.farm_settings(context), scene_info.job_settings(context)
            return project_service.snapshot_volume(farm_config(farm, job), job.job_name)

        return self.run(context, snapshot)


class BRENDA_OT_stop_farm(_BrendaOperator):
    """Terminate the farm's nodes and cancel its spot requests (its jobs stay)"""

    bl_idname = "brenda.stop_farm"
    bl_label = "Brenda: Stop Farm"

    def invoke(self, context: bpy.types.Context, event: Any) -> Result:
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context: bpy.types.Context) -> Result:
        def stop() -> str:
            stopped = farm_service.stop(
                farm_config(scene_info.farm_settings(context)),
                terminate=True,
                reason="stopped from Blender",
                cancel_requests=True,
            )
            return (
                f"Terminated {len(stopped.nodes)} nodes, cancelled {len(stopped.cancelled)} spot "
                "requests; the jobs stay for the next nodes."
            )

        return self.run(context, stop)


classes = (
    BRENDA_OT_check_project,
    BRENDA_OT_pack_project,
    BRENDA_OT_upload_project,
    BRENDA_OT_push_job,
    BRENDA_OT_launch_nodes,
    BRENDA_OT_refresh_jobs,
    BRENDA_OT_job_action,
    BRENDA_OT_select_job,
    BRENDA_OT_open_frame,
    BRENDA_OT_download_frames,
    BRENDA_OT_open_sequence,
    BRENDA_OT_open_video,
    BRENDA_OT_open_report,
    BRENDA_OT_build_ebs_volume,
    BRENDA_OT_snapshot_ebs_volume,
    BRENDA_OT_stop_farm,
)
register, unregister = bpy.utils.register_classes_factory(classes)
