# SPDX-License-Identifier: GPL-3.0-or-later
"""Every command's --help: plain text (no reStructuredText marks), exit status 0, and ``brenda``
naming every other command."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

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
    with pytest.raises(SystemExit):
        brenda(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for command in ("demo", "pack", "brenda-work", "brenda-node", "brenda-run", "brenda-tool"):
        assert command in text
    assert "brenda-ebs" in text


def test_demo_help_states_the_samples_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        brenda(["demo", "--help"])
    assert "sample scene Cycles samples (default 16)" in " ".join(capsys.readouterr().out.split())
