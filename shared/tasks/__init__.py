# SPDX-License-Identifier: GPL-3.0-or-later
"""Tasks: frames, render settings, templates, their wire format, and sending them to a queue.

No bpy module use.
"""
