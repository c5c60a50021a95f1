# SPDX-License-Identifier: GPL-3.0-or-later
"""Brenda's Blender extension: the render farm from the 3D View sidebar.

The only package that imports bpy. Operators and panels call the bpy-free ``shared`` package,
which build.py vendors into the extension as ``<extension>/shared``.
"""

from __future__ import annotations

import bpy

from . import monitor, operators, panels, preferences, props

MODULES = (preferences, props, operators, panels, monitor)


def register() -> None:
    # Blender as a Python module (the bpy wheel, 4.4+) keeps the modules Blender bundles, its
    # OpenImageIO among them, off sys.path until asked; Blender itself has them on it already.
    if hasattr(bpy.utils, "expose_bundled_modules"):
        bpy.utils.expose_bundled_modules()
    for module in MODULES:
        module.register()


def unregister() -> None:
    for module in reversed(MODULES):
        module.unregister()
