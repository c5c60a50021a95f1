# SPDX-License-Identifier: GPL-3.0-or-later
"""Read every output image back before its task counts as done. No bpy module use.

A frame that cannot be read (truncated, not an image), has another size than the job renders,
or holds NaN or infinite values (float formats) fails its task with that reason, so a node never
stores a broken frame and calls the task done. With the job's ``single_colour`` check, a frame
that is one colour all over (a black frame from a missing camera or light) fails too. Files that
are not images (a template's logs) are left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from OpenImageIO import FLOAT, ImageBuf

IMAGE_SUFFIXES = {
    ".png",
    ".jpg",
    ".jpeg",
    ".exr",
    ".tif",
    ".tiff",
    ".bmp",
    ".tga",
    ".webp",
    ".hdr",
    ".dpx",
    ".cin",
    ".jp2",
}
FLOAT_TYPES = ("half", "float", "double")


def check_image(
    path: Path, *, size: tuple[int, int] | None = None, single_colour: bool = False
) -> str | None:
    """Why the image at ``path`` is not a good frame, or None when it is."""

    image = ImageBuf(str(path))
    if image.has_error or not image.read(force=True):
        return f"{path.name} cannot be read back ({_first_line(image.geterror())})"
    spec = image.spec()
    if size is not None and (spec.width, spec.height) != size:
        return f"{path.name} is {spec.width}x{spec.height}, not the job's {size[0]}x{size[1]}"
    pixels: Any = image.get_pixels(FLOAT)
    if image.has_error or pixels is None:
        return f"{path.name} cannot be read back ({_first_line(image.geterror())})"
    if str(spec.format) in FLOAT_TYPES:
        bad = int(np.count_nonzero(~np.isfinite(pixels)))
        if bad:
            return f"{path.name} holds {bad} NaN or infinite values"
    if single_colour and pixels.size:
        colour = _single_colour(pixels.reshape(-1, spec.nchannels), spec.channelnames)
        if colour is not None:
            return f"{path.name} is one colour all over ({colour})"
    return None


def _single_colour(pixels: Any, channels: tuple[str, ...]) -> str | None:
    """The one colour of every pixel (one row per pixel), as "R 1, G 0, B 0", or None when two
    pixels differ. Each pixel is compared whole: a red frame's channels differ from each other."""
    first = pixels[0]
    if not bool((pixels == first).all()):
        return None
    return ", ".join(
        f"{name} {float(value):g}" for name, value in zip(channels, first, strict=True)
    )


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def check_outputs(
    outputs: list[Path], *, size: tuple[int, int] | None = None, single_colour: bool = False
) -> str | None:
    """Why the task's image outputs are not good frames, or None when all are."""
    for path in outputs:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            problem = check_image(path, size=size, single_colour=single_colour)
            if problem is not None:
                return problem
    return None
