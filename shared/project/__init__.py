# SPDX-License-Identifier: GPL-3.0-or-later
"""A project: packing with BAT, the content store, and the Blender of a project version.

No bpy module use.
"""
