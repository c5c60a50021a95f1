# SPDX-License-Identifier: GPL-3.0-or-later
"""Add-ons go along: ``brenda pack --addon`` packs the add-on as ``addons/NAME``, and a node
that allows the job's Python enables it there, so a scene that needs it renders as on the
artist's machine (a driver calling the add-on's function)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from shared.cli.brenda import main as brenda
from shared.tasks.task import FrameChunk, RenderSettings, RenderTask
from tests.node.conftest import Farm
from tests.node.test_packed_projects import pixels

pytestmark = pytest.mark.slow

# An add-on whose function a driver of the scene calls: the plane is red only where it runs.
ADDON = """
import bpy
bl_info = {"name": "Brenda tint", "version": (1, 2, 0), "blender": (4, 2, 0)}
def register():
    bpy.app.driver_namespace["brenda_tint"] = lambda: 1.0
def unregister():
    bpy.app.driver_namespace.pop("brenda_tint", None)
"""
# A camera filled by an emitting plane whose red is driven by the add-on's function.
SCENE = """
import bpy, math, sys
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
bpy.ops.mesh.primitive_plane_add(size=4)
material = bpy.data.materials.new("Tinted")
material.use_nodes = True
nodes = material.node_tree.nodes
nodes.clear()
emission = nodes.new("ShaderNodeEmission")
output = nodes.new("ShaderNodeOutputMaterial")
material.node_tree.links.new(emission.outputs["Emission"], output.inputs["Surface"])
emission.inputs["Color"].default_value = (0.0, 0.0, 0.0, 1.0)
curve = emission.inputs["Color"].driver_add("default_value", 0)
curve.driver.type = "SCRIPTED"
curve.driver.expression = "brenda_tint()"
bpy.context.object.data.materials.append(material)
bpy.ops.object.camera_add(location=(0, 0, 3))
scene.camera = bpy.context.object
scene.render.engine = "CYCLES"
scene.cycles.samples = 1
scene.render.resolution_x = scene.render.resolution_y = 8
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])
"""


@pytest.fixture
def tinted(tmp_path: Path) -> tuple[Path, Path]:
    """The scene, and the add-on it needs (a package folder)."""

    addon = tmp_path / "brenda_tint"
    addon.mkdir()
    (addon / "__init__.py").write_text(ADDON)
    (addon / "__pycache__").mkdir()
    (addon / "__pycache__" / "stale.pyc").write_bytes(b"")
    project = tmp_path / "shot"
    project.mkdir()
    host = [sys.executable, "-m", "brenda_node.bpy_host", "-b", "--python-expr", SCENE]
    subprocess.run([*host, "--", str(project / "tint.blend")], check=True, capture_output=True)
    return project / "tint.blend", addon


def test_an_addon_packed_with_the_project_renders_on_the_node(
    farm: Farm, tinted: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blend, addon = tinted
    archive = tmp_path / "tint.tar.gz"
    assert brenda(["pack", str(blend), "-o", str(archive), "--addon", str(addon)]) == 0
    out = capsys.readouterr().out
    assert "Add-on brenda_tint, packed as addons/brenda_tint: the job runs its Python" in out
    with tarfile.open(archive) as bundle:
        names = bundle.getnames()
    assert "addons/brenda_tint/__init__.py" in names
    assert not [name for name in names if "__pycache__" in name]

    farm.settings.update(BLENDER_PROJECT=f"file://{archive}", MAX_RECEIVE_COUNT="1")
    settings = RenderSettings(blend="tint.blend", allow_python=True)
    farm.push([RenderTask(FrameChunk(1, 1, 1), None, settings)])
    # The same project in a job that does not allow Python fails, naming the add-on.
    farm.push([RenderTask(FrameChunk(2, 2, 1), None, RenderSettings(blend="tint.blend"))])
    assert farm.start_node("a").wait(timeout=180) == 0, farm.console("a")
    notes = " ".join(path.read_text() for path in (farm.output / ".brenda" / "failures").iterdir())
    assert "the project packs the add-on brenda_tint, which is Python, and this job does not" in (
        notes
    )
    assert farm.stored() == ["frame_000001.png"]
    assert "enabled the project's add-on brenda_tint" in farm.console("a")
    # Red through the scene's view transform; black (the driver's default) without the add-on.
    red = pixels(farm.output / "frame_000001.png")[..., :3].mean(axis=(0, 1))
    assert red[0] > 0.5 and red[0] > 3 * red[1:].max(), red


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda folder: folder.mkdir(), "is not an add-on: give its package folder"),
        (lambda folder: folder.with_suffix(".txt").write_text(""), "is not an add-on"),
    ],
    ids=["folder without __init__.py", "not a .py file"],
)
def test_a_path_that_is_no_addon_is_refused_naming_it(
    tinted: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], make, problem
) -> None:
    blend, _ = tinted
    path = tmp_path / "not_an_addon"
    make(path)
    target = path if path.exists() else path.with_suffix(".txt")
    assert brenda(["pack", str(blend), "--addon", str(target), "--dry-run"]) == 2
    assert f"brenda: {target} {problem}" in capsys.readouterr().err


def test_an_addon_given_twice_is_refused_before_anything_is_written(
    tinted: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blend, addon = tinted
    archive = tmp_path / "twice.tar.gz"
    argv = ["pack", str(blend), "-o", str(archive), "--addon", str(addon), "--addon", str(addon)]
    assert brenda(argv) == 2
    assert f"brenda: Two add-ons are named brenda_tint ({addon} and {addon})" in (
        capsys.readouterr().err
    )
    assert not archive.exists()
