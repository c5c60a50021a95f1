# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda demo`` runs the queue against its own embedded endpoint."""

from __future__ import annotations

import os

import pytest

from shared.cli.demo import main


def test_demo_pushes_to_its_own_endpoint_and_cleans_up(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--frames", "1-12", "--chunk", "2", "--tiles", "2x2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Local AWS-compatible endpoint: http://127.0.0.1:")
    assert lines[1].startswith("Pushed 24 tasks to sqs://brenda-demo in ")
    assert lines[2] == "Queue status: 24 pending, 0 in flight, 0 dead-lettered."
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_demo_rejects_bad_tiles(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--tiles", "2by2"]) == 1
    assert capsys.readouterr().err == (
        "brenda: Tiles '2by2' must be written ACROSSxDOWN, like 2x2.\n"
    )
