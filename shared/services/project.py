# SPDX-License-Identifier: GPL-3.0-or-later
"""Projects: check what packing a .blend takes along, pack it into one archive, upload it to the
farm's content store. No bpy module use.

``brenda pack`` and ``brenda upload``, the demo, and the add-on's Check, Pack and Upload Project
(and Build EBS Volume) call these; the buckets they write to are made here, private, when they
do not exist yet.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..aws import s3
from ..aws.session import cloud_errors, make_client, make_session, region_for
from ..core.config import Config
from ..core.errors import BrendaError
from ..core.progress import Progress
from ..core.urls import S3Url
from ..farm import ebs
from ..project import packing
from ..project.content import (
    ContentStore,
    HashCache,
    Upload,
    default_hash_cache,
    folder_files,
    pointer_name,
    send_project,
)
from ..project.packing import Addon, PackReport


@dataclass(frozen=True)
class Project:
    """A .blend to pack, and what goes with it."""

    blend: Path
    root: Path | None = None
    """The project root; None: the nearest folder marked as one, else the .blend's folder."""
    addons: tuple[Addon, ...] = ()
    """Add-ons packed as ``addons/NAME`` and enabled on the nodes."""
    render_anyway: bool = False
    """Pack even when files the render reads are missing."""

    @property
    def name(self) -> str:
        """What its archive and its jobs are named after: the .blend's name."""
        return self.blend.stem


def check(project: Project, progress: Progress | None = None) -> PackReport:
    """The preflight report: what packing the project would take along, what is missing and
    what comes from outside its root. Writes nothing."""
    return packing.inspect(
        project.blend, root=project.root, progress=progress, addons=project.addons
    )


def refuse_missing(
    project: Project, report: PackReport, render_anyway: str = packing.RENDER_ANYWAY
) -> None:
    """Stop with one sentence when files the render reads are missing, unless the project
    renders anyway; ``render_anyway`` says how, as the interface asks for it."""
    if not project.render_anyway:
        packing.refuse_missing(report, render_anyway)


def pack(
    project: Project, archive: Path, report: PackReport, progress: Progress | None = None
) -> PackReport:
    """Write the project ``archive`` (tar.gz); ``report`` is its check."""
    return packing.pack(
        project.blend,
        archive,
        root=report.root,
        render_anyway=project.render_anyway,
        progress=progress,
        report=report,
        addons=project.addons,
    )


def ensure_bucket(config: Config, bucket: str) -> None:
    """Make the (private) bucket if it does not exist yet."""
    with cloud_errors(f"preparing the bucket s3://{bucket}"):
        client = make_client("s3", config)
        s3.ensure_bucket(client, bucket, region_for("s3", config, make_session(config)))


def project_store(config: Config) -> ContentStore:
    """The farm's content store (FARM_PROJECTS), its bucket made if needed."""
    projects = config.url("FARM_PROJECTS", S3Url)
    ensure_bucket(config, projects.bucket)
    with cloud_errors(f"connecting to {projects}"):
        return ContentStore(make_client("s3", config), projects)


def upload(
    config: Config,
    project: Project,
    report: PackReport,
    progress: Progress,
    cache: HashCache | None = None,
) -> Upload:
    """Pack the project as files and send what the farm's content store lacks; the pointer of
    its .blend in its project (the root folder's name) then names this version, which the
    .blend's next job renders. ``report`` is its check; ``cache`` keeps the files' hashes
    between uploads."""
    with tempfile.TemporaryDirectory(prefix="brenda-upload-") as folder:
        _, files = packing.stage(
            project.blend,
            Path(folder),
            root=report.root,
            render_anyway=project.render_anyway,
            progress=progress,
            report=report,
            addons=project.addons,
        )
        return send_project(
            project_store(config),
            files,
            cache or default_hash_cache(),
            progress,
            pointer=pointer_name(report.root.name, report.blend),
        )


def upload_folder(
    config: Config, folder: Path, progress: Progress, cache: HashCache | None = None
) -> Upload:
    """Send a project folder, as it is, to the farm's content store (its pointer named after
    the folder)."""
    files = list(folder_files(folder))
    return send_project(
        project_store(config),
        files,
        cache or default_hash_cache(),
        progress,
        pointer=pointer_name(folder.resolve().name),
    )


def upload_archive(
    config: Config, archive: Path, bucket: str, key: str, progress: Progress | None = None
) -> str:
    """Upload a project archive as ``key`` of ``bucket``, the bucket made if needed; returns
    its URL."""
    ensure_bucket(config, bucket)
    with cloud_errors(f"uploading the project to s3://{bucket}"):
        s3.upload_file(make_client("s3", config), archive, bucket, key, progress)
    return f"s3://{bucket}/{key}"


def latest_version(config: Config, project: str, blend: str | None = None) -> str:
    """The URL of the newest uploaded version of ``blend`` (its path in the project; None: the
    whole project folder) in ``project`` (its root folder's name)."""
    projects = config.url("FARM_PROJECTS", S3Url)
    with cloud_errors(f"looking for the uploaded project in {projects}"):
        version = ContentStore(make_client("s3", config), projects).latest(
            pointer_name(project, blend)
        )
    if version is None:
        what = f"{blend} of project {project}" if blend else f"Project {project}"
        raise BrendaError(
            f"{what} has not been uploaded to {projects}: upload it first (Brenda: Upload "
            "Project, or brenda upload)."
        )
    return version


def volume_size(archive: Path) -> int:
    """Room for the unpacked project, in GB: four times its archive, at least 1."""
    return max(1, math.ceil(archive.stat().st_size * 4 / 2**30))


def fill_volume(
    config: Config,
    project: Project,
    report: PackReport,
    archive: Path,
    *,
    bucket: str,
    key: str,
    size: int | None = None,
    image: str | None = None,
    progress: Progress | None = None,
) -> str:
    """Pack the project, upload its archive and start a helper that copies it onto a new EBS
    volume of ``size`` GB (None: room for it) and powers off; returns what happened."""
    pack(project, archive, report, progress)
    source = upload_archive(config, archive, bucket, key, progress)
    size = size or volume_size(archive)
    plan = ebs.plan_helper(
        config,
        existing=False,
        image=image,
        size=size,
        snapshot=None,
        instance_type=None,
        zone=None,
        mount=True,
        fill_from=source,
    )
    instance, _ = ebs.start_helper(config, plan)
    return (
        f"Helper {instance} is copying the project onto a {size} GB volume; snapshot the "
        "volume once the helper has powered off."
    )


def snapshot_volume(config: Config, name: str) -> str:
    """Snapshot the volume the helper filled as ``name``; returns what happened."""
    snapshot = ebs.snapshot_helper_volume(config, name)
    return f"Snapshot {snapshot} started: use BLENDER_PROJECT=ebs://{name}."
