# SPDX-License-Identifier: GPL-3.0-or-later
"""Which Blender saved a .blend: read from the first bytes of its header. No bpy module use.

The header is all that is read (a few dozen bytes, decompressed from the file's first zstd or
gzip frame), so a version costs the same for a 10 KB file and a 10 GB one, on a workstation, from
the first block of an object in S3, or on a node before it picks its Blender. BAT opens a whole
file (decompressing a zstd file into a temporary copy) to read the same number.

Two header layouts exist. Up to Blender 4.5, 12 bytes: ``BLENDER``, ``_`` or ``-`` (4- or 8-byte
pointers), ``v`` or ``V`` (little or big endian) and three digits, ``405``. From Blender 5.0, 17:
``BLENDER``, the header size ``17``, ``-``, the format version ``01``, ``v`` and four digits,
``0500``. Either way the number is major * 100 + minor.
"""

from __future__ import annotations

import io
import re
import zlib
from pathlib import Path
from typing import IO

import zstandard

from .errors import BrendaError

HEADER_BYTES = 64
"""Bytes of (decompressed) file read; more than either header holds."""
COMPRESSED_PREFIX_BYTES = 1 << 18
"""Bytes of a compressed file that always hold its first header (zstd blocks are at most 128 KiB;
Blender writes its files in frames of 256 KiB)."""
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
_LEGACY = re.compile(rb"^BLENDER[_-][vV](\d)(\d\d)")
_LARGE = re.compile(rb"^BLENDER\d\d-\d\d[vV](\d\d)(\d\d)")


def series(version: str) -> str:
    """``4.5`` of ``4.5.15`` (a version's major.minor)."""
    return ".".join(version.split(".")[:2])


def version_key(version: str) -> tuple[int, ...]:
    """A version (``5.2``, ``5.2.4``) as numbers, to compare and sort by."""
    return tuple(int(part) for part in version.split("."))


def version_from_header(header: bytes) -> str | None:
    """``4.5`` from an uncompressed header's bytes; None if they are not a .blend header."""
    found = _LEGACY.match(header) or _LARGE.match(header)
    if found is None:
        return None
    major, minor = found.groups()
    return f"{int(major)}.{int(minor)}"


def decompressed_start(prefix: bytes) -> bytes:
    """The first bytes of a file's content, from the first bytes of the file as stored (zstd,
    gzip or plain)."""
    if prefix.startswith(ZSTD_MAGIC):
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(prefix))
        try:
            return reader.read(HEADER_BYTES)
        except zstandard.ZstdError:
            return b""
    if prefix.startswith(GZIP_MAGIC):
        try:
            return zlib.decompressobj(wbits=31).decompress(prefix, HEADER_BYTES)
        except zlib.error:
            return b""
    return prefix[:HEADER_BYTES]


def read_version(source: IO[bytes], name: str) -> str:
    """The Blender version (major.minor) that saved the .blend read from ``source``: its first
    bytes, and more only when they are compressed (a node reads it before every task)."""
    prefix = source.read(HEADER_BYTES)
    if prefix.startswith((ZSTD_MAGIC, GZIP_MAGIC)):
        prefix += source.read(COMPRESSED_PREFIX_BYTES - len(prefix))
    version = version_from_header(decompressed_start(prefix))
    if version is None:
        raise BrendaError(f"{name} is not a .blend file (its header names no Blender version).")
    return version


def saved_by(path: Path) -> str:
    """The Blender version (major.minor) that saved the .blend file at ``path``."""
    try:
        with path.open("rb") as source:
            return read_version(source, str(path))
    except OSError as error:
        raise BrendaError(f"{path} cannot be read: {error}.") from error
