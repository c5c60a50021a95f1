# SPDX-License-Identifier: GPL-3.0-or-later
"""A real node records each task's machine, seconds and cost in its ledger beside the outputs:
the machine from instance metadata, the spot price from moto's price history."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.cli.work import main as brenda_work
from shared.jobs.costs import LOCAL, Ledger, TaskCost
from shared.outputs.store import LEDGERS
from tests.node.conftest import Farm, MetadataServer, empty_project, script_tasks, submit_job

TASK = 'sleep 1\n[ "$START" = 3 ] && exit 1\necho "frame $START" > "$OUTDIR/frame_$START.txt"\n'


@pytest.mark.parametrize(
    ("life_cycle", "price"),
    [("spot", 0.00001), ("on-demand", 0.085)],
    ids=["spot, moto's price history", "on-demand, the list price"],
)
def test_a_node_records_each_tasks_machine_seconds_and_cost(
    farm: Farm, metadata: MetadataServer, life_cycle: str, price: float
) -> None:
    metadata.values.update(
        {
            "/latest/meta-data/instance-type": "c5.large",
            "/latest/meta-data/placement/availability-zone": "us-east-1a",
            "/latest/meta-data/instance-life-cycle": life_cycle,
        }
    )
    farm.settings.update(MAX_RECEIVE_COUNT="1")
    farm.push(script_tasks(TASK, range(1, 4)))
    node = farm.start_node("a", RUNNING_ON_EC2="1", METADATA_URL=metadata.url)
    assert node.wait(timeout=60) == 0, farm.console("a")
    [path] = (farm.output / LEDGERS).iterdir()
    ledger = Ledger.from_json(path.read_text())
    assert (ledger.machine.market, ledger.machine.instance_type, ledger.machine.zone) == (
        life_cycle,
        "c5.large",
        "us-east-1a",
    )
    assert ledger.working_on is None
    outcomes = sorted((task.task, task.outcome, task.frames) for task in ledger.tasks)
    assert outcomes == [
        ("frames 1", "stored", 1),
        ("frames 2", "stored", 1),
        ("frames 3", "failed", 0),
    ]
    for task in ledger.tasks:
        assert 1 <= task.wall_seconds < 30
        assert task.dollars_per_hour == price
        assert task.dollars == pytest.approx(task.wall_seconds * price / 3600, rel=1e-9)


def test_on_the_local_farm_tasks_cost_nothing_and_keep_their_seconds(farm: Farm) -> None:
    farm.push(script_tasks(TASK, range(1, 3)))
    assert farm.start_node("a").wait(timeout=60) == 0, farm.console("a")
    [path] = (farm.output / LEDGERS).iterdir()
    ledger = Ledger.from_json(path.read_text())
    assert ledger.machine.market == "local"
    assert [task.dollars for task in ledger.tasks] == [0.0, 0.0]
    assert all(task.wall_seconds >= 1 for task in ledger.tasks)


def test_jobs_leaves_out_a_ledger_that_is_not_one_and_names_it(
    job_farm: Farm, boto_client: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A ledger whose dollars are a string crashed ``brenda-work jobs`` (and the add-on's
    panel) with a traceback."""
    job = submit_job(capsys, empty_project(tmp_path / "shot"))
    task = TaskCost("frames 1", 1, 0, 60, 50, 0.0, 0.0, "stored")
    crafted = json.loads(Ledger("node-0", LOCAL, None, 0, [task]).to_json())
    crafted["tasks"][0]["dollars"] = "5.00"
    key = f"frames/{job}/{LEDGERS}node-0.json"
    boto_client("s3").put_object(Bucket="studio", Key=key, Body=json.dumps(crafted).encode())
    assert brenda_work(["jobs"]) == 0
    out, err = capsys.readouterr()
    assert re.search(rf"^{job}\s+active\s", out, re.M), out
    assert key in err and "'dollars' is '5.00', not a number" in err, err
