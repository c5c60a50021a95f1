# SPDX-License-Identifier: GPL-3.0-or-later
"""Assemble subframe tiles into whole frames. No bpy module use.

A tile is a full-size image in which Blender rendered only a border region (Brenda's subframe
convention, also what structured tasks write); its name carries the region as
``<frame>_X-<min_x>-<max_x>-Y-<min_y>-<max_y>.<ext>``. A frame is complete when its tiles'
regions cover the frame exactly: the x intervals chain from 0.0 to 1.0, so do the y intervals, and
every pair of them is there. Pixels are taken from each tile's own region, computed as Blender
computes it (``int(float32(border) * float32(size))``, y counted from the bottom), so the
assembled frame equals a single render of the whole frame. Images are read and written with
OpenImageIO, in the tiles' own format and pixel type (PNG, OpenEXR and the rest).
"""

from __future__ import annotations

import re
import struct
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise, product
from pathlib import Path
from typing import Any

from OpenImageIO import ROI, ImageBuf, ImageSpec

from ..core.errors import BrendaError

_NUMBER = r"[0-9.]+(?:e-[0-9]+)?"
_TILE_NAME = re.compile(
    rf"^(?P<base>.+)_X-(?P<x0>{_NUMBER})-(?P<x1>{_NUMBER})-Y-(?P<y0>{_NUMBER})-(?P<y1>{_NUMBER})"
    r"(?P<ext>\.[A-Za-z0-9]+)$"
)

Interval = tuple[str, str]


@dataclass(frozen=True)
class TileName:
    name: str
    frame_name: str
    """The assembled frame's name: the tile's name without its region."""
    x: Interval
    y: Interval


def parse_tile_name(name: str) -> TileName | None:
    match = _TILE_NAME.match(name)
    if match is None:
        return None
    return TileName(
        name=name,
        frame_name=match["base"] + match["ext"],
        x=(match["x0"], match["x1"]),
        y=(match["y0"], match["y1"]),
    )


def tile_prefix(tile: TileName) -> str:
    """The stored-name prefix shared by every tile of ``tile``'s frame."""
    return tile.name[: tile.name.rindex("_X-") + len("_X-")]


def _chains(intervals: Iterable[Interval]) -> list[Interval] | None:
    ordered = sorted(set(intervals), key=lambda interval: float(interval[0]))
    if not ordered or float(ordered[0][0]) != 0.0 or float(ordered[-1][1]) != 1.0:
        return None
    if any(left[1] != right[0] for left, right in pairwise(ordered)):
        return None
    return ordered


def complete_frames(names: Iterable[str]) -> dict[str, list[TileName]]:
    """Frames whose tiles are all among ``names``: frame name -> its tiles."""
    by_frame: dict[str, list[TileName]] = defaultdict(list)
    for name in names:
        tile = parse_tile_name(name)
        if tile is not None:
            by_frame[tile.frame_name].append(tile)
    complete = {}
    for frame_name, tiles in by_frame.items():
        columns = _chains(tile.x for tile in tiles)
        rows = _chains(tile.y for tile in tiles)
        if columns is None or rows is None:
            continue
        present = {(tile.x, tile.y) for tile in tiles}
        if all(pair in present for pair in product(columns, rows)):
            complete[frame_name] = tiles
    return complete


def _float32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


def pixel_span(low: str, high: str, size: int) -> tuple[int, int]:
    """The pixels ``[begin, end)`` Blender renders for border fractions ``low..high``."""
    return (
        int(_float32(_float32(float(low)) * size)),
        int(_float32(_float32(float(high)) * size)),
    )


def _pixels(tile: TileName, image: Any, pixel_type: Any) -> Any:
    pixels = image.get_pixels(pixel_type)
    if pixels is None:
        raise BrendaError(f"Tile {tile.name} cannot be read: {image.geterror()}.")
    return pixels


def assemble(tiles: list[tuple[TileName, Path]], target: Path) -> None:
    """Write the frame made of ``tiles`` (name and local file of each) to ``target``."""

    # Keep colours as stored (PNG's alpha is not premultiplied), so they pass through unchanged.
    raw = ImageSpec()
    raw.attribute("oiio:UnassociatedAlpha", 1)
    images = []
    for tile, path in tiles:
        image = ImageBuf(str(path), 0, 0, raw)
        if image.has_error:
            raise BrendaError(f"Tile {tile.name} cannot be read: {image.geterror()}.")
        if image.nsubimages > 1:
            raise BrendaError(
                f"Tile {tile.name} is a multi-part OpenEXR ({image.nsubimages} parts): tiles are "
                "assembled from single-part images, and its other parts would be lost."
            )
        images.append((tile, image))
    spec = ImageSpec(images[0][1].spec())
    width, height, channels = spec.width, spec.height, spec.nchannels
    pixels = _pixels(*images[0], spec.format).copy()
    pixels[...] = 0
    for tile, image in images:
        shape = (image.spec().width, image.spec().height, image.spec().nchannels)
        if shape != (width, height, channels):
            raise BrendaError(
                f"Tile {tile.name} is {shape[0]}x{shape[1]} with {shape[2]} channels, unlike "
                f"the frame's other tiles ({width}x{height}, {channels})."
            )
        left, right = pixel_span(*tile.x, width)
        bottom, top = pixel_span(*tile.y, height)
        # Image rows count from the top; Blender's border counts from the bottom.
        rows = slice(height - top, height - bottom)
        pixels[rows, left:right] = _pixels(tile, image, spec.format)[rows, left:right]
    result = ImageBuf(spec)
    result.set_pixels(ROI(0, width, 0, height, 0, 1, 0, channels), pixels)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not result.write(str(target)):
        raise BrendaError(f"Could not write the assembled frame {target}: {result.geterror()}.")
