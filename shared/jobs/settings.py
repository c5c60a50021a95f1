# SPDX-License-Identifier: GPL-3.0-or-later
"""A render job as the Blender add-on describes it, and the farm it talks to. No bpy module use.

The add-on copies its preferences and the scene's settings into these frozen dataclasses on the
main thread (``brenda_addon/scene_info.py``); everything after that, in any thread, works on
them: the settings become a ``Config`` like ``~/.brenda.conf`` gives the CLIs (from these
settings alone: the add-on reads neither that file nor ``BRENDA_*``), the job becomes a
farm job (``shared.jobs.registry``) of the packed project (``packing``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from ..core.config import Config, given_config
from ..core.errors import BrendaError
from ..project.packing import Addon
from ..tasks.task import FrameRange, RenderSettings
from .registry import Job, make_job

PROJECT_PREFIX = "projects/"
OUTPUT_PREFIX = "frames/"


@dataclass(frozen=True)
class FarmSettings:
    """The add-on's preferences: where the farm lives. Empty text means "not set"."""

    profile: str = ""
    region: str = ""
    endpoint_url: str = ""
    project_bucket: str = ""
    output_bucket: str = ""
    farm: str = ""
    instance_type: str = ""
    ami: str = ""
    key_name: str = ""

    def missing(self) -> list[str]:
        labels = {
            "project_bucket": "project bucket",
            "output_bucket": "output bucket",
            "farm": "farm name",
        }
        return [label for name, label in labels.items() if not getattr(self, name)]


@dataclass(frozen=True)
class JobSettings:
    """A scene's render job."""

    project: str
    """The project's name (its root folder's): with the .blend, it keys the latest upload."""
    render: RenderSettings
    """What its tasks render: the .blend (relative to the project root, POSIX:
    ``shots/shot1.blend``), scene, format and checks; the Blender version is read at submit."""
    frame_start: int
    frame_end: int
    frame_step: int
    frames_per_task: int
    tiles_x: int
    tiles_y: int
    node_count: int
    spot: bool
    spot_price: float
    done: str
    priority: int = 0
    notify: str = ""
    """Where the job's notifications go (``shared.jobs.notify``); empty: nowhere."""
    fleet: bool = False
    """Launch a self-sizing fleet (an Auto Scaling group) rather than fixed nodes."""
    budget: float = 0.0
    """US$ the fleet may spend; 0: no budget."""
    addons: tuple[Addon, ...] = ()
    """Add-ons packed with the project and enabled on the nodes: the job runs their Python."""
    video: bool = False
    """The farm encodes the shot once its last frame is stored (``submit --video``)."""

    @property
    def blend_path(self) -> str:
        """The .blend to render, relative to the project root."""
        if self.render.blend is None:
            raise BrendaError("The job names no .blend file to render.")
        return self.render.blend

    @property
    def job_name(self) -> str:
        return PurePosixPath(self.blend_path).stem

    def project_key(self) -> str:
        return f"{PROJECT_PREFIX}{self.job_name}.tar.gz"

    def frames(self) -> FrameRange:
        return FrameRange(self.frame_start, self.frame_end, self.frame_step)

    def render_settings(self, blender: str | None = None) -> RenderSettings:
        """The tasks' settings, for a .blend saved by Blender ``blender``; packed add-ons run
        their Python, so they allow it."""
        allow_python = self.render.allow_python or bool(self.addons)
        return replace(self.render, blender=blender, allow_python=allow_python)

    def farm_job(self, config: Config, project: str) -> Job:
        """The farm job that renders this scene from ``project`` (an uploaded version's URL),
        not yet submitted (submitting reads its Blender version from the uploaded .blend)."""
        return make_job(
            config,
            project=project,
            frames=str(self.frames()),
            settings=self.render_settings(),
            chunk=self.frames_per_task,
            tiles=(self.tiles_x, self.tiles_y),
            priority=self.priority,
            video=self.video,
            notify=self.notify,
        )


def farm_config(farm: FarmSettings, job: JobSettings | None = None) -> Config:
    """The settings the CLIs would read, made from the add-on's preferences (and a job) alone:
    the artist's ``~/.brenda.conf`` and ``BRENDA_*`` variables are the command line's, not the
    add-on's. Nodes the add-on launches have no WORK_QUEUE: they serve every job of the farm."""
    if farm.missing():
        raise BrendaError(
            f"Set the {', '.join(farm.missing())} in Brenda's add-on preferences first."
        )
    values = {
        "FARM": farm.farm,
        "INSTANCE_TYPE": farm.instance_type,
        "AMI_ID": farm.ami,
        "SSH_KEY_NAME": farm.key_name,
        "AWS_PROFILE": farm.profile,
        "ENDPOINT_URL": farm.endpoint_url,
        "S3_REGION": farm.region,
        "SQS_REGION": farm.region,
        "EC2_REGION": farm.region,
        "FARM_PROJECTS": f"s3://{farm.project_bucket}/{PROJECT_PREFIX}",
        "FARM_OUTPUTS": f"s3://{farm.output_bucket}/{OUTPUT_PREFIX}",
    }
    if job is not None:
        values["DONE"] = job.done
        if job.spot and job.spot_price > 0:
            values["BID_PRICE"] = str(job.spot_price)
    given = {key: value for key, value in values.items() if value}
    return given_config(given, set_in="Brenda's add-on preferences")
