# SPDX-License-Identifier: GPL-3.0-or-later
"""The house rules that keep the add-on loadable: bpy only in brenda_addon/, boto3 only in
shared/aws/, and the code style checks (ruff, mypy)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BPY_FREE = ("shared", "brenda_node")


def python_files(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def test_every_bpy_free_module_imports_without_bpy() -> None:
    modules = [
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in python_files(*BPY_FREE)
    ]
    script = (
        "import importlib, sys\n"
        "sys.modules['bpy'] = None\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(len(sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "shared.tasks.task" in modules and "brenda_node" in modules


def test_boto3_is_imported_only_inside_shared_aws() -> None:
    pattern = re.compile(r"^\s*(import|from)\s+(boto3|botocore|s3transfer)\b", re.MULTILINE)
    offenders = [
        str(path.relative_to(ROOT))
        for path in python_files(*BPY_FREE, "brenda_addon")
        if pattern.search(path.read_text()) and "aws" not in path.relative_to(ROOT).parts
    ]
    assert offenders == []


def test_boto3_is_not_loaded_by_importing_the_core() -> None:
    script = (
        "import sys, shared.tasks.task, shared.core.config, shared.tasks.queue; "
        "print('boto3' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
    ],
    ids=["ruff check", "ruff format", "mypy"],
)
def test_code_style(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
