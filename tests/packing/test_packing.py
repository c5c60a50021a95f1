# SPDX-License-Identifier: GPL-3.0-or-later
"""Packing with blender-asset-tracer: the project root, the preflight report as ``brenda pack``
prints it, missing files stopping it (each named once, with its users), and the archive's
contents for a studio project holding every kind of dependency."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from shared.cli.brenda import main as brenda
from shared.core.errors import BrendaError
from shared.project import packing
from tests.conftest import Faults, Studio


@pytest.mark.parametrize("marker", [".blender_project", ".git", ".svn"])
def test_the_project_root_is_the_nearest_folder_marked_as_a_project(
    tmp_path: Path, marker: str
) -> None:
    (tmp_path / "studio" / marker).mkdir(parents=True)
    (tmp_path / "studio" / "shots" / "seq1").mkdir(parents=True)
    blend = tmp_path / "studio" / "shots" / "seq1" / "shot.blend"
    assert packing.find_project_root(blend) == tmp_path / "studio"


def test_without_a_marker_the_root_is_the_blend_files_folder(tmp_path: Path) -> None:
    (tmp_path / "shots").mkdir()
    assert packing.find_project_root(tmp_path / "shots" / "a.blend") == tmp_path / "shots"


def test_a_blend_outside_the_given_root_is_refused(tmp_path: Path) -> None:
    blend = tmp_path / "a" / "shot.blend"
    blend.parent.mkdir()
    blend.write_bytes(b"BLENDER")
    (tmp_path / "b").mkdir()
    with pytest.raises(BrendaError, match=r"shot.blend is not inside the project root .*/b\."):
        packing.inspect(blend, root=tmp_path / "b")


def test_a_file_that_is_not_a_blend_file_is_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blend = tmp_path / "notes.blend"
    blend.write_text("not a blend file")
    assert brenda(["pack", str(blend), "--dry-run"]) == 2  # the command line names no .blend
    error = capsys.readouterr().err
    assert error.startswith(f"brenda: {blend} cannot be read as a .blend file (")
    assert error.count("\n") == 1


def test_a_blend_alone_is_one_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blend = tmp_path / "alone.blend"
    save = f"import bpy; bpy.ops.wm.save_as_mainfile(filepath={str(blend)!r})"
    subprocess.run([sys.executable, "-c", save], check=True, capture_output=True, timeout=120)
    assert brenda(["pack", str(blend), "-o", str(tmp_path / "alone.tar.gz")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("1 file, ") and lines[4].startswith("Packed 1 file (")


@pytest.mark.slow
def test_the_report_lists_outside_and_absolute_files_before_anything_is_written(
    studio: Studio, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "shot1.tar.gz"
    assert brenda(["pack", str(studio.blend), "-o", str(archive), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    root, outside = studio.sources
    assert lines[:2] == [f"Project root: {root}", "Render: shots/shot1.blend"]
    assert lines[2].startswith("21 files, ")
    assert lines[3:] == [
        "Saved by Blender 4.5",
        "Library libs/materials.blend: saved by Blender 4.5",
        "Library libs/props.blend: saved by Blender 4.5",
        f"Missing, not read by the render: {root}/shots/blendcache_shot1/5374616C65_*.bphys "
        "(modifier 1 of object 'Stale' in shots/shot1.blend)",
        f"From outside the root: {outside}/hum.wav",
        f"From outside the root: {outside}/mono.woff2",
        f"From outside the root: {outside}/paint.png",
        f"Absolute path made relative: {outside}/hum.wav (sound 'hum.wav' in shots/shot1.blend)",
        f"Absolute path made relative: {outside}/mono.woff2 (font 'DejaVu Sans Mono Book' in "
        "shots/shot1.blend)",
        f"Absolute path made relative: {outside}/paint.png (image 'paint.png' in libs/props.blend)",
        f"Absolute path made relative: {root}/textures/inside.png (image 'inside.png' in "
        "shots/shot1.blend)",
        "Dry run: nothing was written.",
    ]
    assert not archive.exists()


@pytest.mark.slow
def test_every_dependency_is_packed_under_the_root_or_outside_project(
    studio: Studio, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "shot1.tar.gz"
    assert brenda(["pack", str(studio.blend), "-o", str(archive)]) == 0
    out = capsys.readouterr().out
    assert "Packed 21 files (" in out
    assert (
        "3 copied in from outside the project root, 4 absolute paths made relative, 1 missing"
        in out
    )
    assert f"Tasks render 'shots/shot1.blend' from {archive}." in out
    with tarfile.open(archive) as bundle:
        names = sorted(bundle.getnames())
    outside = str(studio.sources[1]).lstrip("/")
    cache = [name for name in names if name.startswith("shots/blendcache_shot1/")]
    assert cache == [f"shots/blendcache_shot1/456D6974746572_00000{n}_00.bphys" for n in range(4)]
    assert [name for name in names if name not in cache] == [
        f"_outside_project/{outside}/hum.wav",
        f"_outside_project/{outside}/mono.woff2",
        f"_outside_project/{outside}/paint.png",
        "caches/lift.pc2",
        "clips/plate.0001.png",  # BAT alone packs only the first image of a clip
        "clips/plate.0002.png",
        "clips/plate.0003.png",
        "libs/materials.blend",
        "libs/metal.png",
        "libs/props.blend",
        "pack-info.txt",
        "shots/shot1.blend",
        "textures/inside.png",
        "textures/seq/glow.0001.png",
        "textures/seq/glow.0002.png",
        "textures/seq/glow.0003.png",
        "textures/udim/wood.1001.png",
        "textures/udim/wood.1002.png",
    ]


@pytest.mark.slow
def test_missing_files_stop_packing_each_named_once_with_their_users(
    broken_studio: Studio, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "shot1.tar.gz"
    assert brenda(["pack", str(broken_studio.blend), "-o", str(archive)]) == 1
    captured = capsys.readouterr()
    root = broken_studio.sources[0]
    users = "image 'inside.png' in shots/shot1.blend, image 'inside.png.001' in shots/shot1.blend"
    assert captured.err == (
        f"brenda: 1 file the render reads is missing: {root}/textures/inside.png ({users}). "
        "Put them back, or run it again with --render-anyway to render without them.\n"
    )
    assert f"Missing: {root}/textures/inside.png ({users})" in captured.out.splitlines()
    stale = (
        f"Missing, not read by the render: {root}/shots/blendcache_shot1/5374616C65_*.bphys "
        "(modifier 1 of object 'Stale' in shots/shot1.blend)"
    )
    assert stale in captured.out.splitlines()
    assert not archive.exists()

    assert brenda(["pack", str(broken_studio.blend), "-o", str(archive), "--render-anyway"]) == 0
    with tarfile.open(archive) as bundle:
        names = bundle.getnames()
    assert "shots/shot1.blend" in names
    assert "textures/inside.png" not in names


@pytest.mark.slow
def test_a_geometry_nodes_file_saved_twice_by_blender_4_5_packs_and_uploads(
    faults: Faults,
    tmp_path: Path,
    boto_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its modifier's ``bakes`` pointer leads nowhere: traced as ``bat pack`` traces it, the
    pointer is skipped instead of ending packing in a traceback."""
    archive = tmp_path / "shot.tar.gz"
    assert brenda(["pack", str(faults.geometry_nodes), "-o", str(archive)]) == 0
    assert f"Tasks render 'shot.blend' from {archive}." in capsys.readouterr().out
    with tarfile.open(archive) as bundle:
        assert sorted(bundle.getnames()) == ["pack-info.txt", "shot.blend"]

    boto_client("s3").create_bucket(Bucket="studio-projects")
    monkeypatch.setenv("BRENDA_FARM_PROJECTS", "s3://studio-projects/projects/")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert brenda(["upload", str(faults.geometry_nodes)]) == 0
    assert "Project version: s3://studio-projects/projects/" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("size", "shown"),
    [(950, "950 bytes"), (1_300_000, "1.3 MB"), (12_000, "12.0 KB"), (2 * 10**12, "2000.0 GB")],
)
def test_sizes_are_shown_in_decimal_units(size: int, shown: str) -> None:
    assert packing.human_bytes(size) == shown
