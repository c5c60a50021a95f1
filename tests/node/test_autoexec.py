# SPDX-License-Identifier: GPL-3.0-or-later
"""The .blend's own Python runs on a node only when the job allows it (real Blender, bpy)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from brenda_node.blender import RunResult, TaskRunner
from brenda_node.blenders import Blenders
from shared.tasks.task import FrameChunk, RenderSettings, RenderTask, ScriptTask, Task

pytestmark = pytest.mark.slow

# A driver that Blender's restricted expression evaluator refuses (it needs str()), and a
# registered script that leaves a mark where it runs.
BUILD = """
import bpy, os, sys
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.samples = 1
scene.render.resolution_x = scene.render.resolution_y = 16
driver = bpy.data.objects["Cube"].driver_add("location", 0).driver
driver.type = "SCRIPTED"
driver.expression = "len(str(frame)) * 2"
text = bpy.data.texts.new("mark.py")
text.write("import pathlib; pathlib.Path('scripts-ran').write_text('yes')")
text.use_module = True
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])
sys.stdout.flush()
os._exit(0)  # bpy's exit handlers can hang after Python drivers (see brenda_node/bpy_host.py)
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("autoexec")
    subprocess.run(
        [sys.executable, "-c", BUILD, str(folder / "scene.blend")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return folder


def run(project: Path, tmp_path: Path, task: Task) -> RunResult:
    (project / "scripts-ran").unlink(missing_ok=True)
    runner = TaskRunner(project, Blenders.of([None], tmp_path / "bin"), tmp_path / "tmp")
    return runner.run(task, tmp_path / "out", stop=threading.Event())


def test_a_render_task_refuses_a_driver_that_needs_python_unless_the_job_allows_it(
    project: Path, tmp_path: Path
) -> None:
    refused = run(project, tmp_path, RenderTask(FrameChunk(1, 1, 1), None, RenderSettings()))
    assert refused.failure() == (
        "the task exited with status 1 (Error: the driver 'len(str(frame)) * 2' driving "
        "location of Object 'Cube' needs Python, which this job does not allow (allow Python "
        "in the job's settings, or push with --allow-python))"
    )
    assert not (project / "scripts-ran").exists()

    allowed = RenderSettings(allow_python=True)
    result = run(project, tmp_path, RenderTask(FrameChunk(1, 1, 1), None, allowed))
    assert result.failure() is None
    assert [path.name for path in result.outputs] == ["frame_000001.png"]
    assert (project / "scripts-ran").read_text() == "yes"


@pytest.mark.parametrize("allow", [False, True], ids=["template without -y", "template with -y"])
def test_templates_run_the_files_python_only_with_y_also_on_the_bpy_host(
    project: Path, tmp_path: Path, allow: bool
) -> None:
    flag = "-y " if allow else ""
    script = f'blender -b {flag}*.blend -o "$OUTDIR/frame_######" -f 1\n'
    result = run(project, tmp_path, ScriptTask(FrameChunk(1, 1, 1), None, script))
    if allow:
        assert result.failure() is None
        assert (project / "scripts-ran").read_text() == "yes"
    else:
        assert result.failure() == (
            "a driver needs Python, which this task does not allow ('len(str(frame)) * 2'): add "
            "-y to the template's blender command, or push with --allow-python"
        )
        assert not (project / "scripts-ran").exists()
