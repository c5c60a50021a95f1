# SPDX-License-Identifier: GPL-3.0-or-later
"""The Blender versions the matrix tests run: 4.5 LTS in this environment, the others in the
virtual environments ``scripts/install-blenders.sh`` makes (one bpy wheel each, with Brenda's
``brenda-blender``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Studio, make_studio
from tests.node.conftest import farm, job_farm  # noqa: F401 (the node tests' farms)

ROOT = Path(__file__).parents[2]
VENVS = ROOT / ".venvs"
# Each version's environment; None: this one's (the main suite's Blender).
ENVIRONMENTS = {
    "4.2": VENVS / "bpy-4.2",
    "4.5": None,
    "5.0": VENVS / "bpy-5.0",
    "5.2": VENVS / "py3.13",
    "5.3": VENVS / "bpy-5.3",
}


@dataclass(frozen=True)
class Version:
    """One Blender version: the program a node runs, and the Python that has its bpy."""

    series: str
    program: Path
    python: Path

    def run(self, *arguments: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Blender's command line on this version; fails the test if it fails."""
        done = subprocess.run(
            [str(self.program), *arguments],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done


def version(series: str) -> Version:
    """The Blender ``series``, or the test is skipped saying how to install it."""
    environment = ENVIRONMENTS[series]
    if environment is None:
        program = shutil.which("brenda-blender", path=str(Path(sys.executable).parent))
        assert program, "brenda-blender is missing: pip install -e '.[test]'"
        return Version(series, Path(program), Path(sys.executable))
    program = environment / "bin" / "brenda-blender"
    if not program.is_file():
        pytest.skip(f"Blender {series} is not installed: run scripts/install-blenders.sh")
    return Version(series, program, environment / "bin" / "python")


@pytest.fixture(scope="module", params=list(ENVIRONMENTS))
def blender(request: pytest.FixtureRequest) -> Version:
    return version(str(request.param))


@pytest.fixture(scope="module", params=[name for name, folder in ENVIRONMENTS.items() if folder])
def other_blender(request: pytest.FixtureRequest) -> Version:
    """A version other than the main suite's, whose tests (tests/packing, tests/node/
    test_packed_projects, tests/addon) show the same on 4.5."""
    return version(str(request.param))


@pytest.fixture(scope="module")
def version_studio(
    other_blender: Version, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Studio]:
    """The studio project of tests/packing made by this version, with its reference render."""
    folder = tmp_path_factory.mktemp(f"studio-{other_blender.series}")
    yield make_studio(folder, python=other_blender.python)
