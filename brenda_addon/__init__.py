# SPDX-License-Identifier: GPL-3.0-or-later
"""Brenda's Blender extension: the render farm from the 3D View sidebar.

The only package that imports bpy. Operators and panels call the bpy-free ``shared`` package,
which build.py vendors into the extension as ``<extension>/shared``.
"""

from __future__ import annotations

import bpy

classes: tuple[type, ...] = ()

register, unregister = bpy.utils.register_classes_factory(classes)
