# SPDX-License-Identifier: GPL-3.0-or-later
"""The farm's jobs: records, registry, settings and costs.

No bpy module use.
"""
