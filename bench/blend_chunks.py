# SPDX-License-Identifier: GPL-3.0-or-later
"""Would splitting a big .blend into chunks make its re-upload small? Bytes a changed .blend
would send whole, in fixed 1 MB blocks, and in content-defined chunks (about 1 MB: a rolling
hash over 64 bytes picks the cuts, so an insertion moves only the cuts near it).

Blender saves an uncompressed .blend (the default); the bench edits it two ways and saves again:
a value edit (an object moved) and a structural one (an object added, another renamed). Chunks
are hashed with SHA-256 and compared with the first version's.

Run: ``python bench/blend_chunks.py [--spheres N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from brenda_node.blenders import blender_command

SCENE = """
import bpy, sys
folder, spheres = sys.argv[-2], int(sys.argv[-1])
bpy.ops.wm.read_homefile(use_empty=True)
for number in range(spheres):
    location = (number * 2.5, 0, 0)
    bpy.ops.mesh.primitive_uv_sphere_add(segments=256, ring_count=128, location=location)
for number in range(4):
    image = bpy.data.images.new(f"packed{number}", 1024, 1024)
    image.generated_type = "UV_GRID"
    image.pack()
bpy.ops.wm.save_as_mainfile(filepath=f"{folder}/first.blend", compress=False)
bpy.data.objects[0].location.z += 0.5
bpy.ops.wm.save_as_mainfile(filepath=f"{folder}/moved.blend", compress=False)
bpy.ops.wm.open_mainfile(filepath=f"{folder}/first.blend")
bpy.ops.mesh.primitive_cube_add(location=(0, 5, 0))
bpy.data.objects[0].name = "a renamed sphere"
bpy.ops.wm.save_as_mainfile(filepath=f"{folder}/added.blend", compress=False)
"""
WINDOW = 64
MULTIPLIER = 0x100000001B3
MIN_CHUNK, AVERAGE_BITS, MAX_CHUNK = 1 << 18, 20, 1 << 22
MASK = 1 << 64


def rolling_hashes(data: bytes) -> np.ndarray:
    """The polynomial hash of the 64 bytes ending at each position (mod 2**64), vectorised:
    prefix sums of byte x p**-k, differenced over the window, times p**i."""
    values = np.frombuffer(data, dtype=np.uint8).astype(np.uint64)
    inverse = 1
    for _ in range(7):  # Newton's iteration for p**-1 mod 2**64 (p is odd)
        inverse = inverse * (2 - MULTIPLIER * inverse) % MASK
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(len(values), MULTIPLIER, dtype=np.uint64))
        powers = np.concatenate(([np.uint64(1)], powers[:-1]))
        inverses = np.cumprod(np.full(len(values), inverse, dtype=np.uint64))
        inverses = np.concatenate(([np.uint64(1)], inverses[:-1]))
        sums = np.cumsum(values * inverses)
        shifted = np.concatenate((np.zeros(WINDOW, dtype=np.uint64), sums[:-WINDOW]))
        return (sums - shifted) * powers


def content_cuts(data: bytes) -> list[int]:
    hashes = rolling_hashes(data)
    mask = np.uint64((1 << AVERAGE_BITS) - 1)
    candidates = np.nonzero(((hashes >> np.uint64(40)) & mask) == 0)[0]
    cuts, last = [], 0
    while last < len(data):
        index = np.searchsorted(candidates, last + MIN_CHUNK)
        cut = int(candidates[index]) + 1 if index < len(candidates) else len(data)
        last = min(cut, last + MAX_CHUNK, len(data))
        cuts.append(last)
    return cuts


def fixed_cuts(data: bytes, size: int = 1 << 20) -> list[int]:
    return [min(start + size, len(data)) for start in range(0, len(data), size)]


def pieces(data: bytes, cuts: list[int]) -> dict[str, int]:
    found, start = {}, 0
    for cut in cuts:
        found[hashlib.sha256(data[start:cut]).hexdigest()] = cut - start
        start = cut
    return found


def new_bytes(first: bytes, then: bytes, cut: Callable[[bytes], list[int]]) -> int:
    """Bytes of ``then`` in pieces ``first`` does not have (what a re-upload would send)."""
    before = pieces(first, cut(first))
    return sum(size for name, size in pieces(then, cut(then)).items() if name not in before)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spheres", type=int, default=12, help="dense spheres in the scene (12)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="brenda-bench-chunks-") as scratch:
        folder = Path(scratch)
        script = folder / "scene.py"
        script.write_text(SCENE, encoding="utf-8")
        blender = [*blender_command(None), "-b", "--python-exit-code", "1"]
        command = [*blender, "--python", str(script), "--", scratch]
        subprocess.run([*command, str(args.spheres)], check=True, capture_output=True)
        first = (folder / "first.blend").read_bytes()
        print(f".blend: {len(first) / 1e6:.1f} MB, uncompressed")
        for label, name in (
            ("an object moved", "moved"),
            ("an object added, one renamed", "added"),
        ):
            then = (folder / f"{name}.blend").read_bytes()
            started = time.monotonic()
            chunked = new_bytes(first, then, content_cuts)
            speed = 2 * len(first) / (time.monotonic() - started) / 1e6
            blocks = new_bytes(first, then, fixed_cuts)
            print(
                f"{label:>29}: whole {len(then) / 1e6:5.1f} MB, "
                f"1 MB blocks {blocks / 1e6:5.2f} MB, "
                f"content-defined chunks {chunked / 1e6:5.2f} MB (chunking {speed:.0f} MB/s)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
