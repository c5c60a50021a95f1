# SPDX-License-Identifier: GPL-3.0-or-later
"""A node of the farm's jobs believes no manifest it has not checked: hostile project versions
(crafted by a task, which holds the node's credentials) are refused without writing anything,
and an honest job after them renders its own bytes."""

from __future__ import annotations

import hashlib
import struct
import sys
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shared.jobs.registry import Job, JobRegistry, make_job
from shared.project.content import Entry, Manifest
from shared.tasks.task import RenderSettings
from tests.node.conftest import Farm, wait_for

# Renders a frame holding the bytes of the .blend it opened: what the project gave it.
FAKE_BLENDER = """
import json, shutil, sys
if sys.argv[1:] == ["--version"]:
    print("Blender 4.5.0")
    sys.exit()
blend = sys.argv[sys.argv.index("--disable-autoexec") + 1]
settings = json.loads(sys.argv[-1])
digits = "#" * settings["output"].count("#")
frame = str(settings["frames"][0]).zfill(len(digits))
output = settings["output"].replace(digits, frame) + ".png"
shutil.copyfile(blend, output)
print("BRENDA-OUTPUT: " + output)
"""


def png(red: int) -> bytes:
    """A 1x1 PNG: a frame the node reads back, and a .blend our fake Blender copies to one."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes([0, red, 0, 0]))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def put_version(s3: Any, bucket: str, projects: str, files: dict[str, bytes]) -> str:
    """A project version written straight into the store under ``projects``, as anyone who may
    write there could: its contents, then its manifest; its URL."""
    entries = []
    for path, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        s3.put_object(Bucket=bucket, Key=f"{projects}content/{digest}", Body=data)
        entries.append(Entry(path, len(data), digest, 0o644))
    return put_manifest(s3, bucket, projects, entries)


def put_manifest(s3: Any, bucket: str, projects: str, entries: list[Entry]) -> str:
    """A manifest of ``entries``, checked or not, named by its text's hash as uploads name it."""
    text = Manifest(tuple(entries)).to_json()
    name = hashlib.sha256(text.encode()).hexdigest()
    s3.put_object(Bucket=bucket, Key=f"{projects}manifests/{name}.json", Body=text.encode())
    return f"s3://{bucket}/{projects}manifests/{name}.json"


def entry(data: bytes, path: str) -> Entry:
    return Entry(path, len(data), hashlib.sha256(data).hexdigest(), 0o644)


def submit(farm: Farm, project: str, blend: str, priority: int = 0) -> Job:
    config = farm.config()
    job = make_job(
        config,
        project=project,
        frames="1",
        settings=RenderSettings(blend=blend),
        priority=priority,
    )
    return JobRegistry(config).submit(job)


def frame(s3: Any, job: Job) -> bytes | None:
    try:
        found = s3.get_object(Bucket="studio", Key=f"frames/{job.id}/frame_000001.png")
    except s3.exceptions.NoSuchKey:
        return None
    return bytes(found["Body"].read())


def test_hostile_manifests_are_refused_and_poison_nothing_for_the_honest_jobs_after_them(
    job_farm: Farm, boto_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = boto_client("s3")
    blender = tmp_path / "blender"
    blender.write_text(f"#!{sys.executable}\n{FAKE_BLENDER}")
    blender.chmod(0o755)
    monkeypatch.setenv("BRENDA_FARM_PROJECTS", "s3://studio/projects/")
    job_farm.settings.update(
        FARM_PROJECTS="s3://studio/projects/",
        BLENDER=str(blender),
        WARM_BLENDER="0",
        POLL_PAUSE="1",
        DONE="poll",
    )
    honest, other = png(1), png(2)
    # The honest project's top level holds only shots/: its paths start there.
    version = put_version(s3, "studio", "projects/", {"shots/scene.blend": honest})
    put_version(s3, "studio", "projects/", {"scene.blend": other})
    hostile = {
        # Linking the second on the first's place, then copying through the link, wrote the
        # other bytes into the honest file's cache entry.
        "twice": put_manifest(
            s3, "studio", "projects/", [entry(honest, "scene.blend"), entry(other, "scene.blend")]
        ),
        # The node wrote its version marker through the link into the honest file's entry.
        "marker": put_manifest(s3, "studio", "projects/", [entry(honest, ".brenda-version")]),
        # A file where a folder must be: the node died.
        "folder": put_manifest(
            s3, "studio", "projects/", [entry(other, "shots"), entry(other, "shots/scene.blend")]
        ),
        # Nodes may write the farm's outputs: a version there is anyone's.
        "outputs": put_version(s3, "studio", "frames/", {"scene.blend": png(3)}),
    }
    refusals = {
        "twice": "names scene.blend twice",
        "marker": "names .brenda-version, which the node writes itself",
        "folder": "names shots both as a file and as a folder of files",
    }
    jobs = {
        name: submit(job_farm, url, "scene.blend", priority=1)
        for name, url in hostile.items()
        if name != "outputs"
    }
    # submit refuses a version outside FARM_PROJECTS: a node rewrites a record to name one.
    outputs = submit(job_farm, version, "scene.blend", priority=1)
    key = f"frames/.brenda/jobs/{outputs.id}.json"
    crafted = replace(outputs, project=hostile["outputs"])
    s3.put_object(Bucket="studio", Key=key, Body=crafted.to_json().encode())
    refusals["outputs"] = (
        f"job record {key} is skipped: its project {hostile['outputs']} is not under "
        "s3://studio/projects/"
    )
    node = job_farm.start_node("a")
    for name, refusal in refusals.items():
        wait_for(
            lambda refusal=refusal: refusal in job_farm.console("a"),
            60,
            f"the node to refuse the {name} manifest",
        )
    registry = JobRegistry(job_farm.config())
    for job in jobs.values():
        registry.cancel(job.id)

    first, second = (submit(job_farm, version, "shots/scene.blend", priority=5) for _ in "12")
    wait_for(
        lambda: frame(s3, first) is not None and frame(s3, second) is not None,
        60,
        "both honest jobs' frames",
    )
    assert frame(s3, first) == frame(s3, second) == honest
    assert node.poll() is None, job_farm.console("a")
    assert all(frame(s3, job) is None for job in [*jobs.values(), outputs])
    assert "Traceback" not in job_farm.console("a")
