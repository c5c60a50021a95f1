# SPDX-License-Identifier: GPL-3.0-or-later
"""The failure note a node stores beside a job's outputs when one of its tasks fails
(``.brenda/failures/<message id>.txt``), and reading one back. No bpy module use.

A note is text: the error (its first line is what ``status`` shows), the node and try, then the
message the task came in, so that ``brenda-work show`` can name the frames of a task that failed
before any node could read it (its project could not be fetched, say). Any node may write a note,
so what one holds is shown, never obeyed.
"""

from __future__ import annotations

from dataclasses import dataclass

TASK_MARK = "\ntask: "
"""What the message's body follows, last in a note."""


def failure_note(error: str, *, node: str, attempt: int, body: str) -> str:
    """The note of a task that failed with ``error`` on try ``attempt`` of ``node``; ``body``
    is its message."""
    return f"{error}\n(node {node}, try {attempt}){TASK_MARK}{body}\n"


@dataclass(frozen=True)
class FailureNote:
    """A note as read back: its error, and the message's body where the note holds one (notes
    written before they did hold none)."""

    error: str
    body: str | None


def read_failure_note(text: str) -> FailureNote:
    head, mark, body = text.partition(TASK_MARK)
    return FailureNote(head.strip(), body.removesuffix("\n") if mark else None)
