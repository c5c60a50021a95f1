# SPDX-License-Identifier: GPL-3.0-or-later
"""build.py stages the add-on with the shared core and zips it without stray files."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_build_makes_a_clean_extension_zip() -> None:
    (ROOT / "shared" / "__pycache__").mkdir(exist_ok=True)
    result = subprocess.run(
        [sys.executable, "build.py"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    archive = ROOT / "dist" / f"brenda-{manifest['version']}-python{python}.zip"
    assert result.stdout.strip() == f"Built dist/{archive.name}"
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        staged = tomllib.loads(bundle.read("blender_manifest.toml").decode())
    assert staged["id"] == "brenda"
    # The Blenders that run this Python: 4.2 to 5.0 run 3.11, 5.1 and newer 3.13.
    lowest, beyond = {"3.11": ("4.2.0", "5.1.0"), "3.13": ("5.1.0", None)}[python]
    assert staged["blender_version_min"] == lowest
    assert staged.get("blender_version_max") == beyond
    assert set(staged["permissions"]) == {"network", "files"}
    assert "__init__.py" in names
    assert "shared/tasks/task.py" in names and "shared/tasks/task_scripts/frame" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert not [name for name in names if name.startswith("tests/")]
    wheels = staged["wheels"]
    assert any(wheel.startswith("./wheels/boto3-") for wheel in wheels)
    assert any(wheel.startswith("./wheels/botocore-") for wheel in wheels)
    assert "./wheels/blender_asset_tracer-1.23-py3-none-any.whl" in wheels
    assert all(wheel.endswith("-py3-none-any.whl") and wheel[2:] in names for wheel in wheels)
    assert not any("urllib3" in wheel or "numpy" in wheel for wheel in wheels)
    assert "operators.py" in names and "shared/jobs/settings.py" in names
    # Only what the add-on imports: no command-line front-end, nothing that loads paramiko or
    # moto (the SSH fan-out and the local endpoint stay on the workstation).
    assert not [name for name in names if name.startswith("shared/cli/")]
    assert (
        "shared/workstation/ssh.py" not in names and "shared/workstation/local_aws.py" not in names
    )
    with zipfile.ZipFile(archive) as bundle:
        sources = {
            name: bundle.read(name).decode()
            for name in names
            if name.endswith(".py") and not name.startswith("wheels/")
        }
    loaders = re.compile(r"^\s*(import|from)\s+(paramiko|moto)\b", re.MULTILINE)
    assert [name for name, text in sources.items() if loaders.search(text)] == []
    assert "wheels" not in tomllib.loads((ROOT / "blender_manifest.toml").read_text())


# fake-bpy-module's stubs make every context member and layout Optional and cannot read
# Blender's ``name: bpy.props.XProperty(...)`` annotations; those checks are left out.
UNCHECKABLE = ("valid-type", "union-attr", "func-returns-value", "misc", "has-type")


def test_the_add_on_type_checks_against_fake_bpy_module(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "build.py"], cwd=ROOT, check=True, capture_output=True)
    shutil.copytree(ROOT / "build" / "extension", tmp_path / "brenda")
    options = ["--ignore-missing-imports", "--follow-imports=silent", "--no-warn-unused-ignores"]
    disabled = [f"--disable-error-code={code}" for code in UNCHECKABLE]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", *options, *disabled, "-p", "brenda"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
