# SPDX-License-Identifier: GPL-3.0-or-later
"""The Blender add-on in real Blender (the bpy wheel): the built zip installed as an extension,
every operator run against moto's server, a real node rendering what the add-on packed (both
textures present), failure paths as one sentence, and a clean unregister."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from OpenImageIO import FLOAT, ImageBuf

from shared.cli.run import main as brenda_run
from shared.cli.work import main as brenda_work
from tests.cli.test_video_cli import as_png_pixels, encoded_file, frame_image
from tests.conftest import make_studio
from tests.node.conftest import (
    Farm,
    farm,  # noqa: F401  (the local farm fixture)
    make_sample_blend,
)
from tests.node.test_packed_projects import frame_task, pixels

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).with_name("scenario.py")
RUN_CLI = "import sys; from shared.cli.run import main; sys.exit(main())"


@pytest.fixture(scope="module")
def extension_zip() -> Path:
    subprocess.run([sys.executable, "build.py"], cwd=ROOT, check=True, capture_output=True)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return next((ROOT / "dist").glob(f"brenda-*-python{python}.zip"))


def run_phase(
    phase: str,
    zip_path: Path,
    work: Path,
    endpoint: str,
    *job: str,
    python: Path | None = None,
    **environ: str,
) -> Any:
    """The scenario's ``phase`` in the Blender (bpy) of ``python``, by default this one's."""
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(work / "blender-user"), **environ}
    command = [str(python or sys.executable), str(SCENARIO), phase, str(zip_path), str(work)]
    result = subprocess.run(
        [*command, endpoint, *job],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("FINDINGS ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("FINDINGS "))


def init_farm() -> None:
    """``brenda-run init`` for the farm the scenario's preferences name."""
    init = {
        "BRENDA_FARM": "addon",
        # What the add-on's jobs use: projects/NAME.tar.gz and frames/NAME/ (see the README).
        "BRENDA_FARM_PROJECTS": "s3://addon-projects/projects/",
        "BRENDA_FARM_OUTPUTS": "s3://addon-frames/frames/",
        "BRENDA_SSH_FROM": "203.0.113.7/32",
    }
    result = subprocess.run(
        [sys.executable, "-c", RUN_CLI, "--no-ssh-keys", "init"],
        env={**os.environ, **init},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_add_on_runs_a_job_end_to_end(
    aws: str, boto_client: Any, extension_zip: Path, tmp_path: Path
) -> None:
    init_farm()
    found = run_phase("submit", extension_zip, tmp_path, aws)
    assert found["classes"] == [
        "BRENDA_OT_build_ebs_volume",
        "BRENDA_OT_check_project",
        "BRENDA_OT_download_frames",
        "BRENDA_OT_job_action",
        "BRENDA_OT_launch_nodes",
        "BRENDA_OT_open_frame",
        "BRENDA_OT_open_report",
        "BRENDA_OT_open_sequence",
        "BRENDA_OT_open_video",
        "BRENDA_OT_pack_project",
        "BRENDA_OT_push_job",
        "BRENDA_OT_refresh_jobs",
        "BRENDA_OT_select_job",
        "BRENDA_OT_snapshot_ebs_volume",
        "BRENDA_OT_stop_farm",
        "BRENDA_OT_upload_project",
        "BRENDA_PT_farm",
        "BRENDA_PT_jobs",
    ]
    assert found["properties"] == ["BRENDA_PG_job", "BRENDA_PG_state"]
    assert (
        found["unsaved"]
        == "error: Operator bpy.ops.brenda.push_job.poll() Save the .blend file first"
    )
    assert "Save the .blend file first" in found["panel_unsaved"]
    outside = f"_outside_project/{str(tmp_path).lstrip('/')}/elsewhere"
    assert found["pack_outside_library"] == "FINISHED"
    assert f"{outside}/library.blend" in found["archive_with_library"]
    assert found["pack"] == "FINISHED"
    assert found["archive"] == [
        f"{outside}/green.png",
        "pack-info.txt",
        "shot.blend",
        "textures/red.png",
    ]
    assert "//textures/red.png" in found["paths_kept"]
    assert found["bad_range"] == "error: Error: End frame 3 is before start frame 5.\n"
    assert (found["upload"], found["push"], found["push_urgent"]) == ("FINISHED",) * 3
    assert (found["launch"], found["refresh"], found["fleet"]) == ("FINISHED",) * 3
    [group] = boto_client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["brenda-addon"]
    )["AutoScalingGroups"]
    assert (group["MinSize"], group["MaxSize"]) == (0, 2)
    assert {tag["Key"]: tag["Value"] for tag in group["Tags"]}["brenda:budget"] == "40.00"
    overrides = group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]
    assert [item["InstanceType"] for item in overrides] == ["c7i.2xlarge"]
    assert found["ebs"] == ["FINISHED", "FINISHED"]
    # Esc while sending: nothing half-made is named; the next upload sends what is left.
    assert found["cancelled_upload"] == "Uploading 4 files and blocks was cancelled."
    ec2 = boto_client("ec2")
    [helper] = ec2.describe_volumes(
        Filters=[{"Name": "tag:brenda:role", "Values": ["ebs-helper"]}]
    )["Volumes"]
    [snapshot] = ec2.describe_snapshots(Filters=[{"Name": "tag:Name", "Values": ["shot"]}])[
        "Snapshots"
    ]
    assert snapshot["VolumeId"] == helper["VolumeId"]
    # Two jobs of the shot, the urgent one newest; the panel's actions reach the farm, and the
    # panel's timer (a thread reading the farm, applied on the main thread) shows their effect.
    kept, urgent = found["kept"], found["cancelled"]
    assert kept.startswith("shot-") and urgent.startswith("shot-") and kept != urgent
    assert found["jobs"] == [[urgent, "active", 3, 2], [kept, "active", 0, 2]]
    record = boto_client("s3").get_object(
        Bucket="addon-frames", Key=f"frames/.brenda/jobs/{kept}.json"
    )
    document = json.loads(record["Body"].read())
    assert document["notify"] == "https://hooks.example.com/brenda"  # the Notify field's
    assert "video" not in document
    urgent_record = boto_client("s3").get_object(
        Bucket="addon-frames", Key=f"frames/.brenda/jobs/{urgent}.json"
    )
    assert json.loads(urgent_record["Body"].read())["video"] is True  # "Video of the Shot"
    # The job renders the version uploaded, by content: a later upload does not change it.
    assert document["project"].startswith("s3://addon-projects/projects/manifests/")
    settings = document["settings"]
    assert settings["device"] == "CPU"  # the scene renders on the CPU
    environment = settings["environment"]
    assert (environment["blender"], environment["view"], environment["ocio"]) == (
        "4.5",
        "Standard",
        "builtin",
    )
    assert environment["on_mismatch"] == "fail"
    assert not any(name.endswith(".brenda") for name, _ in environment["addons"])
    assert found["actions"] == ["FINISHED", "FINISHED"]
    assert found["after_actions"] == [[urgent, "cancelled", 3], [kept, "active", 1]]
    panel = found["panel_running"]
    assert "progress 0.00 0 / 2 frames" in panel
    assert (
        "2 waiting, 0 rendering, 0 failed; 0 nodes; $0.00 so far, - a frame, - in all; ETA -"
        in panel
    )
    assert "  action=pause" in panel and "  action=resume" not in panel
    # The panel shows the fleet, which follows the job left active (the other is cancelled).
    assert "Fleet brenda-addon: 0 wanted (at most 2), 0 running, 0 starting" in panel
    assert "spot interruptions so far: 0" in panel
    [policy] = boto_client("autoscaling").describe_policies(AutoScalingGroupName="brenda-addon")[
        "ScalingPolicies"
    ]
    metrics = policy["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]["Metrics"]
    assert [item["MetricStat"]["Metric"]["Dimensions"][0]["Value"] for item in metrics[:-2]] == [
        f"addon-job-{kept}",
        f"addon-job-{kept}",
    ]
    for operator, outcome in found["unreachable"].items():
        assert outcome.startswith("error: Error: Could not reach"), operator
        assert outcome.count("\n") == 1, operator
    assert any(line.startswith("Could not reach") for line in found["panel_error"])
    assert found["offline"].endswith("Allow online access in Preferences > System to reach AWS")

    # A node as Launch Nodes starts one: no queue of its own, every job of farm "addon".
    node_env = {
        **os.environ,
        "BRENDA_FARM": "addon",
        "BRENDA_FARM_PROJECTS": "s3://addon-projects/projects/",
        "BRENDA_FARM_OUTPUTS": "s3://addon-frames/frames/",
        "BRENDA_RUNNING_ON_EC2": "0",
        "BRENDA_RECEIVE_WAIT": "1",
        "BRENDA_WORK_DIR": str(tmp_path / "node"),
    }
    node = subprocess.run(
        [sys.executable, "-m", "shared.cli.node"],
        env=node_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert node.returncode == 0, node.stderr[-3000:]

    # Open Report's browser: records the page it was given, and keeps a copy of it.
    browser = tmp_path / "browser.sh"
    browser.write_text(
        f'#!/bin/sh\nprintf %s "$1" > {tmp_path}/opened.txt\n'
        f'cp "${{1#file://}}" {tmp_path}/report.html\n'
    )
    browser.chmod(0o755)
    found = run_phase("collect", extension_zip, tmp_path, aws, kept, BROWSER=str(browser))
    assert found["refresh"] == "FINISHED"
    assert found["jobs"] == [[urgent, 0, 2], [kept, 2, 2]]
    panel = found["panel_done"]
    assert "progress 1.00 2 / 2 frames" in panel
    summary = "0 waiting, 0 rendering, 0 failed; 0 nodes; $0.00 so far, $0.00 a frame, "
    assert f"{summary}$0.00 in all; ETA -" in panel
    assert panel.count("thumbnail") == 2
    assert sorted(found["latest"]) == ["frame_000001.png", "frame_000002.png"]
    assert found["thumbnails"] == [[40, 20], [40, 20]]  # the frames themselves, as rendered
    assert (found["open"], found["opened"]) == ("FINISHED", [found["latest"][0]])
    assert found["download"] == "FINISHED"
    assert found["frames"] == ["frame_000001.png", "frame_000002.png"]
    # Open Report: the page of the job the node rendered, opened in the browser from a file.
    assert found["report"] == "FINISHED"
    assert (tmp_path / "opened.txt").read_text().startswith("file:///")
    page = (tmp_path / "report.html").read_text()
    assert page.count('<img class="thumbnail" src="data:image/png;base64,') == 2
    assert page.count('class="render-bar"') == 2 and 'class="stored-area"' in page
    assert "<td>-</td><td>local</td>" in page and "No task failed." in page
    assert not re.search(r"https?://", page)
    # Where the job's news goes, its webhook's host alone: a webhook's path often is its secret.
    assert "<th>notify</th><td>a webhook at hooks.example.com</td>" in page
    assert found["stop"] == "FINISHED"
    assert found["unregistered"] is True

    frame = ImageBuf(str(tmp_path / "project" / "brenda_frames" / kept / "frame_000001.png"))
    pixels = frame.get_pixels(FLOAT)
    left, right = pixels[10, 10, :3], pixels[10, 30, :3]
    assert left[0] > 0.5 and left[1] < 0.2, left  # the red texture, by a relative path
    assert right[1] > 0.5 and right[0] < 0.2, right  # the green one, by an absolute path
    assert np.isfinite(pixels).all()

    found = run_phase(
        "no-credentials",
        extension_zip,
        tmp_path,
        aws,
        kept,
        AWS_ACCESS_KEY_ID="",
        AWS_SECRET_ACCESS_KEY="",
    )
    for operator, outcome in found["errors"].items():
        assert outcome.startswith("error: Error: No AWS credentials were found"), operator
        assert outcome.count("\n") == 1, operator


def user_data(boto_client: Any, group: str) -> str:
    [version] = boto_client("ec2").describe_launch_template_versions(LaunchTemplateName=group)[
        "LaunchTemplateVersions"
    ]
    return base64.b64decode(version["LaunchTemplateData"]["UserData"]).decode()


def followed_queues(boto_client: Any, group: str) -> list[str]:
    """The queues the group's target-tracking policy counts."""
    [policy] = boto_client("autoscaling").describe_policies(AutoScalingGroupName=group)[
        "ScalingPolicies"
    ]
    metrics = policy["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]["Metrics"]
    return sorted(
        {
            dimension["Value"]
            for item in metrics
            if "MetricStat" in item
            for dimension in item["MetricStat"]["Metric"]["Dimensions"]
            if dimension["Name"] == "QueueName"
        }
    )


def test_the_add_on_ignores_the_command_lines_brenda_conf_and_brenda_variables(
    aws: str,
    boto_client: Any,
    extension_zip: Path,
    tmp_path: Path,
    isolated_environment: Path,
) -> None:
    init_farm()
    # A command-line user's settings: a queue and project of their own, and a profile that
    # does not exist here (boto3 would refuse it): none of them is the add-on's.
    (isolated_environment / ".brenda.conf").write_text(
        "WORK_QUEUE=sqs://cli-queue\n"
        "BLENDER_PROJECT=s3://cli-projects/shot.tar.gz\n"
        "RENDER_OUTPUT=s3://cli-frames/shot\n"
        "AWS_PROFILE=cli-only-profile\n"
        "EC2_REGION=eu-west-1\n"
        "AMI_ID=ami-0c1c1c1c1c1c1c1c1\n"
    )
    found = run_phase(
        "own-settings", extension_zip, tmp_path, aws, BRENDA_WORK_QUEUE="sqs://cli-env-queue"
    )
    # The preferences do not start from the file either.
    assert found["preferences_installed"] == {
        "profile": "",
        "region": "",
        "farm": "brenda",
        "ami": "",
    }
    assert (found["upload"], found["push"]) == ("FINISHED", "FINISHED"), found["last_error"]
    assert (found["fleet"], found["launch"]) == ("FINISHED", "FINISHED"), found["last_error"]
    job = found["job"]
    assert job.startswith("shot-")
    boto_client("s3").head_object(Bucket="addon-frames", Key=f"frames/.brenda/jobs/{job}.json")
    queues = [
        url.rsplit("/", 1)[-1] for url in boto_client("sqs").list_queues().get("QueueUrls", [])
    ]
    assert "cli-queue" not in queues and "cli-env-queue" not in queues
    # The fleet and the nodes serve the farm's jobs: no queue or project of the CLI's.
    assert followed_queues(boto_client, "brenda-addon") == [f"addon-job-{job}"]
    boots = [user_data(boto_client, "brenda-addon")]
    ec2 = boto_client("ec2")
    nodes = [
        item["InstanceId"]
        for reservation in ec2.describe_instances()["Reservations"]
        for item in reservation["Instances"]
    ]
    assert len(nodes) == 2
    for node in nodes:
        attribute = ec2.describe_instance_attribute(InstanceId=node, Attribute="userData")
        boots.append(base64.b64decode(attribute["UserData"]["Value"]).decode())
    for boot in boots:
        assert 'BRENDA_FARM_OUTPUTS="s3://addon-frames/frames/"' in boot
        assert 'BRENDA_EC2_REGION="us-east-1"' in boot
        assert "BRENDA_WORK_QUEUE=" not in boot and "BRENDA_BLENDER_PROJECT=" not in boot
        assert "cli-" not in boot
    images = {
        item["ImageId"]
        for reservation in ec2.describe_instances()["Reservations"]
        for item in reservation["Instances"]
    }
    assert images == {"ami-12c6146b"}


UNNAMED = {
    "AutoScalingGroupARN",
    "CreatedTime",
    "CreateTime",
    "LaunchTemplateId",
    "PolicyARN",
    "Alarms",
    "ResourceId",
    "VersionNumber",
    "DefaultVersion",
}
"""What names, numbers or dates a made resource rather than describing it."""


def unnamed(value: Any) -> Any:
    """``value`` without the keys in ``UNNAMED``, at any depth."""
    if isinstance(value, dict):
        return {key: unnamed(item) for key, item in value.items() if key not in UNNAMED}
    if isinstance(value, list):
        return [unnamed(item) for item in value]
    return value


def fleet_as_made(boto_client: Any, group: str) -> dict[str, Any]:
    """The farm's Auto Scaling group, launch template, policy and hooks as AWS holds them."""
    scaling = boto_client("autoscaling")
    [described] = scaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ]
    [version] = boto_client("ec2").describe_launch_template_versions(LaunchTemplateName=group)[
        "LaunchTemplateVersions"
    ]
    return unnamed(
        {
            "group": described,
            "template": version,
            "policies": scaling.describe_policies(AutoScalingGroupName=group)["ScalingPolicies"],
            "hooks": scaling.describe_lifecycle_hooks(AutoScalingGroupName=group)["LifecycleHooks"],
        }
    )


def test_launch_nodes_and_brenda_run_fleet_make_the_same_fleet_from_the_same_settings(
    aws: str,
    boto_client: Any,
    extension_zip: Path,
    tmp_path: Path,
    isolated_environment: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    init_farm()
    found = run_phase("fleet", extension_zip, tmp_path, aws)
    assert found["fleet"] == "FINISHED"
    from_blender = fleet_as_made(boto_client, "brenda-addon")
    boto_client("autoscaling").delete_auto_scaling_group(
        AutoScalingGroupName="brenda-addon", ForceDelete=True
    )
    boto_client("ec2").delete_launch_template(LaunchTemplateName="brenda-addon")

    # The command line, given in ~/.brenda.conf what the add-on's preferences and scene say.
    (isolated_environment / ".brenda.conf").write_text(
        "FARM=addon\n"
        "FARM_PROJECTS=s3://addon-projects/projects/\n"
        "FARM_OUTPUTS=s3://addon-frames/frames/\n"
        "AMI_ID=ami-12c6146b\n"
        "INSTANCE_TYPE=c7i.2xlarge\n"
        "SSH_KEY_NAME=brenda\n"
        "S3_REGION=us-east-1\n"
        "SQS_REGION=us-east-1\n"
        "EC2_REGION=us-east-1\n"
        "DONE=shutdown\n"
    )
    assert brenda_run(["-N", "3", "--budget", "25", "fleet"]) == 0, capsys.readouterr().err
    from_command_line = fleet_as_made(boto_client, "brenda-addon")
    assert from_command_line == from_blender
    group = from_blender["group"]
    assert (group["MinSize"], group["MaxSize"]) == (0, 3)
    assert {tag["Key"]: tag["Value"] for tag in group["Tags"]}["brenda:budget"] == "25.00"


def test_the_add_on_packs_a_studio_project_that_renders_like_the_original(
    extension_zip: Path,
    farm: Farm,  # noqa: F811
    tmp_path: Path,
) -> None:
    # A studio of its own: Blender saves the file it packs, and writes caches when it opens it.
    studio = make_studio(tmp_path / "studio")
    found = run_phase("studio", extension_zip, studio.work, "http://127.0.0.1:9")
    assert found["blend_path"] == "shots/shot1.blend"
    assert found["check"] == "FINISHED"
    root, outside = studio.sources
    assert f"Project root: {root}" in found["panel"]
    assert f"From outside the root: {outside}/paint.png" in found["panel"]
    assert (
        f"Absolute path made relative: {root}/textures/inside.png (image 'inside.png' in "
        "shots/shot1.blend)"
    ) in found["panel"]
    assert "button brenda.check_project" in found["panel"]
    assert found["pack"] == "FINISHED"

    archive = studio.work / "addon-shot1.tar.gz"
    output = tmp_path / "frames"
    farm.settings.update(BLENDER_PROJECT=f"file://{archive}", RENDER_OUTPUT=f"file://{output}")
    farm.push([frame_task(2)])
    with studio.moved_away():
        assert farm.start_node("a").wait(timeout=240) == 0, farm.console("a")
    rendered, original = pixels(output / "frame_000002.png"), pixels(studio.reference)
    assert np.abs(rendered - original).max() <= 1 / 255


def test_the_add_ons_a_file_uses_are_preselected_and_packed_and_their_job_allows_python(
    extension_zip: Path, tmp_path: Path
) -> None:
    found = run_phase("addons", extension_zip, tmp_path, "http://127.0.0.1:9")
    assert found["check"] == "FINISHED"
    assert found["preselected"] == "brenda_tint"  # unused_addon keeps nothing in the file
    assert "Add-ons are Python: this job allows Python" in found["panel"]
    assert (
        "Add-on brenda_tint, packed as addons/brenda_tint: the job runs its Python"
        in (found["panel"])
    )
    assert found["pack"] == "FINISHED"
    assert found["packed"] == ["addons/brenda_tint/__init__.py"]
    assert found["allow_python"] is True
    assert found["environment"] == [["brenda_tint", "1.2.0"]]
    assert found["unknown"] == (
        "error: Error: The add-on no_such_addon is not enabled in this Blender: enable it, or "
        "take it off the job's Add-ons.\n"
    )


def test_the_add_on_shows_missing_files_and_packs_only_when_told_to_render_anyway(
    extension_zip: Path, tmp_path: Path
) -> None:
    broken_studio = make_studio(tmp_path / "studio", "--missing-texture")
    found = run_phase("studio", extension_zip, broken_studio.work, "http://127.0.0.1:9")
    root = broken_studio.sources[0]
    users = "image 'inside.png' in shots/shot1.blend, image 'inside.png.001' in shots/shot1.blend"
    refusal = (
        f"error: Error: 1 file the render reads is missing: {root}/textures/inside.png "
        f"({users}). Put them back, or pack with 'render anyway' to render without them.\n"
    )
    assert (found["check"], found["pack"]) == (refusal, refusal)
    assert f"Missing: {root}/textures/inside.png ({users})" in found["panel"]
    assert found["pack_anyway"] == "FINISHED"


def test_the_jobs_panel_shows_why_the_selected_jobs_frames_failed(
    aws: str,
    boto_client: Any,
    extension_zip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3 = boto_client("s3")
    for bucket in ("addon-projects", "addon-frames"):
        s3.create_bucket(Bucket=bucket)
    settings = {
        "FARM": "addon",
        "FARM_PROJECTS": "s3://addon-projects/projects/",
        "FARM_OUTPUTS": "s3://addon-frames/frames/",
        "MAX_RECEIVE_COUNT": "1",
    }
    for key, value in settings.items():
        monkeypatch.setenv(f"BRENDA_{key}", value)
    blend = make_sample_blend(tmp_path / "shot.blend", width=16, height=9, samples=1, frames=2)
    with tarfile.open(tmp_path / "shot.tar.gz", "w:gz") as archive:
        archive.add(blend, "shot.blend")
    s3.upload_file(str(tmp_path / "shot.tar.gz"), "addon-projects", "projects/shot.tar.gz")
    project = "s3://addon-projects/projects/shot.tar.gz"
    assert brenda_work(["--project", project, "--frames", "1-2", "submit"]) == 0
    job = re.findall(r"Submitted job (\S+):", capsys.readouterr().out)[0]
    s3.delete_object(Bucket="addon-projects", Key="projects/shot.tar.gz")  # gone after submit
    node_env = {
        "BRENDA_RUNNING_ON_EC2": "0",
        "BRENDA_RECEIVE_WAIT": "1",
        "BRENDA_ERROR_PAUSE": "0",
        "BRENDA_POLL_PAUSE": "1",
        "BRENDA_WORK_DIR": str(tmp_path / "node"),
    }
    node = subprocess.run(
        [sys.executable, "-m", "shared.cli.node"],
        env={**os.environ, **node_env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert node.returncode == 0, node.stderr[-3000:]

    found = run_phase("failures", extension_zip, tmp_path, aws, job)
    assert found["jobs"] == [[job, "active", 0]]
    panel = found["panel"]
    assert f"project  {project}" in panel
    assert "stored   0 of 2 frames" in panel and "failed   2: 1-2" in panel
    for frame in (1, 2):
        [line] = [line for line in panel if line.startswith(f"frames {frame}, ")]
        assert line.startswith(f"frames {frame}, dead-lettered: Task {job} frames {frame} could ")
        assert "projects/shot.tar.gz" in line, line


def test_play_frames_and_open_video_load_the_jobs_frames_as_a_sequence_and_a_movie_clip(
    aws: str,
    boto_client: Any,
    extension_zip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3 = boto_client("s3")
    for bucket in ("addon-projects", "addon-frames"):
        s3.create_bucket(Bucket=bucket)
    settings = {
        "FARM": "addon",
        "FARM_PROJECTS": "s3://addon-projects/projects/",
        "FARM_OUTPUTS": "s3://addon-frames/frames/",
    }
    for key, value in settings.items():
        monkeypatch.setenv(f"BRENDA_{key}", value)
    (tmp_path / "shot.blend").write_bytes(b"")  # rendered by no node: the frames are written
    with tarfile.open(tmp_path / "shot.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "shot.blend", "shot.blend")
    s3.upload_file(str(tmp_path / "shot.tar.gz"), "addon-projects", "projects/shot.tar.gz")
    project = "s3://addon-projects/projects/shot.tar.gz"
    assert brenda_work(["--project", project, "--frames", "3-14", "submit"]) == 0
    job = re.findall(r"Submitted job (\S+):", capsys.readouterr().out)[0]
    # Twelve frames unlike each other, stored as nodes store them.
    images = {number: frame_image(number - 2, 32, 18) for number in range(3, 15)}
    for number, image in images.items():
        body = encoded_file(image, tmp_path / "frame.png")
        key = f"frames/{job}/frame_{number:06d}.png"
        s3.put_object(Bucket="addon-frames", Key=key, Body=body)

    found = run_phase("playback", extension_zip, tmp_path, aws, job)
    assert found["refresh"] == "FINISHED"
    assert "button brenda.open_sequence" in found["panel"]
    assert "button brenda.open_video" in found["panel"]
    assert (found["sequence"], found["sequence_again"]) == ("FINISHED", "FINISHED")
    assert found["fetched_once"] is True
    assert [job, "SEQUENCE"] in found["images"]
    folder = tmp_path / "looking" / "brenda_frames" / job
    assert found["shown"] == job
    assert found["image_path"] == str(folder / "frame_000003.png")
    # Scene frame N shows the job's frame N: 12 frames from frame 3.
    assert found["image_user"] == [3, 2, 12]
    assert found["size"] == [32, 18]
    for frame, (shown, read_back) in found["pixels"].items():
        assert shown == int(frame)
        # Blender's rows run bottom up, RGBA in 0..1.
        read = np.array(read_back).reshape(18, 32, 4)[::-1, :, :3]
        assert np.array_equal(np.rint(read * 255), as_png_pixels(images[int(frame)])), frame
    assert found["video"] == "FINISHED", found["last_error"]
    assert found["clip"] == [f"{job}.mp4", str(folder / f"{job}.mp4"), 12]
