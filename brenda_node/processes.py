# SPDX-License-Identifier: GPL-3.0-or-later
"""Stopping what a task started: its whole process group. No bpy module use."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

STOP_GRACE_SECONDS = 5.0


def kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the task's whole process group, then SIGKILL what is left after a grace."""
    kill_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        kill_group(process.pid, signal.SIGKILL)
        process.wait()
