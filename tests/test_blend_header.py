# SPDX-License-Identifier: GPL-3.0-or-later
"""The Blender version that saved a .blend, read from its header: both layouts (4.x's 12 bytes,
5.x's 17), plain, gzip- and zstd-compressed, and a clear error for what is not a .blend."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
import zstandard

from shared.core.blend_header import read_version, saved_by, series
from shared.core.errors import BrendaError

# The first bytes of files saved by each version (pointer size, endianness, version digits).
HEADERS = {
    "4.2": b"BLENDER-v402RENDH\x00\x00\x00",
    "4.5": b"BLENDER-v405RENDH\x00\x00\x00",
    "5.0": b"BLENDER17-01v0500REND\x00\x00\x00",
    "5.2": b"BLENDER17-01v0502REND\x00\x00\x00",
    "5.3": b"BLENDER17-01v0503REND\x00\x00\x00",
    "2.79": b"BLENDER_v279REND",
}
COMPRESSIONS = {
    "plain": lambda data: data,
    "gzip": gzip.compress,
    # Blender writes zstd in frames of 256 KiB: only the first is read.
    "zstd": lambda data: b"".join(
        zstandard.ZstdCompressor().compress(data[start : start + (1 << 18)])
        for start in range(0, len(data), 1 << 18)
    ),
}


@pytest.mark.parametrize("compression", list(COMPRESSIONS))
@pytest.mark.parametrize("version", list(HEADERS))
def test_the_version_is_read_from_the_header(
    version: str, compression: str, tmp_path: Path
) -> None:
    blend = tmp_path / "shot.blend"
    blend.write_bytes(COMPRESSIONS[compression](HEADERS[version] + bytes(3 << 20)))
    assert saved_by(blend) == version


@pytest.mark.parametrize(
    "content",
    [b"", b"PK\x03\x04zip", b"BLENDER", gzip.compress(b"not blender")],
    ids=["empty", "zip", "cut short", "gzip of something else"],
)
def test_what_is_not_a_blend_is_named(content: bytes) -> None:
    with pytest.raises(BrendaError, match=r"^shots/x\.blend is not a \.blend file"):
        read_version(io.BytesIO(content), "shots/x.blend")


def test_an_unreadable_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(BrendaError, match=f"^{tmp_path}/none.blend cannot be read"):
        saved_by(tmp_path / "none.blend")


def test_series_is_major_dot_minor() -> None:
    assert [series(v) for v in ("4.5.15", "5.2", "10.1.2")] == ["4.5", "5.2", "10.1"]
