# SPDX-License-Identifier: GPL-3.0-or-later
"""Brenda's foundations: settings, errors, progress, URLs, HTTP, .blend headers.

No bpy module use. Imports nothing of Brenda's outside this package.
"""
