# SPDX-License-Identifier: GPL-3.0-or-later
"""``python -m brenda_node`` runs ``brenda-node``."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
