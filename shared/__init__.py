# SPDX-License-Identifier: GPL-3.0-or-later
"""Brenda's bpy-free core, shared by the command-line tools, the node and the Blender add-on.

No bpy module use. Modules here import each other relatively, so that build.py can vendor this
package into the add-on's extension zip.
"""

from __future__ import annotations

__version__ = "0.1.0"
