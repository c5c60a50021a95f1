# SPDX-License-Identifier: GPL-3.0-or-later
"""The use cases both front-ends call: the add-on's operators and the command-line tools.

No bpy module use. Each takes plain settings and returns what happened as a sentence or a value;
neither front-end orchestrates Brenda's subsystems itself. ``project`` checks, packs and
uploads; ``jobs`` submits, lists and controls; ``farm`` launches nodes or the fleet, stops and
shows them; ``monitor`` reads the farm's jobs and fleet for the add-on's Jobs panel.
"""
