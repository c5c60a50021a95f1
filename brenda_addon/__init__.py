# SPDX-License-Identifier: GPL-3.0-or-later
"""Brenda's Blender extension: the render farm from the 3D View sidebar.

The only package that imports bpy. Operators and panels call the bpy-free ``shared`` package,
which build.py vendors into the extension as ``<extension>/shared``.
"""

from __future__ import annotations

from . import monitor, operators, panels, preferences, props

MODULES = (preferences, props, operators, panels, monitor)


def register() -> None:
    for module in MODULES:
        module.register()


def unregister() -> None:
    for module in reversed(MODULES):
        module.unregister()
