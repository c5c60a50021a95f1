# SPDX-License-Identifier: GPL-3.0-or-later
"""The farm's machines: fleet, autoscaling, quotas, node images, EBS, Blender releases.

No bpy module use.
"""
