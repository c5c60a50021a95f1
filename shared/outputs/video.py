# SPDX-License-Identifier: GPL-3.0-or-later
"""A video of rendered frames: read with OpenImageIO, encoded with FFmpeg's libraries (PyAV).

No bpy module use. Every frame becomes 8-bit sRGB before it is encoded:

- Integer images (PNG, JPEG, TIFF, 16-bit included) hold display values already: they are
  scaled to 8 bits.
- Float images (OpenEXR) hold scene-linear light: values are clipped to 0..1 and given the sRGB
  transfer function, as Blender's "Standard" view transform shows them (no Filmic or AgX look,
  no exposure: a look the render applied is in its PNGs, not in its EXRs).
- Of a multilayer EXR the Combined pass (else the first R, G, B channels) is shown; a grey image
  is shown grey. Alpha is dropped, so transparent pixels show over black (OpenImageIO reads
  colours premultiplied).

Codecs that store colour at half resolution (H.264, HEVC and VP9 at 4:2:0, ProRes at 4:2:2) need
an even width and height: an odd one is padded with one more column or row, a copy of the
frame's last, so nothing is scaled and no black line shows. FFV1 keeps every size as it is.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from OpenImageIO import BASETYPE, FLOAT, UINT8, ImageBuf, ImageBufAlgo

from ..core.errors import BrendaError
from ..core.progress import Progress

log = logging.getLogger(__name__)

_LINEAR_TYPES = (BASETYPE.HALF, BASETYPE.FLOAT, BASETYPE.DOUBLE)


@dataclass(frozen=True)
class Codec:
    """A video codec ``--codec`` offers, and how Brenda encodes with it."""

    name: str
    encoder: str
    """FFmpeg's encoder."""
    pixel_format: str
    suffix: str
    """The container a video of it is written in unless the file's name says another."""
    options: dict[str, str] = field(default_factory=dict)
    even: bool = True
    """Colour is stored at half resolution, so sizes must be even."""
    tag: str | None = None
    """The codec's tag in the container, where players need a particular one."""


CODECS = {
    codec.name: codec
    for codec in (
        # crf 18: visually lossless for a review copy, about a tenth of the frames' size.
        Codec("h264", "libx264", "yuv420p", ".mp4", {"crf": "18", "preset": "medium"}),
        Codec(
            "hevc",
            "libx265",
            "yuv420p",
            ".mp4",
            {"crf": "20", "x265-params": "log-level=error"},
            tag="hvc1",  # QuickTime and Safari play only hvc1-tagged HEVC
        ),
        Codec("prores", "prores_ks", "yuv422p10le", ".mov", {"profile": "3"}),  # 422 HQ
        Codec("vp9", "libvpx-vp9", "yuv420p", ".webm", {"crf": "30", "b": "0"}),
        Codec("ffv1", "ffv1", "bgr0", ".mkv", even=False),  # lossless RGB, for archiving
    )
}
DEFAULT_CODEC = "h264"
DEFAULT_FPS = Fraction(24)
"""Blender's default frame rate, used where the scene's is not given."""
MAX_FPS = 1000


def parse_fps(text: str) -> Fraction:
    """A frame rate like ``24``, ``29.97`` or ``30000/1001``."""
    try:
        fps = Fraction(text.strip())
    except (ValueError, ZeroDivisionError) as error:
        raise BrendaError(f"'{text}' is not a frame rate, like 24 or 29.97.") from error
    if not 0 < fps <= MAX_FPS:
        raise BrendaError(f"The frame rate must be above 0 and at most {MAX_FPS}, not {text}.")
    return fps


def codec_named(name: str) -> Codec:
    try:
        return CODECS[name]
    except KeyError:
        raise BrendaError(
            f"'{name}' is not a codec Brenda encodes with; use one of {', '.join(CODECS)}."
        ) from None


def _colour_channels(names: tuple[str, ...]) -> tuple[int, ...]:
    """The channels shown: R, G and B of the Combined pass (or of the first layer that has them,
    or plain R, G, B), else the first three, else the first one as grey."""
    triples = [
        (index, names.index(name[:-1] + "G"), names.index(name[:-1] + "B"))
        for index, name in enumerate(names)
        if (name == "R" or name.endswith(".R"))
        and name[:-1] + "G" in names
        and name[:-1] + "B" in names
    ]
    combined = [triple for triple in triples if "Combined" in names[triple[0]]]
    if combined or triples:
        return (combined or triples)[0]
    if len(names) >= 3:
        return (0, 1, 2)
    return (0, 0, 0)


def srgb_from_linear(linear: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """8-bit sRGB of scene-linear values (clipped to 0..1), as Blender's Standard view."""
    value = np.clip(np.nan_to_num(linear, nan=0.0), 0.0, 1.0)
    encoded = np.where(value <= 0.0031308, value * 12.92, 1.055 * np.power(value, 1 / 2.4) - 0.055)
    rounded: np.ndarray[Any, np.dtype[np.uint8]] = np.rint(encoded * 255).astype(np.uint8)
    return rounded


def frame_pixels(path: Path, name: str) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """The frame stored as ``name`` (here at ``path``), as 8-bit sRGB rows of RGB pixels."""
    image = ImageBuf(str(path))
    if image.has_error:
        raise BrendaError(f"Frame {name} cannot be read: {image.geterror()}.")
    spec = image.spec()
    shown = ImageBufAlgo.channels(image, _colour_channels(tuple(spec.channelnames)))
    if shown.has_error:
        raise BrendaError(f"Frame {name} cannot be read: {shown.geterror()}.")
    linear = spec.format.basetype in _LINEAR_TYPES
    read = shown.get_pixels(FLOAT if linear else UINT8)
    if read is None:
        raise BrendaError(f"Frame {name} cannot be read: {shown.geterror()}.")
    pixels = srgb_from_linear(read) if linear else read.astype(np.uint8)
    return np.ascontiguousarray(pixels.reshape(spec.height, spec.width, 3))


def video_size(codec: Codec, width: int, height: int) -> tuple[int, int]:
    """The size of the video of ``width`` x ``height`` frames (padded to even sizes)."""
    if not codec.even:
        return width, height
    return width + width % 2, height + height % 2


@dataclass(frozen=True)
class Video:
    """A video written."""

    path: Path
    frames: int
    width: int
    height: int
    frame_width: int
    frame_height: int
    fps: Fraction
    codec: Codec

    @property
    def padded(self) -> bool:
        return (self.width, self.height) != (self.frame_width, self.frame_height)


def check_target(target: Path, codec: Codec) -> None:
    """Refuse a file name whose container (FFmpeg's, from its suffix) cannot hold ``codec``."""
    import av  # noqa: PLC0415 - lazy PyAV: Blender does not ship it, and the add-on loads this

    with tempfile.TemporaryDirectory(prefix="brenda-video-") as scratch:
        try:
            with av.open(str(Path(scratch) / f"probe{target.suffix}"), "w") as container:
                container.add_stream(codec.encoder, rate=DEFAULT_FPS)
        except (ValueError, av.FFmpegError) as error:
            what = f"a {target.suffix} file" if target.suffix else "a file without a suffix"
            raise BrendaError(
                f"{target} cannot hold {codec.name} video ({what}): name it "
                f"{target.stem}{codec.suffix}, or choose another --codec."
            ) from error


def encode_video(
    frames: Iterable[tuple[str, Path]],
    target: Path,
    *,
    codec: Codec,
    fps: Fraction,
    progress: Progress | None = None,
) -> Video:
    """Encode ``frames`` (each its stored name and a file here), in the order given, into
    ``target``, whose suffix names the container (``check_target``). The video is written beside
    it and moved into place once whole: a failure or cancellation leaves nothing half-written."""
    import av  # noqa: PLC0415 - lazy PyAV: Blender does not ship it, and the add-on loads this

    check_target(target, codec)
    partial = target.with_name(f".partial-{target.name}")
    count = 0
    size: tuple[int, int] | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(partial), "w") as container:
            stream: Any = None
            for name, path in frames:
                if progress is not None:
                    progress.check()
                pixels = frame_pixels(path, name)
                height, width = pixels.shape[:2]
                if size is None:
                    size = (width, height)
                    stream = _open_stream(container, codec, fps, *video_size(codec, *size))
                elif (width, height) != size:
                    raise BrendaError(
                        f"Frame {name} is {width}x{height}, unlike the frames before it "
                        f"({size[0]}x{size[1]}): a video has one size."
                    )
                padded = _pad(pixels, stream.width, stream.height)
                frame = av.VideoFrame.from_ndarray(padded, format="rgb24")
                frame.pts = count
                for packet in stream.encode(_to_stream_format(frame, codec)):
                    container.mux(packet)
                count += 1
                if progress is not None:
                    progress.advance()
            if stream is None:
                raise BrendaError("There are no frames to encode.")
            for packet in stream.encode(None):
                container.mux(packet)
        partial.replace(target)
    except (av.FFmpegError, OSError) as error:
        raise BrendaError(f"Could not write the video {target}: {error}.") from error
    finally:
        with suppress(OSError):  # a folder that could not be made holds no partial video
            partial.unlink(missing_ok=True)
    assert size is not None
    width, height = video_size(codec, *size)
    return Video(target, count, width, height, size[0], size[1], fps, codec)


def _open_stream(container: Any, codec: Codec, fps: Fraction, width: int, height: int) -> Any:
    stream = container.add_stream(codec.encoder, rate=fps, options=dict(codec.options))
    stream.width, stream.height, stream.pix_fmt = width, height, codec.pixel_format
    if codec.tag is not None:
        stream.codec_tag = codec.tag
    if codec.pixel_format.startswith("yuv"):
        # Tag the video BT.709 (HD video's colours, and sRGB's primaries) so players convert it
        # back to RGB as it was converted.
        context = stream.codec_context
        context.colorspace, context.color_primaries, context.color_trc = 1, 1, 1
        context.color_range = 1  # video range, 16-235: what players expect of H.264
    return stream


def _to_stream_format(frame: Any, codec: Codec) -> Any:
    if not codec.pixel_format.startswith("yuv"):
        return frame.reformat(format=codec.pixel_format)
    return frame.reformat(
        format=codec.pixel_format,
        dst_colorspace="ITU709",
        dst_color_range="MPEG",
        dst_color_trc=1,
        dst_color_primaries=1,
    )


def _pad(
    pixels: np.ndarray[Any, np.dtype[np.uint8]], width: int, height: int
) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """``pixels`` grown to ``width`` x ``height`` by repeating its last column and row."""
    grow = ((0, height - pixels.shape[0]), (0, width - pixels.shape[1]), (0, 0))
    if not any(after for _, after in grow):
        return pixels
    return np.pad(pixels, grow, mode="edge")
