# SPDX-License-Identifier: GPL-3.0-or-later
"""The use cases both front-ends call: the add-on's operators and the command-line tools.

No bpy module use. Each takes plain settings and returns what happened as a sentence or a value;
neither front-end orchestrates Brenda's subsystems itself.
"""
