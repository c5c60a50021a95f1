# SPDX-License-Identifier: GPL-3.0-or-later
"""Brenda's AWS clients. No bpy module use; the only place that imports boto3 (lazily)."""
