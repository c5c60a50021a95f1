# SPDX-License-Identifier: GPL-3.0-or-later
"""Every Blender artists use, 4.2 LTS to 5.3, each in its own environment: the studio project
packs whole, a node of that version renders it from the uploaded project like the local render,
denoised tiles make the whole frame, a multilayer OpenEXR renders, and the node sees frames,
samples and render times. A node with several Blenders renders each job with its own. The
studio tests run on the versions besides the main suite's 4.5, whose tests show the same."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from OpenImageIO import ImageInput

from brenda_node.blender import parse_line
from shared.cli.brenda import main as brenda
from shared.cli.run import main as brenda_run
from shared.cli.work import main as brenda_work
from shared.jobs.costs import Ledger
from shared.outputs.store import LEDGERS
from shared.project import packing
from shared.tasks.task import FrameChunk, RenderSettings, RenderTask, tile_grid
from tests.addon.test_addon import run_phase
from tests.conftest import QuietHandler, Studio, serving_http
from tests.node.conftest import Farm
from tests.node.test_packed_projects import pixels
from tests.versions.conftest import ENVIRONMENTS, Version, version

pytestmark = pytest.mark.slow

# Blender's default scene as a new user renders it: Cycles, denoising on (its default).
DENOISED_SCENE = """
import bpy, sys
bpy.ops.wm.read_homefile(use_empty=False)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 16
scene.cycles.use_denoising = True
scene.render.resolution_x, scene.render.resolution_y = 96, 54
scene.render.resolution_percentage = 100
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])
"""
# Files of the studio that only its libraries use: BAT 1.23 missed them in 5.0 files.
LIBRARY_TEXTURES = ("metal.png", "paint.png")
STUDIO_FILES = 21
INSPECT = """
import json, sys
from pathlib import Path
from shared.project import packing
report = packing.inspect(Path(sys.argv[1]))
print(json.dumps([report.files, [item.path for item in report.blocking], report.blender]))
"""


def staged_names(blend: Path, folder: Path) -> list[str]:
    _, files = packing.stage(blend, folder)
    return sorted(name for name, _, _ in files)


def test_the_studio_project_packs_every_file_textures_inside_libraries_included(
    other_blender: Version, version_studio: Studio, tmp_path: Path
) -> None:
    report = packing.inspect(version_studio.blend)
    assert report.files == STUDIO_FILES, report.lines()
    assert report.blocking == ()
    assert report.blender == other_blender.series
    assert report.libraries == (
        ("libs/materials.blend", other_blender.series),
        ("libs/props.blend", other_blender.series),
    )
    names = staged_names(version_studio.blend, tmp_path / "staged")
    for texture in LIBRARY_TEXTURES:
        assert any(name.endswith(texture) for name in names), names
    # The same on Python 3.13 (Blender 5.1 and newer run it: the add-on packs there).
    python313 = ENVIRONMENTS["5.2"]
    if python313 is not None and (python313 / "bin" / "python").is_file():
        done = subprocess.run(
            [str(python313 / "bin" / "python"), "-c", INSPECT, str(version_studio.blend)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads(done.stdout.splitlines()[-1]) == [STUDIO_FILES, [], other_blender.series]


def stored_frame(boto_client: Any, key: str, folder: Path) -> Any:
    path = folder / Path(key).name
    boto_client("s3").download_file("studio", key, str(path))
    return pixels(path)


def progress_lines(console: str) -> list[Any]:
    """The node's log of what Blender printed, as the node read it."""
    return [parse_line(line.split("| ", 1)[1]) for line in console.splitlines() if "| " in line]


def test_a_node_of_this_version_renders_the_uploaded_studio_project_like_the_local_render(
    other_blender: Version,
    version_studio: Studio,
    job_farm: Farm,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("BRENDA_FARM_PROJECTS", "s3://studio/projects/")
    job_farm.settings["FARM_PROJECTS"] = "s3://studio/projects/"
    assert brenda(["upload", str(version_studio.blend)]) == 0
    project = re.findall(r"Project version: (\S+)", capsys.readouterr().out)[-1]
    argv = ["--project", project, "--blend", "shots/shot1.blend", "--frames", "2", "submit"]
    assert brenda_work(argv) == 0
    job = re.findall(r"Submitted job (\S+):", capsys.readouterr().out)[-1]
    assert brenda_work(["jobs"]) == 0
    assert re.search(
        rf"^{job}\s+active\s+0\s+{re.escape(other_blender.series)}\s", capsys.readouterr().out, re.M
    )
    with version_studio.moved_away():
        node = job_farm.start_node("a", BLENDERS=str(other_blender.program))
        assert node.wait(timeout=240) == 0, job_farm.console("a")
    rendered = stored_frame(boto_client, f"frames/{job}/frame_000002.png", tmp_path)
    original = pixels(version_studio.reference)
    assert rendered.shape == original.shape == (48, 64, 4)
    assert np.abs(rendered - original).max() <= 1 / 255
    assert original[..., :3].std() > 0.1  # a real picture, not a blank one
    ledgers = boto_client("s3").list_objects_v2(
        Bucket="studio", Prefix=f"frames/{job}/.brenda/nodes/"
    )
    [ledger_key] = [item["Key"] for item in ledgers["Contents"]]
    body = boto_client("s3").get_object(Bucket="studio", Key=ledger_key)["Body"].read().decode()
    [task] = Ledger.from_json(body).tasks
    # Its render seconds: see the denoised test (2 samples at 64x48 can take under the 10 ms
    # Blender's "Time:" line counts in).
    assert task.outcome == "stored"
    lines = progress_lines(job_farm.console("a"))
    assert any(line.frame == 2 for line in lines)
    assert any(line.sample is not None and line.sample[0] > 0 for line in lines)


def test_denoised_tiles_make_the_whole_frame_and_a_multilayer_exr_renders(
    blender: Version, farm: Farm, tmp_path: Path
) -> None:
    project = tmp_path / "denoise-project"
    project.mkdir()
    blender.run("-b", "--python-expr", DENOISED_SCENE, "--", str(project / "scene.blend"))
    farm.settings.update(BLENDER_PROJECT=f"file://{project}", MAX_RECEIVE_COUNT="1")
    png, multilayer = (
        RenderSettings(blend="scene.blend"),
        RenderSettings(blend="scene.blend", file_format="OPEN_EXR_MULTILAYER"),
    )
    farm.push(
        [
            RenderTask(FrameChunk(1, 1, 1), None, png),
            *(RenderTask(FrameChunk(2, 2, 1), tile, png) for tile in tile_grid(2, 2) or []),
            RenderTask(FrameChunk(3, 3, 1), None, multilayer),
        ]
    )
    assert farm.start_node("a", BLENDERS=str(blender.program)).wait(timeout=240) == 0
    wanted = {"frame_000001.png", "frame_000002.png", "frame_000003.exr"}
    assert wanted <= set(farm.stored()), farm.console("a")
    whole, assembled = (
        pixels(farm.output / "frame_000001.png"),
        pixels(farm.output / "frame_000002.png"),
    )
    assert assembled.shape == whole.shape == (54, 96, 4)
    # Tolerance: one level in 255 (OpenImageDenoise on the same noisy pixels and passes).
    assert np.abs(assembled - whole).max() <= 1 / 255

    exr = ImageInput.open(str(farm.output / "frame_000003.exr"))
    channels = list(exr.spec().channelnames)
    exr.close()
    assert any(name.endswith("Combined.R") for name in channels), channels
    # The ledger's render seconds are Blender's own, on every version (5.x's relayed): the
    # whole denoised frame takes tenths of a second, well above its "Time:" line's 10 ms.
    [ledger] = [Ledger.from_json(path.read_text()) for path in (farm.output / LEDGERS).iterdir()]
    [whole] = [task for task in ledger.tasks if task.task == "frames 1"]
    assert whole.outcome == "stored" and whole.render_seconds > 0


def sample_job(program: Version, folder: Path) -> tuple[Path, Path]:
    """Brenda's sample scene saved by ``program``'s Blender, and its local render of frame 1."""
    folder.mkdir(parents=True)
    script = Path(__file__).parents[2] / "brenda_node" / "sample_scene.py"
    settings = {"output": str(folder / "scene.blend"), "width": 32, "height": 18}
    settings |= {"samples": 4, "frames": 2}
    program.run(
        "-b", "--python-exit-code", "1", "--python", str(script), "--", json.dumps(settings)
    )
    reference = folder.parent / f"reference-{program.series}-"
    program.run("-b", str(folder / "scene.blend"), "-o", f"{reference}#", "-F", "PNG", "-f", "1")
    return folder, Path(f"{reference}1.png")


def test_a_node_renders_each_job_with_the_blender_that_saved_its_file(
    job_farm: Farm, boto_client: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lts, new = version("4.5"), version("5.2")
    jobs = {}
    for blender in (lts, new):
        project, reference = sample_job(blender, tmp_path / blender.series)
        argv = ["--project", f"file://{project}", "--frames", "1", "submit"]
        assert brenda_work(argv) == 0
        job = re.findall(r"Submitted job (\S+):", capsys.readouterr().out)[-1]
        jobs[job] = reference
    node = job_farm.start_node("both", BLENDERS=f"{lts.program},{new.program}")
    assert node.wait(timeout=240) == 0, job_farm.console("both")
    console = job_farm.console("both")
    assert re.search(r"Blenders: Blender 4\.5\.\d+ \(.*\); Blender 5\.2\.\d+ \(", console), console
    for job, reference in jobs.items():
        rendered = stored_frame(boto_client, f"frames/{job}/frame_000001.png", tmp_path)
        assert np.abs(rendered - pixels(reference)).max() <= 1 / 255, job

    # The 5.2 file again, to a node with only 4.5: its task fails, naming both versions.
    project = tmp_path / "5.2"
    assert brenda_work(["--project", f"file://{project}", "--frames", "1", "submit"]) == 0
    job = re.findall(r"Submitted job (\S+):", capsys.readouterr().out)[-1]
    node = job_farm.start_node("lts", BLENDERS=str(lts.program), MAX_RECEIVE_COUNT="1")
    assert node.wait(timeout=240) == 0, job_farm.console("lts")
    failures = boto_client("s3").list_objects_v2(
        Bucket="studio", Prefix=f"frames/{job}/.brenda/failures/"
    )
    notes = " ".join(
        boto_client("s3").get_object(Bucket="studio", Key=item["Key"])["Body"].read().decode()
        for item in failures.get("Contents", [])
    )
    assert re.search(
        r"the file was saved by Blender 5\.2, and this node has Blender 4\.5\.\d+ only", notes
    ), notes


@functools.cache
def extension_zip(python: Path) -> Path:
    """The extension zip ``build.py`` makes with ``python`` (the wheels of that Python)."""
    root = Path(__file__).parents[2]
    done = subprocess.run(
        [str(python), "build.py"], cwd=root, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return root / done.stdout.strip().removeprefix("Built ")


def test_the_extension_installs_in_this_blender_and_packs_the_studio_project(
    other_blender: Version, version_studio: Studio, tmp_path: Path
) -> None:
    # The zip of that Blender's Python (3.13's environment holds Brenda's dependencies).
    builder = version("5.2").python if other_blender.series >= "5.1" else Path(sys.executable)
    zip_path = extension_zip(builder)
    found = run_phase(
        "studio",
        zip_path,
        version_studio.work,
        "http://127.0.0.1:9",
        python=other_blender.python,
    )
    assert found["check"] == "FINISHED"
    assert found["pack"] == "FINISHED"
    assert not [line for line in found["panel"] if line.startswith("Missing:")], found["panel"]
    assert f"Saved by Blender {other_blender.series}" in found["panel"]
    assert f"From outside the root: {version_studio.sources[1]}/paint.png" in found["panel"]
    # The add-on whose property group the scene stores is preselected and packed (5.0 keeps
    # such properties apart from the custom ones).
    found = run_phase(
        "addons", zip_path, tmp_path, "http://127.0.0.1:9", python=other_blender.python
    )
    assert (found["preselected"], found["packed"]) == (
        "brenda_tint",
        ["addons/brenda_tint/__init__.py"],
    )


def release_archive(program: Path, version_name: str) -> bytes:
    """A Linux release of Blender as blender.org ships it (a tar.xz of one folder), whose
    ``blender`` runs ``program``."""
    script = f'#!/bin/sh\nexec {program} "$@"\n'.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as bundle:
        info = tarfile.TarInfo(f"blender-{version_name}-linux-x64/blender")
        info.size, info.mode = len(script), 0o755
        bundle.addfile(info, io.BytesIO(script))
    return buffer.getvalue()


class DownloadHandler(QuietHandler):
    """download.blender.org as the test needs it: the files of ``files`` by path."""

    files: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 (named by http.server)
        body = self.files.get(self.path)
        if body is None:
            self.reply(404, "not found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_node_fetches_a_release_it_lacks_from_the_farms_store_once(
    job_farm: Farm,
    boto_client: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    lts, new = version("4.5"), version("5.2")
    archive = release_archive(new.program, "5.2.4")
    digest = hashlib.sha256(archive).hexdigest()
    DownloadHandler.files = {
        "/Blender5.2/blender-5.2.4-linux-x64.tar.xz": archive,
        "/Blender5.2/blender-5.2.4.sha256": (
            f"{'0' * 64}  blender-5.2.4-windows-x64.zip\n{digest}  blender-5.2.4-linux-x64.tar.xz\n"
        ).encode(),
        "/Blender5.2/blender-5.2.3-linux-x64.tar.xz": archive + b"tampered",
        "/Blender5.2/blender-5.2.3.sha256": f"{digest}  blender-5.2.3-linux-x64.tar.xz\n".encode(),
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), DownloadHandler)
    with serving_http(server) as downloads:
        monkeypatch.setenv("BRENDA_BLENDER_DOWNLOAD_URL", downloads)
        monkeypatch.setenv("BRENDA_FARM_PROJECTS", "s3://studio/projects/")
        assert brenda_run(["blender", "add", "5.2.3"]) == 1
        assert "does not match the SHA-256 blender.org publishes" in capsys.readouterr().err
        assert brenda_run(["blender", "add", "5.2.4"]) == 0
    stored = "s3://studio/projects/blender/blender-5.2.4-linux-x64.tar.xz"
    assert f"Stored Blender 5.2.4 as {stored}." in capsys.readouterr().out
    listed = boto_client("s3").list_objects_v2(Bucket="studio", Prefix="projects/blender/")
    assert [item["Key"] for item in listed["Contents"]] == [
        "projects/blender/blender-5.2.4-linux-x64.tar.xz",
        "projects/blender/blender-5.2.4-linux-x64.tar.xz.sha256",
    ]

    project, reference = sample_job(new, tmp_path / "5.2")
    # A file:// project: a farm that names its FARM_PROJECTS renders only projects under it.
    monkeypatch.delenv("BRENDA_FARM_PROJECTS")
    assert brenda_work(["--project", f"file://{project}", "--frames", "1-2", "submit"]) == 0
    job = re.findall(r"Submitted job (\S+):", capsys.readouterr().out)[-1]
    node = job_farm.start_node(
        "a", BLENDERS=str(lts.program), BLENDER_RELEASES="s3://studio/projects/blender/"
    )
    assert node.wait(timeout=240) == 0, job_farm.console("a")
    console = job_farm.console("a")
    assert console.count(f"fetching Blender 5.2.4 from {stored}") == 1, console
    assert f"task 2: {job} frames 2" in console  # rendered with the Blender fetched for task 1
    assert console.count("Blender 5.2.4 added from the farm's releases") == 1
    rendered = stored_frame(boto_client, f"frames/{job}/frame_000001.png", tmp_path)
    assert np.abs(rendered - pixels(reference)).max() <= 1 / 255
    stored_frame(boto_client, f"frames/{job}/frame_000002.png", tmp_path)


# The core's tests that need no Blender, run again on Python 3.13 (Blender 5.1 and newer's, where
# the add-on's shared core runs): tasks, settings, headers, the node's runner and its releases.
PYTHON_313_TESTS = (
    "tests/test_tasks.py",
    "tests/test_config.py",
    "tests/test_blend_header.py",
    "tests/test_project_blender.py",
    "tests/node/test_blender.py",
    "tests/node/test_blenders.py",
    "tests/node/test_releases.py",
)


def test_the_core_passes_its_tests_on_python_3_13() -> None:
    python = version("5.2").python
    root = Path(__file__).parents[2]
    # One process: this runs inside the suite's own workers (pyproject's addopts spread it).
    serial = "addopts=-ra --strict-markers --import-mode=importlib"
    pytest = [str(python), "-m", "pytest", "-o", serial, "-q", "-p", "no:cacheprovider"]
    pytest += ["-m", "not slow"]
    done = subprocess.run(
        [*pytest, *PYTHON_313_TESTS],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\d+ passed", done.stdout)
