# SPDX-License-Identifier: GPL-3.0-or-later
"""Brenda's worker node: takes tasks from the work queue and renders them with Blender.

No bpy module use: Blender always runs as a child process.
"""
