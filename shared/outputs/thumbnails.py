# SPDX-License-Identifier: GPL-3.0-or-later
"""Small PNG thumbnails of rendered frames, for pages that embed them. No bpy module use.

A frame is read as a video shows it (8-bit sRGB: see ``shared.outputs.video``), so an EXR's
thumbnail looks like its PNG's, then shrunk with OpenImageIO's default filter."""

from __future__ import annotations

import tempfile
from pathlib import Path

from OpenImageIO import ROI, UINT8, ImageBuf, ImageBufAlgo, ImageSpec

from ..core.errors import BrendaError
from .video import frame_pixels

THUMBNAIL_WIDTH = 160


def thumbnail_png(path: Path, name: str, width: int = THUMBNAIL_WIDTH) -> bytes:
    """A PNG of the frame stored as ``name`` (here at ``path``), ``width`` pixels wide at most,
    its aspect kept; BrendaError naming the frame when it cannot be read."""
    pixels = frame_pixels(path, name)
    height, frame_width = pixels.shape[:2]
    full = ImageBuf(ImageSpec(frame_width, height, 3, UINT8))
    full.set_pixels(full.roi, pixels)
    shown_width = min(width, frame_width)
    shown_height = max(1, round(height * shown_width / frame_width))
    small = ImageBufAlgo.resize(full, roi=ROI(0, shown_width, 0, shown_height, 0, 1, 0, 3))
    if small.has_error:
        raise BrendaError(f"Frame {name} cannot be shrunk: {small.geterror()}.")
    with tempfile.TemporaryDirectory(prefix="brenda-thumbnail-") as scratch:
        target = Path(scratch) / "thumbnail.png"
        if not small.write(str(target)):
            raise BrendaError(
                f"The thumbnail of frame {name} cannot be written: {small.geterror()}."
            )
        return target.read_bytes()
