# SPDX-License-Identifier: GPL-3.0-or-later
"""Every command's --help: plain text (no reStructuredText marks), exit status 0, and ``brenda``
naming every other command."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import pytest

from shared.cli import ebs, run, tool, work
from shared.cli.brenda import main as brenda
from shared.cli.ebs import main as brenda_ebs
from shared.cli.node import main as brenda_node
from shared.cli.run import main as brenda_run
from shared.cli.tool import main as brenda_tool
from shared.cli.work import main as brenda_work

COMMANDS: dict[str, tuple[Callable[[Sequence[str]], int], list[str]]] = {
    "brenda": (brenda, ["--help"]),
    "brenda demo": (brenda, ["demo", "--help"]),
    "brenda pack": (brenda, ["pack", "--help"]),
    "brenda-node": (brenda_node, ["--help"]),
    "brenda-work": (brenda_work, ["--help"]),
    "brenda-run": (brenda_run, ["--help"]),
    "brenda-tool": (brenda_tool, ["--help"]),
    "brenda-ebs": (brenda_ebs, ["--help"]),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_is_plain_text(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    main, argv = COMMANDS[command]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: ") and "``" not in text


def test_brenda_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """Each other command with every one of its own (brenda-work's jobs commands too)."""
    with pytest.raises(SystemExit):
        brenda(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for command in ("demo", "pack", "upload"):
        assert command in text
    others = text.split("other commands (each has --help): ")[1]
    named = dict(re.findall(r"(brenda-\w+) (.*?)(?= brenda-\w+ |$)", others))
    assert list(named) == ["brenda-work", "brenda-node", "brenda-run", "brenda-tool", "brenda-ebs"]
    for prog, commands in (
        ("brenda-work", work.COMMANDS),
        ("brenda-run", run.COMMANDS),
        ("brenda-tool", tool.COMMANDS),
        ("brenda-ebs", ebs.COMMANDS),
    ):
        assert named[prog].endswith(": " + ", ".join(commands)), named[prog]


def test_demo_help_states_the_samples_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        brenda(["demo", "--help"])
    assert "sample scene Cycles samples (default 16)" in " ".join(capsys.readouterr().out.split())
