# SPDX-License-Identifier: GPL-3.0-or-later
"""What runs only on the artist's or admin's machine: SSH to the nodes (paramiko) and the
local AWS-compatible endpoint (moto). Never in the extension zip.

No bpy module use.
"""
