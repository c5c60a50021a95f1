# SPDX-License-Identifier: GPL-3.0-or-later
"""Tile names, completeness, Blender's pixel rounding, and assembly in PNG and OpenEXR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from OpenImageIO import FLOAT, ROI, ImageBuf, ImageSpec

from shared.outputs.tiles import assemble, complete_frames, parse_tile_name, pixel_span, tile_prefix
from shared.tasks.task import tile_grid


def tile_names(frame: str, across: int, down: int, ext: str = ".png") -> list[str]:
    grid = tile_grid(across, down) or []
    return [f"{frame}{tile.name_suffix()}{ext}" for tile in grid]


def test_tile_names_parse_back_to_their_frame() -> None:
    tile = parse_tile_name("shot/frame_000003_X-0.333333333333-0.666666666667-Y-0.0-1.0.exr")
    assert tile is not None
    assert tile.frame_name == "shot/frame_000003.exr"
    assert tile.x == ("0.333333333333", "0.666666666667")
    assert tile_prefix(tile) == "shot/frame_000003_X-"
    assert parse_tile_name("frame_000003.png") is None


def test_a_frame_is_complete_only_with_every_tile() -> None:
    names = tile_names("frame_000001", 3, 2) + tile_names("frame_000002", 3, 2)[:-1]
    assert sorted(complete_frames(names)) == ["frame_000001.png"]
    assert complete_frames(tile_names("frame_000001", 2, 2)[1:]) == {}


@pytest.mark.parametrize(
    ("low", "high", "size", "span"),
    [
        ("0.0", "0.333333333333", 50, (0, 16)),
        ("0.333333333333", "0.666666666667", 50, (16, 33)),
        ("0.666666666667", "1.0", 50, (33, 50)),
        ("0.6", "0.7", 10, (6, 7)),
    ],
)
def test_pixel_spans_round_like_blender(
    low: str, high: str, size: int, span: tuple[int, int]
) -> None:
    assert pixel_span(low, high, size) == span


@pytest.mark.parametrize(("ext", "pixel_type"), [(".png", "uint8"), (".exr", "half")])
def test_assembly_takes_each_tile_region(tmp_path: Path, ext: str, pixel_type: str) -> None:

    width, height = 50, 30
    whole = np.random.default_rng(7).random((height, width, 4), dtype=np.float32)
    if pixel_type == "uint8":
        whole = np.round(whole * 255) / 255
    tiles = []
    for name in tile_names("frame_000001", 3, 2, ext):
        tile = parse_tile_name(name)
        assert tile is not None
        left, right = pixel_span(*tile.x, width)
        bottom, top = pixel_span(*tile.y, height)
        data = np.zeros_like(whole)
        rows = slice(height - top, height - bottom)
        data[rows, left:right] = whole[rows, left:right]
        spec = ImageSpec(width, height, 4, pixel_type)
        spec.attribute("oiio:UnassociatedAlpha", 1)
        image = ImageBuf(spec)
        image.set_pixels(ROI(0, width, 0, height, 0, 1, 0, 4), data)
        path = tmp_path / name
        assert image.write(str(path))
        tiles.append((tile, path))
    target = tmp_path / "out" / f"frame_000001{ext}"
    assemble(tiles, target)
    raw = ImageSpec()
    raw.attribute("oiio:UnassociatedAlpha", 1)
    result = ImageBuf(str(target), 0, 0, raw)
    assert result.spec().format == ImageSpec(1, 1, 1, pixel_type).format
    assert np.abs(result.get_pixels(FLOAT) - whole).max() < 1e-3
