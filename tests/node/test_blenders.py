# SPDX-License-Identifier: GPL-3.0-or-later
"""A node's Blenders: each program's version asked once, a launcher per version, and the task's
Blender chosen by the version that saved its .blend, never silently another."""

from __future__ import annotations

from pathlib import Path

import pytest

from brenda_node.blenders import Blenders, program_version
from shared.core.errors import BrendaError


def fake_blender(folder: Path, version: str) -> Path:
    """A program that answers ``--version`` as Blender does and echoes anything else."""
    program = folder / f"blender-{version}"
    program.write_text(
        f'#!/bin/sh\n[ "$1" = --version ] && '
        f"printf 'Blender {version} LTS\\n\\tbuild date: x\\n' && exit\n"
        f'echo "{version}: $*"\n'
    )
    program.chmod(0o755)
    return program


@pytest.fixture
def node_blenders(tmp_path: Path) -> Blenders:
    programs = [str(fake_blender(tmp_path, v)) for v in ("4.5.5", "5.2.4", "4.2.23", "5.2.1")]
    return Blenders.of(programs, tmp_path / "bin")


def test_each_version_gets_a_launcher_and_the_first_is_the_default(
    node_blenders: Blenders, tmp_path: Path
) -> None:
    assert [item.version for item in node_blenders.installed] == ["4.5.5", "5.2.4", "4.2.23"]
    assert node_blenders.default.version == "4.5.5"
    for series in ("4.5", "5.2", "4.2"):
        launcher = tmp_path / "bin" / series / "blender"
        assert f"#!/bin/sh\nexec {tmp_path}/blender-" in launcher.read_text()
    assert "blender-4.5.5" in (tmp_path / "bin" / "blender").read_text()


def test_a_file_renders_with_its_own_version_or_fails_naming_both(node_blenders: Blenders) -> None:
    assert node_blenders.for_version("5.2").version == "5.2.4"
    assert node_blenders.for_version("4.2").version == "4.2.23"
    with pytest.raises(BrendaError) as refused:
        node_blenders.for_version("5.0")
    assert str(refused.value) == (
        "the file was saved by Blender 5.0, and this node has Blender 4.5.5, 5.2.4, 4.2.23 only: "
        "add Blender 5.0 to the node's BLENDERS, or let the job use a newer Blender"
    )


def test_a_job_that_accepts_a_newer_blender_gets_the_oldest_newer_one(
    node_blenders: Blenders,
) -> None:
    assert node_blenders.for_version("4.3", newer_ok=True).version == "4.5.5"
    assert node_blenders.for_version("5.0", newer_ok=True).version == "5.2.4"
    with pytest.raises(BrendaError, match="saved by Blender 5.3, and this node has"):
        node_blenders.for_version("5.3", newer_ok=True)


def test_a_program_that_is_not_blender_is_named(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.write_text("#!/bin/sh\necho 'GIMP 3.0'\n")
    other.chmod(0o755)
    with pytest.raises(
        BrendaError, match=r"other is not a Blender program \('--version' said: GIMP"
    ):
        program_version([str(other)])
