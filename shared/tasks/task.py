# SPDX-License-Identifier: GPL-3.0-or-later
"""Task generation: frame ranges and lists, multiframe chunks, subframe tiles. No bpy module use.

Pure functions. The arithmetic follows the original Brenda exactly (chunk-major, then tile x,
then tile y; tile bounds ``x * (1.0 / X)`` printed like Python 2's ``str(float)``) so that the
scripts and output file names it produces are the ones Brenda users know. Two task forms exist:

* script tasks: a shell template with ``$START $END $STEP $FRAME $SF_MIN_X ...`` substituted;
* render tasks: a structured description (frames, tile, format, scene) that the node renders
  without a shell, which is what the add-on generates from scene settings.

Both travel as one JSON document per SQS message (see ``encode_task``).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from ..core.errors import TaskError

TASK_FORMAT_VERSION = 1
MAX_MESSAGE_BYTES = 262_144
"""SQS's message size limit that every region accepts."""

BUILTIN_TEMPLATES = ("frame", "subframe")
TILE_VARIABLES = ("$SF_MIN_X", "$SF_MAX_X", "$SF_MIN_Y", "$SF_MAX_Y")
FRAME_VARIABLES = ("$FRAME", "$START", "$END")

IMAGE_FORMATS = (
    "PNG",
    "JPEG",
    "OPEN_EXR",
    "OPEN_EXR_MULTILAYER",
    "TIFF",
    "BMP",
    "TARGA",
    "TARGA_RAW",
    "JPEG2000",
    "WEBP",
    "HDR",
    "DPX",
    "CINEON",
    "IRIS",
)
MAX_SCENE_NAME_BYTES = 63
MAX_TASKS = 100_000
"""Tasks one push, job or demo may make: every task is built and checked before the first is
sent. The refusal names no option: each command calls its own "frames per task"."""
DEFAULT_OUTPUT_NAME = "frame_######"

_FRAME_ITEM = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$")


def brenda_float(value: float) -> str:
    """Format like Python 2's ``str(float)``: 12 significant digits, ``.0`` on whole numbers."""
    text = format(value, ".12g")
    if not any(mark in text for mark in (".", "e", "inf", "nan")):
        text += ".0"
    return text


def _range_text(start: int, end: int, step: int) -> str:
    if start == end:
        return str(start)
    return f"{start}-{end}:{step}" if step != 1 else f"{start}-{end}"


@dataclass(frozen=True)
class FrameRange:
    """Frames ``start, start + step, ...`` up to and including ``end`` where it is on the step."""

    start: int
    end: int
    step: int = 1

    def __post_init__(self) -> None:
        if self.start < 0:
            raise TaskError(f"Frame {self.start} is negative; frames start at 0.")
        if self.step < 1:
            raise TaskError(f"Frame step {self.step} must be 1 or more.")
        if self.end < self.start:
            raise TaskError(f"End frame {self.end} is before start frame {self.start}.")

    def frames(self) -> range:
        return range(self.start, self.end + 1, self.step)

    def __str__(self) -> str:
        return _range_text(self.start, self.end, self.step)


@dataclass(frozen=True)
class FrameChunk:
    """The frames of one task: what ``$START``, ``$END`` and ``$STEP`` become."""

    start: int
    end: int
    step: int

    def frames(self) -> range:
        return range(self.start, self.end + 1, self.step)

    def __str__(self) -> str:
        return _range_text(self.start, self.end, self.step)


@dataclass(frozen=True)
class Tile:
    """A border-render region as fractions of the frame, in Blender's convention."""

    min_x: float
    max_x: float
    min_y: float
    max_y: float

    def bounds_text(self) -> tuple[str, str, str, str]:
        return (
            brenda_float(self.min_x),
            brenda_float(self.max_x),
            brenda_float(self.min_y),
            brenda_float(self.max_y),
        )

    def name_suffix(self) -> str:
        """The part the subframe template appends to output names: ``_X-0.0-0.5-Y-0.5-1.0``."""
        min_x, max_x, min_y, max_y = self.bounds_text()
        return f"_X-{min_x}-{max_x}-Y-{min_y}-{max_y}"


def parse_frame_list(text: str) -> tuple[FrameRange, ...]:
    """Parse a frame list such as ``1-10,15,20-40:2`` (ranges inclusive, ``:N`` is a step).

    Frames may be listed in any order but only once.
    """
    ranges: list[FrameRange] = []
    seen: dict[int, str] = {}
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise TaskError("The frame list is empty: give frames like 1-10,15,20-40:2.")
    for item in items:
        match = _FRAME_ITEM.match(item)
        if not match:
            raise TaskError(
                f"Frame list item '{item}' is not a frame (15), a range (1-10) or a range with "
                "a step (20-40:2)."
            )
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) is not None else start
        step = int(match.group(3)) if match.group(3) is not None else 1
        frame_range = FrameRange(start, end, step)
        for frame in frame_range.frames():
            if frame in seen:
                raise TaskError(
                    f"Frame {frame} appears twice in the frame list (in '{seen[frame]}' and "
                    f"'{item}')."
                )
            seen[frame] = item
        ranges.append(frame_range)
    return tuple(ranges)


def chunk_frames(ranges: Iterable[FrameRange], task_size: int) -> list[FrameChunk]:
    """Split each range into tasks of ``task_size`` frames (Brenda's ``-S``)."""
    if task_size < 1:
        raise TaskError(f"Frames per task (-S) must be 1 or more, not {task_size}.")
    ranges = list(ranges)
    _check_count(sum(-(-len(item.frames()) // task_size) for item in ranges))
    chunks: list[FrameChunk] = []
    for frame_range in ranges:
        frames = frame_range.frames()
        for first in range(0, len(frames), task_size):
            last = min(first + task_size, len(frames)) - 1
            chunks.append(FrameChunk(frames[first], frames[last], frame_range.step))
    return chunks


def tile_grid(tiles_x: int, tiles_y: int) -> list[Tile] | None:
    """Brenda's subframe grid, x outer and y inner; None when tiling is off (both 0)."""
    if tiles_x < 0 or tiles_y < 0:
        raise TaskError(f"Tile counts (-X {tiles_x} -Y {tiles_y}) must not be negative.")
    if tiles_x == 0 and tiles_y == 0:
        return None
    if tiles_x == 0 or tiles_y == 0:
        raise TaskError(
            f"Subframe tiles need both -X and -Y above 0 (got -X {tiles_x} -Y {tiles_y})."
        )
    width = 1.0 / tiles_x
    height = 1.0 / tiles_y
    return [
        Tile(x * width, (x + 1) * width, y * height, (y + 1) * height)
        for x in range(tiles_x)
        for y in range(tiles_y)
    ]


@dataclass(frozen=True)
class ScriptTask:
    """A shell task: the template with every push-time variable substituted."""

    chunk: FrameChunk
    tile: Tile | None
    script: str


DEVICES = ("CPU", "CUDA", "OPTIX", "HIP", "ONEAPI", "METAL")
"""Cycles' render devices: the CPU, or a GPU backend (Blender's compute device types)."""
MISMATCH_POLICIES = ("fail", "warn")


@dataclass(frozen=True)
class Environment:
    """The artist's Blender at push time, which the node's must match (or only warn)."""

    blender: str
    """Major.minor version, like ``4.5``."""
    addons: tuple[tuple[str, str], ...] = ()
    """Enabled add-ons that do not come with Blender: (module, version)."""
    display: str = ""
    view: str = ""
    look: str = ""
    ocio: str = ""
    """The OCIO config: the file name in ``$OCIO``, or ``builtin``."""
    on_mismatch: str = "fail"

    def __post_init__(self) -> None:
        if self.on_mismatch not in MISMATCH_POLICIES:
            raise TaskError(f"on_mismatch must be 'fail' or 'warn', not '{self.on_mismatch}'.")

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Environment:
        """An environment as ``dataclasses.asdict`` wrote it; TypeError names a field of the
        wrong type."""
        _check_types(document, _ENVIRONMENT_TYPES, "environment")
        addons = document.get("addons", ())
        if not all(
            isinstance(addon, list | tuple)
            and len(addon) == 2
            and all(isinstance(part, str) for part in addon)
            for addon in addons
        ):
            raise TypeError("environment addons are not (module, version) pairs of text")
        return cls(**{**document, "addons": tuple((name, version) for name, version in addons)})


@dataclass(frozen=True)
class RenderSettings:
    """What a structured render task renders, besides its frames and tile."""

    file_format: str = "PNG"
    scene: str | None = None
    """Scene name; None renders the file's active scene."""
    blend: str | None = None
    """The .blend file, relative to the project; None for the one .blend at its top level."""
    output_name: str = DEFAULT_OUTPUT_NAME
    """Output file name with ``#`` marks for the frame number."""
    render_anyway: bool = False
    """Render even when files the render reads are missing on the node (else the task fails)."""
    allow_python: bool = False
    """Let the .blend run its own Python (drivers, registered scripts); off by default."""
    timeout: int | None = None
    """Seconds a task may run before the node stops it; None: the node's TASK_TIMEOUT."""
    single_colour: bool = False
    """Fail frames that are one colour all over (a missing camera, light or material)."""
    device: str = "CPU"
    """Where Cycles renders: ``CPU`` or a GPU backend (``DEVICES``); no GPU fails the task."""
    environment: Environment | None = None
    blender: str | None = None
    """The Blender version (major.minor) that saved the .blend, as read at submit; None when
    unknown. A node renders with that version, read again from the file it fetched."""
    blender_newer_ok: bool = False
    """A node without that version may render with a newer Blender (off: the task fails)."""

    def __post_init__(self) -> None:
        validate_render_settings(self)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> RenderSettings:
        """Settings as ``dataclasses.asdict`` wrote them (a job's record); TypeError names a
        field of the wrong type (a string ``"allow_python": "no"`` would read as true)."""
        _check_types(document, _SETTINGS_TYPES, "settings")
        environment = document.get("environment")
        return cls(
            **{
                **document,
                "environment": None if environment is None else Environment.from_dict(environment),
            }
        )


_SETTINGS_TYPES: dict[str, tuple[type, ...]] = {
    "file_format": (str,),
    "scene": (str, type(None)),
    "blend": (str, type(None)),
    "output_name": (str,),
    "render_anyway": (bool,),
    "allow_python": (bool,),
    "timeout": (int, type(None)),
    "single_colour": (bool,),
    "device": (str,),
    "environment": (dict, type(None)),
    "blender": (str, type(None)),
    "blender_newer_ok": (bool,),
}
_ENVIRONMENT_TYPES: dict[str, tuple[type, ...]] = {
    "blender": (str,),
    "addons": (list, tuple),
    "display": (str,),
    "view": (str,),
    "look": (str,),
    "ocio": (str,),
    "on_mismatch": (str,),
}


def _check_types(document: object, types: dict[str, tuple[type, ...]], what: str) -> None:
    """TypeError unless ``document`` is an object whose fields are among ``types`` and of them
    (a bool is no number here)."""
    if not isinstance(document, dict):
        raise TypeError(f"{what} is not an object")
    for name, value in document.items():
        if name not in types:
            raise TypeError(f"{what} has an unknown field '{name}'")
        wanted = types[name]
        if not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted):
            raise TypeError(f"{what} field '{name}' is of the wrong type")


@dataclass(frozen=True)
class RenderTask:
    """A structured task the node renders without a shell."""

    chunk: FrameChunk
    tile: Tile | None
    settings: RenderSettings

    @property
    def output_name(self) -> str:
        suffix = self.tile.name_suffix() if self.tile else ""
        return self.settings.output_name + suffix


Task = ScriptTask | RenderTask


MAX_TASK_TIMEOUT = 7 * 24 * 3600


def _timeout(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("timeout is not a whole number of seconds")
    return value


_BLENDER_VERSION = re.compile(r"^\d{1,2}\.\d{1,3}$")


FRAME_EXTENSIONS = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "OPEN_EXR": ".exr",
    "OPEN_EXR_MULTILAYER": ".exr",
    "TIFF": ".tif",
    "BMP": ".bmp",
    "TARGA": ".tga",
    "TARGA_RAW": ".tga",
    "WEBP": ".webp",
    "HDR": ".hdr",
    "DPX": ".dpx",
    "CINEON": ".cin",
    "IRIS": ".rgb",
    "JPEG2000": ".jp2",
}
"""The extension Blender gives each of IMAGE_FORMATS (JPEG 2000: of its default JP2 codec)."""


def frame_file_names(settings: RenderSettings, frames: Iterable[int]) -> dict[str, int]:
    """The file each frame is stored as (whole frames: tiles are assembled), to its number."""
    digits = settings.output_name.count("#")
    base = settings.output_name.split("#", 1)[0]
    extension = FRAME_EXTENSIONS.get(settings.file_format, "." + settings.file_format.lower())
    return {f"{base}{frame:0{digits}d}{extension}": frame for frame in frames}


def validate_render_settings(settings: RenderSettings) -> None:
    if settings.file_format not in IMAGE_FORMATS:
        raise TaskError(
            f"Output format '{settings.file_format}' is not an image format Blender writes; "
            f"use one of {', '.join(IMAGE_FORMATS)}."
        )
    if settings.scene is not None and (
        not settings.scene
        or "\0" in settings.scene
        or len(settings.scene.encode()) > MAX_SCENE_NAME_BYTES
    ):
        raise TaskError(
            f"Scene name '{settings.scene}' is not a Blender scene name "
            f"(1 to {MAX_SCENE_NAME_BYTES} bytes)."
        )
    if settings.blend is not None:
        path = PurePosixPath(settings.blend)
        unsafe = "\0" in settings.blend or path.is_absolute() or ".." in path.parts
        if unsafe or path.suffix != ".blend":
            raise TaskError(
                f"Blend file '{settings.blend}' must be a .blend path inside the project, "
                "like shots/shot1.blend."
            )
    if settings.blender is not None and not (
        isinstance(settings.blender, str) and _BLENDER_VERSION.match(settings.blender)
    ):
        raise TaskError(f"Blender version '{settings.blender}' is not like 4.5 (major.minor).")
    if settings.device not in DEVICES:
        raise TaskError(f"Render device '{settings.device}' is not one of {', '.join(DEVICES)}.")
    if settings.timeout is not None and not 1 <= settings.timeout <= MAX_TASK_TIMEOUT:
        raise TaskError(
            f"Task timeout {settings.timeout} s must be between 1 s and {MAX_TASK_TIMEOUT} s."
        )
    name = settings.output_name
    if "#" not in name or "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise TaskError(
            f"Output name '{name}' must be a file name with # marks for the frame number, "
            "like frame_######."
        )


def substitute(template: str, chunk: FrameChunk, tile: Tile | None) -> str:
    """Brenda's push-time substitution, in the original's order (literal text replacement)."""
    script = template.replace("$FRAME", f"-s {chunk.start} -e {chunk.end} -j {chunk.step}")
    script = script.replace("$START", str(chunk.start))
    script = script.replace("$END", str(chunk.end))
    script = script.replace("$STEP", str(chunk.step))
    if tile is not None:
        for variable, value in zip(TILE_VARIABLES, tile.bounds_text(), strict=True):
            script = script.replace(variable, value)
    return script


def check_template(template: str, *, origin: str, tiled: bool) -> None:
    """Refuse templates that would make every task the same."""
    if not template.strip():
        raise TaskError(f"Task template {origin} is empty.")
    if not any(variable in template for variable in FRAME_VARIABLES):
        raise TaskError(
            f"Task template {origin} uses none of $START, $END or $FRAME, so every task would "
            "render the same frames."
        )
    if tiled and not all(variable in template for variable in TILE_VARIABLES):
        raise TaskError(
            f"Task template {origin} lacks some of {' '.join(TILE_VARIABLES)}, so its tiles "
            "would not differ; use a subframe template (-T subframe)."
        )


def load_template(name_or_path: str) -> tuple[str, str]:
    """Return ``(template text, origin)`` for a template file, or a built-in template's name."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as error:
            raise TaskError(f"Task template {path} cannot be read as UTF-8 text.") from error
    if name_or_path in BUILTIN_TEMPLATES:
        text = resources.files(__package__).joinpath("task_scripts", name_or_path).read_text()
        return text, f"'{name_or_path}' (built in)"
    raise TaskError(
        f"Task template '{name_or_path}' does not exist: give a file, or one of the built-in "
        f"templates {', '.join(BUILTIN_TEMPLATES)}."
    )


def _check_count(count: int) -> None:
    if count > MAX_TASKS:
        raise TaskError(
            f"That makes {count} tasks; Brenda sends at most {MAX_TASKS} at once: render more "
            "frames per task, or fewer frames at a time."
        )


def _counted(chunks: Sequence[FrameChunk], tiles: Sequence[Tile] | None) -> int:
    """How many tasks ``chunks`` and ``tiles`` make, refused past MAX_TASKS."""
    count = len(chunks) * (len(tiles) if tiles else 1)
    _check_count(count)
    return count


def _ordered(
    chunks: Sequence[FrameChunk], tiles: Sequence[Tile] | None
) -> Iterator[tuple[FrameChunk, Tile | None]]:
    options: Sequence[Tile | None] = tiles if tiles else [None]
    for chunk in chunks:
        for tile in options:
            yield chunk, tile


TaskT_co = TypeVar("TaskT_co", covariant=True)


class TaskList(Collection[TaskT_co]):
    """A job's tasks, made afresh on each pass: a push of 100,000 tasks is validated in one pass
    and sent in a second without ever holding them all (about 530 bytes each)."""

    def __init__(self, make: Callable[[], Iterator[TaskT_co]], count: int) -> None:
        self._make = make
        self._count = count

    def __iter__(self) -> Iterator[TaskT_co]:
        return self._make()

    def __len__(self) -> int:
        return self._count

    def __contains__(self, task: object) -> bool:
        return any(task == made for made in self)


def script_tasks(
    template: str,
    chunks: Sequence[FrameChunk],
    tiles: Sequence[Tile] | None,
    *,
    origin: str = "",
) -> TaskList[ScriptTask]:
    check_template(template, origin=origin or "(given)", tiled=tiles is not None)
    count = _counted(chunks, tiles)
    return TaskList(
        lambda: (
            ScriptTask(chunk, tile, substitute(template, chunk, tile))
            for chunk, tile in _ordered(chunks, tiles)
        ),
        count,
    )


def render_tasks(
    settings: RenderSettings, chunks: Sequence[FrameChunk], tiles: Sequence[Tile] | None
) -> TaskList[RenderTask]:
    count = _counted(chunks, tiles)
    return TaskList(
        lambda: (RenderTask(chunk, tile, settings) for chunk, tile in _ordered(chunks, tiles)),
        count,
    )


def shuffled(tasks: Iterable[Task], seed: int | None = None) -> list[Task]:
    """Brenda's ``-r``: the same tasks in random order (reproducible with a seed)."""
    result = list(tasks)
    random.Random(seed).shuffle(result)
    return result


# --- The wire format -------------------------------------------------------------------------


def _tile_json(tile: Tile | None) -> dict[str, float] | None:
    if tile is None:
        return None
    return {"min_x": tile.min_x, "max_x": tile.max_x, "min_y": tile.min_y, "max_y": tile.max_y}


def encode_task(task: Task) -> str:
    """One SQS message body (JSON) for a task; raises TaskError when it is over SQS's limit."""
    document: dict[str, Any] = {
        "brenda": TASK_FORMAT_VERSION,
        "frames": {"start": task.chunk.start, "end": task.chunk.end, "step": task.chunk.step},
        "tile": _tile_json(task.tile),
    }
    if isinstance(task, ScriptTask):
        document["kind"] = "script"
        document["script"] = task.script
    else:
        document["kind"] = "render"
        document["format"] = task.settings.file_format
        document["scene"] = task.settings.scene
        document["blend"] = task.settings.blend
        document["output"] = task.settings.output_name
        if task.settings.render_anyway:
            document["render_anyway"] = True
        if task.settings.allow_python:
            document["allow_python"] = True
        if task.settings.timeout is not None:
            document["timeout"] = task.settings.timeout
        if task.settings.single_colour:
            document["single_colour"] = True
        if task.settings.device != "CPU":
            document["device"] = task.settings.device
        if task.settings.environment is not None:
            document["environment"] = asdict(task.settings.environment)
        if task.settings.blender is not None:
            document["blender"] = task.settings.blender
        if task.settings.blender_newer_ok:
            document["blender_newer_ok"] = True
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    size = len(body.encode())
    if size > MAX_MESSAGE_BYTES:
        raise TaskError(
            f"The task for frames {task.chunk} is {size} bytes, over SQS's limit of "
            f"{MAX_MESSAGE_BYTES}; shorten the task template."
        )
    return body


def decode_task(body: str) -> Task:
    """Parse a message body written by ``encode_task``; TaskError names what is wrong."""
    try:
        document = json.loads(body)
        if not isinstance(document, dict):
            raise TypeError("not an object")
        version = document["brenda"]
        if version != TASK_FORMAT_VERSION:
            raise TaskError(
                f"The task is in format version {version}; this Brenda reads version "
                f"{TASK_FORMAT_VERSION}. Update Brenda on the nodes."
            )
        frames = document["frames"]
        chunk = FrameChunk(int(frames["start"]), int(frames["end"]), int(frames["step"]))
        FrameRange(chunk.start, chunk.end, chunk.step)
        tile_data = document["tile"]
        tile = (
            None
            if tile_data is None
            else Tile(
                float(tile_data["min_x"]),
                float(tile_data["max_x"]),
                float(tile_data["min_y"]),
                float(tile_data["max_y"]),
            )
        )
        kind = document["kind"]
        if kind == "script":
            script = document["script"]
            if not isinstance(script, str):
                raise TypeError("script is not text")
            return ScriptTask(chunk, tile, script)
        if kind == "render":
            settings = RenderSettings(
                file_format=str(document["format"]),
                scene=document["scene"],
                blend=document["blend"],
                output_name=str(document["output"]),
                render_anyway=document.get("render_anyway", False) is True,
                allow_python=document.get("allow_python", False) is True,
                timeout=_timeout(document.get("timeout")),
                single_colour=document.get("single_colour", False) is True,
                device=str(document.get("device", "CPU")),
                environment=Environment.from_dict(document["environment"])
                if document.get("environment") is not None
                else None,
                blender=document.get("blender"),
                blender_newer_ok=document.get("blender_newer_ok", False) is True,
            )
            return RenderTask(chunk, tile, settings)
        raise TaskError(f"The task is of unknown kind '{kind}'.")
    except TaskError:
        raise
    except (ValueError, KeyError, TypeError, OverflowError) as error:
        raise TaskError(f"The message is not a Brenda task ({error}).") from error
    except RecursionError as error:
        raise TaskError("The message is not a Brenda task (it is nested too deeply).") from error


def title(task: Task) -> str:
    """A task in a few words for logs and status: ``frames 1-10``, ``frames 3 tile X-0.0-...``."""
    frames = f"frames {task.chunk}"
    return f"{frames} tile {task.tile.name_suffix()[1:]}" if task.tile else frames


def describe(task: Task) -> str:
    """What ``--dry-run`` prints: the script text, or the render task as one JSON line."""
    if isinstance(task, ScriptTask):
        return task.script
    return encode_task(task) + "\n"
