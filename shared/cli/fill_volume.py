# SPDX-License-Identifier: GPL-3.0-or-later
"""``python -m shared.cli.fill_volume s3://BUCKET/KEY FOLDER``: extract a project archive into a
mounted volume. Run by the EBS helper that ``brenda-ebs``/the add-on start to turn an uploaded
project into a snapshot; the archive is checked exactly as a node checks it. No bpy module use.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from brenda_node.project import fetch_s3

from ..core.config import load_config
from ..core.urls import S3Url, parse_url
from .common import run_command

PROG = "brenda-fill-volume"


def run(argv: Sequence[str]) -> int:
    source, folder = argv
    url = parse_url(source, allowed=("s3",))
    assert isinstance(url, S3Url)
    target = Path(folder)
    with tempfile.TemporaryDirectory(prefix="brenda-fill-") as scratch:
        project = fetch_s3(url, Path(scratch), load_config(), always=True)
        for item in project.iterdir():
            shutil.move(str(item), target / item.name)
    print(f"{PROG}: {source} extracted into {target}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
