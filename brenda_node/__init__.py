# SPDX-License-Identifier: GPL-3.0-or-later
"""Brenda's worker node: takes its farm's tasks (or a work queue's) and renders them with Blender.

No bpy module use: Blender always runs as a child process. ``node`` holds the node and its one
loop (take, lease, render, store, give back, drain, done) over a task source of ``sources`` (a
``WORK_QUEUE`` farm's queue, or every job of the farm, whose projects ``project_cache`` keeps);
``uploader`` stores outputs while the next task renders and keeps failure notes, ``status`` the
work folder's files (``status.json``), ``backoff`` the waits between retries, ``power`` the
shutdown when done.
"""
