# SPDX-License-Identifier: GPL-3.0-or-later
"""Text that others wrote (records, failure notes, ids), made safe to print on a terminal."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Control characters but tab and newline: a terminal would obey them (move the cursor, clear
the screen, retitle the window, rewrite what an earlier line said)."""


def printable(text: str) -> str:
    """``text`` with its control characters shown as ``\\xNN`` escapes instead of obeyed."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
