# SPDX-License-Identifier: GPL-3.0-or-later
"""Brenda's error types. No bpy module use.

Every message is one sentence a user can act on; the command-line tools print it verbatim and the
add-on shows it in one report line. Low-level exceptions are chained with ``from``.
"""

from __future__ import annotations


class BrendaError(Exception):
    """An error whose message is a complete, user-facing sentence."""


class ConfigError(BrendaError):
    """A setting is missing, unknown or has a bad value."""


class MissingSetting(ConfigError):
    """A setting the command needs is not set: the command cannot do its work (exit status 1),
    whatever it was reading when it found out."""


class TaskError(BrendaError):
    """A task template, frame range or task description cannot produce valid tasks."""


class CloudError(BrendaError):
    """An AWS call failed (credentials, network, permissions, missing resources)."""


class UsageError(BrendaError):
    """The command line is wrong: an option's value is malformed, out of range, clashes with
    another, or names a file that is not there. Nothing was done; the exit status is 2."""


class StoreError(BrendaError):
    """The output store could not be written or read (a full or missing disk, a network share).

    Like a ``CloudError`` it says nothing about the task whose outputs were being stored."""


class Cancelled(BrendaError):
    """The user cancelled a long operation."""
