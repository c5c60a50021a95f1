# SPDX-License-Identifier: GPL-3.0-or-later
"""Command-line front-ends: thin argparse wrappers over Brenda's shared operations."""
