# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-work submit`` against moto's server: what it refuses before a node pays for it (a
project, .blend or scene that is not there), what an interrupted submit leaves (nothing, or a
job that ``jobs`` lists and ``cancel`` removes), and its progress bar."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from shared.cli.work import main as brenda_work
from shared.core.config import load_config
from shared.core.errors import Cancelled, UsageError
from shared.core.progress import Progress
from shared.core.urls import S3Url, parse_url
from shared.jobs.registry import JobRegistry, JobState, make_job, serving_order
from shared.jobs.settings import JobSettings
from shared.project.content import (
    ContentStore,
    HashCache,
    ProjectVersion,
    folder_files,
    pointer_name,
    send_project,
)
from shared.services import jobs as job_service
from shared.tasks.task import RenderSettings
from tests.node.conftest import make_sample_blend


@pytest.fixture(scope="module")
def sample_blend(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real .blend (bpy's), one scene named Scene, frames 1-3."""
    folder = tmp_path_factory.mktemp("sample")
    return make_sample_blend(folder / "scene.blend", width=16, height=9, samples=1, frames=3)


@pytest.fixture
def farm_env(aws: str, monkeypatch: pytest.MonkeyPatch, boto_client: Any) -> None:
    boto_client("s3").create_bucket(Bucket="studio")
    for key, value in {
        "FARM": "studio",
        "FARM_OUTPUTS": "s3://studio/frames/",
        "FARM_PROJECTS": "s3://studio/projects/",
    }.items():
        monkeypatch.setenv(f"BRENDA_{key}", value)


def work(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> tuple[str, str]:
    assert brenda_work(list(argv)) == code, capsys.readouterr()
    return capsys.readouterr()


def left_behind(boto_client: Any) -> tuple[list[str], list[str]]:
    """The farm's job queues and job records."""
    queues = boto_client("sqs").list_queues(QueueNamePrefix="studio-job-").get("QueueUrls", [])
    listing = boto_client("s3").list_objects_v2(Bucket="studio", Prefix="frames/.brenda/jobs/")
    return queues, [item["Key"] for item in listing.get("Contents", [])]


def test_submit_refuses_a_project_blend_or_scene_that_is_not_there_and_leaves_nothing(
    farm_env: None,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    tmp_path: Path,
    sample_blend: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = tmp_path / "shot"
    (project / "shots").mkdir(parents=True)
    (project / "textures").mkdir()
    (project / "textures" / "wood.png").write_bytes(b"png" * 1000)
    # Stored in three 4 MiB blocks (Blender reads up to its end block and no further).
    with (project / "shots" / "shot1.blend").open("wb") as blend:
        blend.write(sample_blend.read_bytes() + bytes(9 << 20))
    shutil.copyfile(sample_blend, project / "main.blend")
    store = ContentStore(boto_client("s3"), S3Url("studio", "projects/"))
    version = send_project(
        store, list(folder_files(project)), HashCache(tmp_path / "hashes"), Progress(), pointer="s"
    ).manifest_url
    archive = tmp_path / "shot.tar.gz"
    with tarfile.open(archive, "w:gz") as bundle:
        bundle.add(project, "shot")
    boto_client("s3").upload_file(str(archive), "studio", "projects/shot.tar.gz")
    tarball = "s3://studio/projects/shot.tar.gz"
    # Only the .blend is fetched from an uploaded version: the rest may be anywhere.
    manifest = store.read_manifest(ProjectVersion.at(parse_url(version, allowed=("s3",))))
    assert manifest is not None and manifest.files[1].blocks  # shots/shot1.blend, in blocks
    texture = next(entry for entry in manifest.files if entry.path == "textures/wood.png")
    boto_client("s3").delete_object(Bucket="studio", Key=store.key(texture.hash))

    missing = version.replace(version.rsplit("/", 1)[1], "0" * 64 + ".json")
    refused = {
        ("--project", missing): f"The project version {missing} does not exist",
        ("--project", "s3://studio/projects/gone.tar.gz"): "The project "
        "s3://studio/projects/gone.tar.gz does not exist.",
        ("--project", version, "--blend", "shots/shot2.blend"): f"The project {version} has no "
        "shots/shot2.blend.",
        ("--project", tarball, "--blend", "main2.blend"): f"The project {tarball} has no "
        "main2.blend.",
        ("--project", version, "--blend", "shots/shot1.blend", "--scene", "Shot"): "shots/"
        "shot1.blend has no scene 'Shot' (its scenes: Scene).",
        ("--project", tarball, "--scene", "scene"): "main.blend has no scene 'scene' (its "
        "scenes: Scene).",
        # A farm with a project store takes only its own: these go to one without.
        ("--project", f"file://{tmp_path}/nowhere"): f"The project file://{tmp_path}/nowhere "
        "does not exist.",
        ("--project", f"file://{project}", "--blend", "shot1.blend"): f"The project "
        f"file://{project} has no shot1.blend.",
        ("--project", f"file://{project}", "--scene", "Nope"): "main.blend has no scene 'Nope' "
        "(its scenes: Scene).",
    }
    for argv, sentence in refused.items():
        if argv[1].startswith("file://"):
            monkeypatch.delenv("BRENDA_FARM_PROJECTS", raising=False)
        for dry_run in ((), ("--dry-run",)):
            _, err = work(capsys, *argv, *dry_run, "--frames", "1-6", "submit", code=2)
            assert err.startswith(f"brenda-work: {sentence}"), err
            assert len(err.splitlines()) == 1, err
    assert left_behind(boto_client) == ([], [])

    monkeypatch.setenv("BRENDA_FARM_PROJECTS", "s3://studio/projects/")
    for argv in (
        ("--project", version, "--blend", "shots/shot1.blend", "--scene", "Scene"),
        ("--project", tarball, "--blend", "shots/shot1.blend"),
        ("--project", tarball, "--scene", "Scene"),
        ("--project", f"file://{project}", "--scene", "Scene"),
        ("--project", f"file://{archive}"),
    ):
        if argv[1].startswith("file://"):
            monkeypatch.delenv("BRENDA_FARM_PROJECTS", raising=False)
        out, _ = work(capsys, *argv, "--frames", "1-2", "submit")
        assert re.match(r"Submitted job \S+: 2 tasks", out), out
    # Each names the Blender that saved the .blend (the bpy wheel's, 4.5).
    jobs = JobRegistry(load_config()).jobs()
    assert [job.settings.blender for job in jobs] == ["4.5"] * 5


SECOND_SCENE = """\
import sys
import bpy
source, target = sys.argv[sys.argv.index("--") + 1 :]
bpy.ops.wm.open_mainfile(filepath=source)
scene = bpy.data.scenes.new("Shot B")
scene.frame_start, scene.frame_end = 10, 12
bpy.ops.wm.save_as_mainfile(filepath=target)
"""


def folder_project(folder: Path, blend: Path) -> Path:
    folder.mkdir()
    shutil.copyfile(blend, folder / "scene.blend")
    return folder


def test_an_interrupted_submit_leaves_no_queue_and_no_record(
    farm_env: None,
    boto_client: Any,
    tmp_path: Path,
    sample_blend: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BRENDA_FARM_PROJECTS")
    project = folder_project(tmp_path / "shot", sample_blend)
    config = load_config()
    job = make_job(config, project=f"file://{project}", frames="1-300", settings=RenderSettings())
    seen: list[tuple[list[tuple[str, str]], list[str], list[str]]] = []

    once = threading.Lock()  # the sending threads each report progress

    def interrupt_midway(progress: Progress) -> None:
        if progress.total and progress.done >= 100 and once.acquire(blocking=False):
            jobs = JobRegistry(config).jobs()
            served = [job.id for job in serving_order(jobs, 0)]
            table = job_service.job_table(config).lines()
            seen.append(([(job.id, job.state) for job in jobs], served, table))
            raise KeyboardInterrupt  # Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        job_service.submit(config, job, Progress(on_change=interrupt_midway))
    [(listed, served, table)] = seen
    # While it was sent, the job was listed, submitting, and no node served it.
    assert listed == [(job.id, JobState.SUBMITTING)]
    assert served == []
    assert re.match(rf"^{job.id}\s+submitting\s", table[1]), table
    assert left_behind(boto_client) == ([], [])

    # Esc in the add-on: the send stops with Cancelled, a BrendaError, and is undone the same.
    def cancel_midway(progress: Progress) -> None:
        if progress.total and progress.done >= 100:
            progress.cancel()

    cancelling = Progress(on_change=cancel_midway)
    with pytest.raises(Cancelled):
        again = make_job(config, project=job.project, frames="1-300", settings=job.settings)
        job_service.submit(config, again, cancelling)
    assert left_behind(boto_client) == ([], [])


def test_a_submit_killed_midway_leaves_a_job_that_jobs_lists_and_cancel_removes(
    farm_env: None,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sample_blend: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BRENDA_FARM_PROJECTS")
    project = folder_project(tmp_path / "shot", sample_blend)
    sqs = boto_client("sqs")

    def submit_until_tasks_are_queued() -> subprocess.Popen[bytes]:
        argv = ["--project", f"file://{project}", "--frames", "1-3000", "submit"]
        process = subprocess.Popen([sys.executable, "-m", "shared.cli.work", *argv])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            urls = [u for u in left_behind(boto_client)[0] if not u.endswith("-dead")]
            if urls:
                counts = sqs.get_queue_attributes(
                    QueueUrl=urls[0], AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]
                if int(counts["ApproximateNumberOfMessages"]) > 0:
                    return process
            time.sleep(0.05)
        process.kill()
        raise AssertionError("the submit queued no task")

    # Ctrl-C: the submit removes what it made.
    interrupted = submit_until_tasks_are_queued()
    interrupted.send_signal(signal.SIGINT)
    assert interrupted.wait(timeout=60) == 130
    assert left_behind(boto_client) == ([], [])
    # Killed (no chance to undo): its job is listed as submitting, and cancel removes its queues.
    killed = submit_until_tasks_are_queued()
    killed.kill()
    killed.wait()
    out, _ = work(capsys, "jobs")
    match = re.search(r"^(\S+)\s+submitting\s", out, re.M)
    assert match, out
    _, err = work(capsys, "resume", match.group(1), code=2)
    assert "is still being submitted, or its submit was interrupted: cancel it" in err
    work(capsys, "cancel", match.group(1))
    queues, records = left_behind(boto_client)
    assert queues == [] and len(records) == 1  # kept, cancelled, as every cancelled job is


def test_submit_shows_its_progress_up_to_the_task_count(
    farm_env: None,
    capsys: pytest.CaptureFixture[str],
    boto_client: Any,
    tmp_path: Path,
    sample_blend: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # stderr is a terminal of 80 columns
    monkeypatch.setenv("COLUMNS", "80")
    project = folder_project(tmp_path / "shot", sample_blend)
    store = ContentStore(boto_client("s3"), S3Url("studio", "projects/"))
    files, cache = list(folder_files(project)), HashCache(tmp_path / "hashes")
    version = send_project(store, files, cache, Progress(), pointer="shot").manifest_url
    out, err = work(capsys, "--project", version, "--frames", "1-300", "submit")
    assert re.match(r"Submitted job \S+: 300 tasks", out)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err).split("\n")
    # The .blend fetched from the content store, then the tasks sent, each to its end.
    size = sample_blend.stat().st_size
    assert re.search(
        rf"^Fetching scene\.blend ━+ {size}/{size} bytes 100%", shown[0].split("\r")[-1]
    )
    assert re.search(r"━+ 300/300 tasks 100%", shown[1].split("\r")[-1]), repr(err[-500:])


def test_push_job_refuses_a_scene_that_the_uploaded_blend_lacks(
    farm_env: None, boto_client: Any, tmp_path: Path, sample_blend: Path
) -> None:
    """The add-on's Push Job submits through the same service as ``brenda-work submit``."""
    project = folder_project(tmp_path / "shot", sample_blend)
    store = ContentStore(boto_client("s3"), S3Url("studio", "projects/"))
    files, cache = list(folder_files(project)), HashCache(tmp_path / "hashes")
    send_project(store, files, cache, Progress(), pointer=pointer_name("shot", "scene.blend"))
    config = load_config()

    def scene_job(scene: str) -> JobSettings:
        render = RenderSettings(blend="scene.blend", scene=scene)
        return JobSettings("shot", render, 1, 2, 1, 1, 0, 0, 1, False, 0.0, "exit")

    with pytest.raises(
        UsageError, match=r"^scene\.blend has no scene 'Shot' \(its scenes: Scene\)"
    ):
        job_service.submit_scene(config, scene_job("Shot"))
    assert left_behind(boto_client) == ([], [])
    made = job_service.submit_scene(config, scene_job("Scene"))
    assert (made.tasks, made.state, made.settings.blender) == (2, JobState.ACTIVE, "4.5")


def test_submit_without_frames_renders_the_scenes_frame_range(
    farm_env: None,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sample_blend: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BRENDA_FARM_PROJECTS")
    project = f"file://{folder_project(tmp_path / 'shot', sample_blend)}"
    out, _ = work(capsys, "--project", project, "submit")
    assert re.match(r"Submitted job \S+: 3 tasks", out), out  # the scene's frames 1-3
    out, _ = work(capsys, "--project", project, "-s", "2", "submit")
    assert re.match(r"Submitted job \S+: 2 tasks", out), out
    # A zip of a folder holding a .blend of two scenes: each scene's own range.
    two = tmp_path / "two" / "shot.blend"
    two.parent.mkdir()
    script = tmp_path / "second_scene.py"
    script.write_text(SECOND_SCENE)
    host = [sys.executable, "-m", "brenda_node.bpy_host", "-b", "--python", str(script)]
    subprocess.run([*host, "--", str(sample_blend), str(two)], check=True, capture_output=True)
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as bundle:
        bundle.write(two, "two/shot.blend")
    zipped = f"file://{tmp_path / 'two.zip'}"
    out, _ = work(capsys, "--project", zipped, "--scene", "Shot B", "submit")
    assert re.match(r"Submitted job \S+: 3 tasks", out), out
    _, err = work(capsys, "--project", zipped, "--scene", "Shot C", "submit", code=2)
    assert err == "brenda-work: shot.blend has no scene 'Shot C' (its scenes: Scene, Shot B).\n"
    jobs = JobRegistry(load_config()).jobs()
    assert [job.frames for job in jobs] == ["10-12", "2-3", "1-3"]
    unreadable = tmp_path / "unreadable"
    unreadable.mkdir()
    (unreadable / "scene.blend").write_bytes(b"")
    _, err = work(capsys, "--project", f"file://{unreadable}", "submit", code=2)
    assert err == (
        "brenda-work: The last frame is missing, and the .blend's frame range cannot be read "
        "here: give -e N (or a frame list with --frames).\n"
    )
