# SPDX-License-Identifier: GPL-3.0-or-later
"""The output store: where frames, failure notes and ledgers are kept.

No bpy module use.
"""
