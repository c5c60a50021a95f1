# SPDX-License-Identifier: GPL-3.0-or-later
"""What a frame looks like in a video: files written with OpenImageIO, read as the encoder does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from OpenImageIO import FLOAT, UINT8, UINT16, ImageBuf, ImageSpec

from shared.core.errors import BrendaError
from shared.outputs.video import frame_pixels

# Channels as Blender's OPEN_EXR_MULTILAYER writes them (the Albedo pass sorts before Combined).
MULTILAYER = (
    "ViewLayer.Albedo.R",
    "ViewLayer.Albedo.G",
    "ViewLayer.Albedo.B",
    "ViewLayer.Combined.R",
    "ViewLayer.Combined.G",
    "ViewLayer.Combined.B",
    "ViewLayer.Combined.A",
    "ViewLayer.Depth.Z",
)


def write(path: Path, channels: tuple[str, ...], values: list[float], pixel_type: object) -> Path:
    spec = ImageSpec(4, 2, len(channels), pixel_type)
    spec.channelnames = channels
    image = ImageBuf(spec)
    pixels = np.tile(np.array(values, dtype=np.float32), (2, 4, 1))
    if pixel_type is UINT8:
        pixels = np.rint(pixels * 255).astype(np.uint8)
    elif pixel_type is UINT16:
        pixels = np.rint(pixels * 65535).astype(np.uint16)
    assert image.set_pixels(image.roi, pixels)
    assert image.write(str(path)), image.geterror()
    return path


@pytest.mark.parametrize(
    ("name", "channels", "values", "pixel_type", "shown"),
    [
        # 0.2 linear is 124 in sRGB; values above 1 clip to white.
        ("linear.exr", ("R", "G", "B"), [0.2, 1.0, 4.0], FLOAT, [124, 255, 255]),
        ("layers.exr", MULTILAYER, [1, 0, 0, 0, 0.2, 0, 1, 9], FLOAT, [0, 124, 0]),
        ("grey.exr", ("Y",), [0.2], FLOAT, [124, 124, 124]),
        ("display.png", ("R", "G", "B"), [0.2, 0.5, 1.0], UINT8, [51, 128, 255]),
        ("deep.png", ("R", "G", "B"), [0.2, 0.5, 1.0], UINT16, [51, 128, 255]),
    ],
    ids=["linear-exr", "multilayer-exr-combined", "grey-exr", "png-as-stored", "16-bit-png"],
)
def test_frames_become_8_bit_srgb(
    tmp_path: Path,
    name: str,
    channels: tuple[str, ...],
    values: list[float],
    pixel_type: object,
    shown: list[int],
) -> None:
    path = write(tmp_path / name, channels, values, pixel_type)
    pixels = frame_pixels(path, name)
    assert pixels.shape == (2, 4, 3) and pixels.dtype == np.uint8
    assert pixels.reshape(-1, 3).tolist() == [shown] * 8


def test_a_frame_that_is_no_image_is_named(tmp_path: Path) -> None:
    path = tmp_path / "frame_000003.png"
    path.write_bytes(b"")
    with pytest.raises(BrendaError, match=r"^Frame shot/frame_000003.png cannot be read: "):
        frame_pixels(path, "shot/frame_000003.png")
