# SPDX-License-Identifier: GPL-3.0-or-later
"""Text for people: what others wrote (records, failure notes, ids) made safe to print on a
terminal, and counts of things said in the right number."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Control characters but tab and newline: a terminal would obey them (move the cursor, clear
the screen, retitle the window, rewrite what an earlier line said)."""


def printable(text: str) -> str:
    """``text`` with its control characters shown as ``\\xNN`` escapes instead of obeyed."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def counted(count: int, noun: str) -> str:
    """``1 file``, ``2 files``, ``0 files``: ``noun`` is singular, and takes an s otherwise."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
