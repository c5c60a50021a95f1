# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-ebs``: prepare EBS volumes and snapshots for projects too big for S3 tarballs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..core.config import load_config
from ..core.errors import UsageError
from ..farm import ebs
from ..services import project
from .common import ArgumentParser, add_common_options, configure_logging, print_plan, run_command

PROG = "brenda-ebs"
COMMANDS = ("new", "existing", "snapshot")

DESCRIPTION = f"""\
Prepare an EBS volume for a project, then snapshot it for the nodes (BLENDER_PROJECT=ebs://NAME
or ADDITIONAL_EBS_0=ebs://NAME,FOLDER).

commands:
  new        start a helper instance with a new empty volume of -s GB
  existing   start a helper instance with a volume made from snapshot -S (id or name)
  snapshot   snapshot the farm's helper volume under the name -N

With -m the helper formats (new) and mounts the volume at {ebs.MOUNT_POINT}.
"""

EPILOG = f"""\
workflow:
  brenda-ebs -s 50 -m new
  brenda-tool rsync -a myproject/ HOST:{ebs.MOUNT_POINT}/
  brenda-tool ssh sudo umount {ebs.MOUNT_POINT}
  brenda-ebs -N shot-42 snapshot
  brenda-run -T stop                      the helper goes; its volume stays until you delete it
"""


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=COMMANDS, metavar="|".join(COMMANDS))
    add_common_options(parser)
    parser.add_argument("-a", "--ami", metavar="AMI", help="helper image (default AMI_ID)")
    parser.add_argument("-s", "--size", type=int, default=1, metavar="GB", help="volume size")
    parser.add_argument("-S", "--snapshot", metavar="SNAPSHOT", help="existing: id or name")
    parser.add_argument(
        "-i", "--instance-type", metavar="TYPE", help="helper type (EBS_MANAGE_INSTANCE_TYPE)"
    )
    parser.add_argument("-z", "--zone", metavar="ZONE", help="zone (EBS_MANAGE_AVAILABILITY_ZONE)")
    parser.add_argument("-m", "--mount", action="store_true", help="format (new) and mount")
    parser.add_argument("-N", "--name", help="snapshot: the snapshot's name")
    parser.add_argument(
        "-d", "--dry-run", action="store_true", help="print what would happen; spend nothing"
    )
    return parser


def run(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(PROG, verbose=args.verbose)
    config = load_config(args.config)
    if args.command == "snapshot":
        if not args.name:
            raise UsageError("snapshot needs a name: brenda-ebs -N NAME snapshot.")
        if args.dry_run:
            print(f"Dry run: would snapshot the helper volume as '{args.name}'.")
            return 0
        print(project.snapshot_volume(config, args.name))
        return 0
    plan = ebs.plan_helper(
        config,
        existing=args.command == "existing",
        image=args.ami,
        size=args.size,
        snapshot=args.snapshot,
        instance_type=args.instance_type,
        zone=args.zone,
        mount=args.mount,
    )
    print_plan(plan.summary(), plan.user_data, dry_run=args.dry_run)
    if args.dry_run:
        return 0
    instance, snapshot = ebs.start_helper(config, plan)
    source = f" from {snapshot}" if snapshot else ""
    print(f"Helper {instance} started with its volume{source} on /dev/sdf.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
