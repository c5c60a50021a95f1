# SPDX-License-Identifier: GPL-3.0-or-later
"""The Blenders a node has, and which one renders a task. No bpy module use.

``BLENDERS`` lists the node's Blender programs (``BLENDER`` alone, else ``blender`` on PATH,
else the ``bpy`` wheel, when it is unset). The node asks each for its version once
(``PROGRAM --version``), writes a ``blender`` launcher per version into its work folder, and
renders each structured task with the Blender whose major.minor saved the task's .blend, read
from the file's header on the node. With none of that version the task fails naming the version
it needs and those the node has: a file never renders silently on another Blender (a node new in
5.0 renders white on 4.5). A job that allows a newer Blender takes the oldest newer one.
Template tasks run the first Blender listed, whose launcher is also ``bin/blender``. A version
the node lacks is fetched from the farm's Blender releases (``releases``), once.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.core.blend_header import series, version_key
from shared.core.config import Config
from shared.core.errors import BrendaError

from .releases import Releases

log = logging.getLogger(__name__)

VERSION_SECONDS = 120.0
"""How long ``PROGRAM --version`` may take (a bpy wheel loads in a few seconds)."""
_VERSION = re.compile(r"^Blender (\d+\.\d+(?:\.\d+)?)", re.MULTILINE)


def blender_command(configured: str | None) -> list[str]:
    """The command that starts Blender on this machine."""
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise BrendaError(f"The Blender program {configured} is not an executable program.")
        return [os.path.abspath(found)]  # tasks run it from their project folder
    found = shutil.which("blender")
    if found is not None:
        return [found]
    if importlib.util.find_spec("bpy") is not None:
        # -P: tasks run from their project folder, which must never shadow Blender's or
        # Python's modules (a project's bpy.py would run even where Python is not allowed).
        return [sys.executable, "-P", "-m", "brenda_node.bpy_host"]
    raise BrendaError(
        "Blender was not found: install it and put 'blender' on PATH, set BLENDER=/path/to/"
        "blender, or pip install 'bpy==4.5.*' (Python 3.11) or 'bpy==5.2.*' (Python 3.13)."
    )


def write_launcher(folder: Path, command: Sequence[str]) -> Path:
    """A ``blender`` program in ``folder`` that runs ``command`` with the given arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    launcher = folder / "blender"
    quoted = " ".join(shlex.quote(part) for part in command)
    launcher.write_text(f'#!/bin/sh\nexec {quoted} "$@"\n', encoding="utf-8")
    launcher.chmod(0o755)
    return launcher


@dataclass(frozen=True)
class Blender:
    """One Blender program of the node."""

    version: str
    """What ``--version`` said, like ``4.5.15``."""
    command: tuple[str, ...]
    launcher_folder: Path
    """The folder whose ``blender`` launcher runs this Blender (put first on a task's PATH)."""

    @property
    def series(self) -> str:
        return series(self.version)

    def describe(self) -> str:
        return f"Blender {self.version} ({' '.join(self.command)})"


def program_version(command: Sequence[str]) -> str:
    """The version a Blender program says it is (``PROGRAM --version``)."""
    try:
        done = subprocess.run(
            [*command, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=VERSION_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BrendaError(f"{command[0]} --version failed: {error}.") from error
    found = _VERSION.search(done.stdout)
    if done.returncode != 0 or found is None:
        said = (done.stdout + done.stderr).strip().splitlines()[:1] or ["no output"]
        raise BrendaError(f"{command[0]} is not a Blender program ('--version' said: {said[0]}).")
    return found.group(1)


def programs(config: Config) -> list[str | None]:
    """The Blender programs the settings name; None stands for "find Blender" (BLENDER unset)."""
    listed = config.optional_text("BLENDERS")
    if listed:
        return [item.strip() for item in listed.split(",") if item.strip()]
    return [config.optional_text("BLENDER")]


class Blenders:
    """The node's Blenders, the first one the default, and the farm's releases it may fetch."""

    def __init__(
        self, installed: Sequence[Blender], folder: Path, releases: Releases | None = None
    ) -> None:
        self.installed = list(installed)
        self.folder = folder
        self.releases = releases

    @classmethod
    def find(cls, config: Config, folder: Path, releases: Path) -> Blenders:
        """The node's Blenders (``BLENDERS``, else ``BLENDER``), launchers under ``folder``;
        releases fetched from the farm's store are unpacked into ``releases``."""
        return cls.of(programs(config), folder, Releases.of(config, releases))

    @classmethod
    def of(
        cls, listed: Sequence[str | None], folder: Path, releases: Releases | None = None
    ) -> Blenders:
        """Each program's version asked once and its launcher written under ``folder``
        (``folder/blender`` runs the first; ``folder/<major.minor>/blender`` each)."""
        blenders = cls([], folder, releases)
        for program in listed:
            blenders.add(program)
        log.info("Blenders: %s", "; ".join(item.describe() for item in blenders.installed))
        return blenders

    def add(self, program: str | None) -> Blender | None:
        """The Blender ``program`` added, its version asked; None if that version is here."""
        command = tuple(blender_command(program))
        version = program_version(command)
        if any(item.series == series(version) for item in self.installed):
            log.warning("%s is Blender %s, already listed: not used", command[0], version)
            return None
        launchers = self.folder / series(version)
        write_launcher(launchers, command)
        if not self.installed:
            write_launcher(self.folder, command)
        added = Blender(version, command, launchers)
        self.installed.append(added)
        return added

    @property
    def default(self) -> Blender:
        return self.installed[0]

    def versions(self) -> str:
        return ", ".join(item.version for item in self.installed)

    def for_version(self, wanted: str, *, newer_ok: bool = False) -> Blender:
        """The Blender that renders a file saved by Blender ``wanted`` (major.minor): this
        node's, else the farm's release of that version (fetched once), else with ``newer_ok``
        the oldest newer one here."""
        for item in self.installed:
            if item.series == wanted:
                return item
        if self.releases is not None:
            try:
                program = self.releases.program(wanted)
            except BrendaError as error:
                log.warning("Blender %s could not be fetched: %s", wanted, error)
                program = None
            added = self.add(str(program)) if program is not None else None
            if added is not None:
                log.info("Blender %s added from the farm's releases", added.version)
                return added
        if newer_ok:
            newer = [
                item for item in self.installed if version_key(item.series) > version_key(wanted)
            ]
            if newer:
                return min(newer, key=lambda item: version_key(item.version))
        store = (
            f", nor has {self.releases.describe()} (brenda-run blender add {wanted}.N puts it "
            "there)"
            if self.releases is not None
            else ""
        )
        newer_note = "" if newer_ok else ", or let the job use a newer Blender"
        raise BrendaError(
            f"the file was saved by Blender {wanted}, and this node has Blender "
            f"{self.versions()} only{store}: add Blender {wanted} to the node's "
            f"BLENDERS{newer_note}"
        )
