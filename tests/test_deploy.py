# SPDX-License-Identifier: GPL-3.0-or-later
"""The node image recipe and its systemd unit."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

import pytest

from shared.farm.fleet import NODE_ENV_FILE, NODE_SHUTDOWN, NODE_WORK_DIR

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


@pytest.mark.parametrize("check", [["bash", "-n"], ["shellcheck", "--severity=style"]])
def test_image_script_passes_bash_and_shellcheck(check: list[str]) -> None:
    result = subprocess.run(
        [*check, str(DEPLOY / "build-node-image.sh")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_unit_restarts_on_failure_and_stops_inside_a_spot_notice() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "brenda-node.service")
    service = unit["Service"]
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) < 120
    assert service["EnvironmentFile"] == NODE_ENV_FILE
    assert service["WorkingDirectory"] == NODE_WORK_DIR
    assert service["User"] == "brenda"


def test_sudoers_allows_exactly_the_nodes_shutdown_command() -> None:
    rule = (DEPLOY / "brenda-sudoers").read_text()
    command = NODE_SHUTDOWN.removeprefix("sudo -n ")
    assert f"NOPASSWD: {command}," in rule
