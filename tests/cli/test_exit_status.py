# SPDX-License-Identifier: GPL-3.0-or-later
"""One exit-status rule for every command: 2 when the command line is wrong (nothing was done),
1 when the command could not do its work, 0 when it did."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from shared.cli.brenda import main as brenda
from shared.cli.ebs import main as brenda_ebs
from shared.cli.node import main as brenda_node
from shared.cli.run import main as brenda_run
from shared.cli.tool import main as brenda_tool
from shared.cli.work import main as brenda_work

Main = Callable[[Sequence[str] | None], int]

CASES: list[tuple[str, Main, list[str], int]] = [
    ("brenda", brenda, ["demo", "--bogus"], 2),
    ("brenda", brenda, ["demo", "--nodes", "0"], 2),
    ("brenda", brenda, ["pack", "nowhere.blend"], 2),
    ("brenda-work", brenda_work, ["--bogus", "push"], 2),
    ("brenda-work", brenda_work, ["-e", "0", "-T", "frame", "push"], 2),
    ("brenda-work", brenda_work, ["status"], 1),
    ("brenda-run", brenda_run, ["--bogus", "spot"], 2),
    ("brenda-run", brenda_run, ["-N", "0", "spot"], 2),
    ("brenda-run", brenda_run, ["status"], 1),
    ("brenda-tool", brenda_tool, ["--bogus", "ssh"], 2),
    ("brenda-tool", brenda_tool, ["-n", "127.0.0.1", "prune"], 2),
    ("brenda-ebs", brenda_ebs, ["--bogus", "new"], 2),
    ("brenda-ebs", brenda_ebs, ["snapshot"], 2),
    ("brenda-node", brenda_node, ["--bogus"], 2),
    ("brenda-node", brenda_node, [], 1),
]


@pytest.mark.parametrize(
    ("prog", "main", "argv", "code"),
    CASES,
    ids=[f"{prog} {' '.join(argv)}".strip() for prog, _, argv, _ in CASES],
)
def test_every_command_follows_one_exit_status_rule(
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    prog: str,
    main: Main,
    argv: list[str],
    code: int,
) -> None:
    monkeypatch.chdir(isolated_environment)
    # Nothing reachable: a command that gets past its command line fails for want of AWS.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    try:
        status = main(argv)
    except SystemExit as exit:  # argparse's own errors
        status = int(str(exit.code))
    assert status == code
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
