# SPDX-License-Identifier: GPL-3.0-or-later
"""Task generation against the original Brenda's arithmetic and output."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from shared.core.errors import TaskError
from shared.tasks.task import (
    IMAGE_FORMATS,
    MAX_MESSAGE_BYTES,
    Environment,
    FrameChunk,
    FrameRange,
    RenderSettings,
    RenderTask,
    ScriptTask,
    Tile,
    brenda_float,
    chunk_frames,
    decode_task,
    encode_task,
    frame_file_names,
    load_template,
    parse_frame_list,
    render_tasks,
    script_tasks,
    shuffled,
    substitute,
    tile_grid,
)

# The original's task-scripts/frame, as Brenda 0.5.6 shipped it.
ORIGINAL_FRAME_TEMPLATE = (
    "blender -b *.blend -F PNG -o $OUTDIR/frame_###### -s $START -e $END -j $STEP -t 0 -a\n"
)
# The output part of the original's task-scripts/subframe command line.
ORIGINAL_SUBFRAME_OUTPUT = (
    "-o $OUTDIR/frame_######_X-$SF_MIN_X-$SF_MAX_X-Y-$SF_MIN_Y-$SF_MAX_Y -s $START -e $END\n"
)


def frame_tasks(template: str, start: int, end: int, size: int = 1) -> list[str]:
    chunks = chunk_frames([FrameRange(start, end)], size)
    return [task.script for task in script_tasks(template, chunks, None)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, "0.0"),
        (1.0, "1.0"),
        (1 / 3, "0.333333333333"),
        (2 * (1.0 / 3), "0.666666666667"),
        (3 * (1.0 / 5), "0.6"),
        (3 * (1.0 / 10), "0.3"),
        (7 * (1.0 / 10), "0.7"),
        (0.125, "0.125"),
        (1e-05, "1e-05"),
        (1e16, "1e+16"),
    ],
    ids=str,
)
def test_floats_print_like_python2(value: float, expected: str) -> None:
    assert brenda_float(value) == expected


def test_240_frames_make_one_task_per_frame_like_the_original() -> None:
    scripts = frame_tasks(ORIGINAL_FRAME_TEMPLATE, 1, 240)
    assert len(scripts) == 240
    assert scripts[0] == (
        "blender -b *.blend -F PNG -o $OUTDIR/frame_###### -s 1 -e 1 -j 1 -t 0 -a\n"
    )
    assert scripts[239] == (
        "blender -b *.blend -F PNG -o $OUTDIR/frame_###### -s 240 -e 240 -j 1 -t 0 -a\n"
    )
    assert [f"-s {n} -e {n} -j 1" in script for n, script in enumerate(scripts, 1)] == [True] * 240


def test_multiframe_chunks_of_10_on_1_to_25() -> None:
    assert frame_tasks("-s $START -e $END -j $STEP\n", 1, 25, size=10) == [
        "-s 1 -e 10 -j 1\n",
        "-s 11 -e 20 -j 1\n",
        "-s 21 -e 25 -j 1\n",
    ]


def test_subframe_3x3_tile_strings_x_outer_y_inner() -> None:
    tiles = tile_grid(3, 3)
    assert tiles is not None
    names = [
        task.script for task in script_tasks(ORIGINAL_SUBFRAME_OUTPUT, [FrameChunk(1, 1, 1)], tiles)
    ]
    third, two_thirds = "0.333333333333", "0.666666666667"
    bounds = [("0.0", third), (third, two_thirds), (two_thirds, "1.0")]
    assert names == [
        f"-o $OUTDIR/frame_######_X-{x0}-{x1}-Y-{y0}-{y1} -s 1 -e 1\n"
        for x0, x1 in bounds
        for y0, y1 in bounds
    ]
    assert names[1] == (
        "-o $OUTDIR/frame_######_X-0.0-0.333333333333-Y-0.333333333333-0.666666666667 -s 1 -e 1\n"
    )


@pytest.mark.parametrize(
    ("tiles", "edges"),
    [
        (5, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
        (10, ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"]),
        (4, ["0.0", "0.25", "0.5", "0.75", "1.0"]),
    ],
    ids=["5", "10", "4"],
)
def test_tile_edges_match_the_original_strings(tiles: int, edges: list[str]) -> None:
    grid = tile_grid(tiles, 1)
    assert grid is not None
    assert [tile.bounds_text()[0] for tile in grid] + [grid[-1].bounds_text()[1]] == edges
    assert all(tile.bounds_text()[2:] == ("0.0", "1.0") for tile in grid)


def test_tiles_within_each_chunk_in_order() -> None:
    tiles = tile_grid(2, 2)
    chunks = chunk_frames([FrameRange(1, 4)], 2)
    order = [
        (task.chunk.start, task.tile.name_suffix() if task.tile else "")
        for task in script_tasks("$START $SF_MIN_X $SF_MAX_X $SF_MIN_Y $SF_MAX_Y", chunks, tiles)
    ]
    assert order == [
        (1, "_X-0.0-0.5-Y-0.0-0.5"),
        (1, "_X-0.0-0.5-Y-0.5-1.0"),
        (1, "_X-0.5-1.0-Y-0.0-0.5"),
        (1, "_X-0.5-1.0-Y-0.5-1.0"),
        (3, "_X-0.0-0.5-Y-0.0-0.5"),
        (3, "_X-0.0-0.5-Y-0.5-1.0"),
        (3, "_X-0.5-1.0-Y-0.0-0.5"),
        (3, "_X-0.5-1.0-Y-0.5-1.0"),
    ]


def test_substitution_order_and_literal_replacement() -> None:
    tile = Tile(0.0, 0.5, 0.5, 1.0)
    script = substitute(
        "$FRAME | $START $END $STEP | $STARTX $ENDING | $SF_MIN_X $SF_MAX_X $SF_MIN_Y $SF_MAX_Y"
        " | $OUTDIR $HOME",
        FrameChunk(11, 20, 1),
        tile,
    )
    assert script == ("-s 11 -e 20 -j 1 | 11 20 1 | 11X 20ING | 0.0 0.5 0.5 1.0 | $OUTDIR $HOME")


def test_tile_variables_stay_when_not_tiling() -> None:
    assert substitute("$SF_MIN_X $START", FrameChunk(3, 3, 1), None) == "$SF_MIN_X 3"


def test_randomize_keeps_the_same_multiset_of_tasks() -> None:
    tasks = script_tasks(
        "$START $SF_MIN_X $SF_MAX_X $SF_MIN_Y $SF_MAX_Y",
        chunk_frames([FrameRange(1, 30)], 1),
        tile_grid(2, 2),
    )
    mixed = shuffled(tasks, seed=7)
    assert Counter(task.script for task in mixed) == Counter(task.script for task in tasks)
    assert [task.script for task in mixed] != [task.script for task in tasks]
    assert [task.script for task in shuffled(tasks, seed=7)] == [task.script for task in mixed]


def test_frame_step_chunks_count_frames_not_numbers() -> None:
    assert chunk_frames([FrameRange(1, 10, 4)], 1) == [
        FrameChunk(1, 1, 4),
        FrameChunk(5, 5, 4),
        FrameChunk(9, 9, 4),
    ]
    assert chunk_frames([FrameRange(1, 20, 3)], 3) == [
        FrameChunk(1, 7, 3),
        FrameChunk(10, 16, 3),
        FrameChunk(19, 19, 3),
    ]
    assert substitute("$FRAME", FrameChunk(10, 16, 3), None) == "-s 10 -e 16 -j 3"


def test_frame_list_like_flamenco() -> None:
    ranges = parse_frame_list("1-10, 15,20-40:2")
    assert ranges == (FrameRange(1, 10), FrameRange(15, 15), FrameRange(20, 40, 2))
    assert [str(frame_range) for frame_range in ranges] == ["1-10", "15", "20-40:2"]
    assert sum(len(frame_range.frames()) for frame_range in ranges) == 10 + 1 + 11
    chunks = chunk_frames(ranges, 4)
    assert [str(chunk) for chunk in chunks] == [
        "1-4",
        "5-8",
        "9-10",
        "15",
        "20-26:2",
        "28-34:2",
        "36-40:2",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "frame list is empty"),
        ("1-10,,12", "item ''"),
        ("1-x", "item '1-x'"),
        ("-5", "item '-5'"),
        ("10-5", "End frame 5 is before start frame 10"),
        ("1-10:0", "step 0 must be 1 or more"),
        ("1-10,5", "Frame 5 appears twice in the frame list (in '1-10' and '5')"),
        ("1-9:2,2-6:2,5", "Frame 5 appears twice"),
    ],
    ids=["empty", "blank item", "word", "negative", "reversed", "step 0", "twice", "twice 2"],
)
def test_bad_frame_lists_name_the_culprit(text: str, message: str) -> None:
    with pytest.raises(TaskError, match="^.*" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_frame_list(text)


def test_validation_of_what_the_original_let_crash() -> None:
    with pytest.raises(TaskError, match=r"Frames per task \(-S\) must be 1 or more, not 0"):
        chunk_frames([FrameRange(1, 10)], 0)
    with pytest.raises(TaskError, match="End frame 1 is before start frame 5"):
        FrameRange(5, 1)
    with pytest.raises(TaskError, match="need both -X and -Y above 0"):
        tile_grid(3, 0)
    with pytest.raises(TaskError, match="need both -X and -Y above 0"):
        tile_grid(0, 2)
    with pytest.raises(TaskError, match="must not be negative"):
        tile_grid(-1, 2)
    assert tile_grid(0, 0) is None
    assert tile_grid(1, 1) == [Tile(0.0, 1.0, 0.0, 1.0)]


def test_templates_that_would_repeat_the_same_work_are_refused() -> None:
    chunks = [FrameChunk(1, 1, 1)]
    with pytest.raises(TaskError, match="is empty"):
        script_tasks("  \n", chunks, None, origin="t")
    with pytest.raises(TaskError, match=r"uses none of \$START, \$END or \$FRAME"):
        script_tasks("blender -b x.blend -a\n", chunks, None, origin="t")
    with pytest.raises(TaskError, match="its tiles would not differ"):
        script_tasks("render $START\n", chunks, tile_grid(2, 2), origin="t")


def test_builtin_templates_and_template_files(tmp_path: Path) -> None:
    frame, origin = load_template("frame")
    assert "$START" in frame and "$OUTDIR" in frame
    assert origin == "'frame' (built in)"
    subframe, _ = load_template("subframe")
    assert all(name in subframe for name in ("$SF_MIN_X", "$SF_MAX_X", "$SF_MIN_Y", "$SF_MAX_Y"))
    custom = tmp_path / "my-template"
    custom.write_text("echo $START\n")
    assert load_template(str(custom)) == ("echo $START\n", str(custom))
    with pytest.raises(TaskError, match="'missing' does not exist.*frame, subframe"):
        load_template("missing")
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TaskError, match="cannot be read as UTF-8"):
        load_template(str(binary))


def test_script_task_round_trips_through_a_message() -> None:
    task = ScriptTask(FrameChunk(1, 10, 2), Tile(0.0, 1 / 3, 0.5, 1.0), "echo é $START\n")
    body = encode_task(task)
    assert json.loads(body)["kind"] == "script"
    assert decode_task(body) == task


def test_render_task_round_trips_and_names_tiles() -> None:
    settings = RenderSettings(file_format="OPEN_EXR", scene="Shot 1", blend="shots/a.blend")
    [task] = render_tasks(settings, [FrameChunk(4, 4, 1)], [Tile(0.5, 1.0, 0.0, 0.5)])
    assert task.output_name == "frame_######_X-0.5-1.0-Y-0.0-0.5"
    decoded = decode_task(encode_task(task))
    assert isinstance(decoded, RenderTask)
    assert decoded == task


def test_the_render_device_and_the_artists_blender_travel_with_the_task() -> None:
    environment = Environment(
        blender="4.5",
        addons=(("rigify", "0.6.10"),),
        view="AgX",
        ocio="builtin",
        on_mismatch="warn",
    )
    settings = RenderSettings(device="OPTIX", environment=environment)
    [task] = render_tasks(settings, [FrameChunk(1, 1, 1)], None)
    assert decode_task(encode_task(task)) == task
    [plain] = render_tasks(RenderSettings(), [FrameChunk(1, 1, 1)], None)
    assert "device" not in encode_task(plain) and "environment" not in encode_task(plain)
    with pytest.raises(TaskError, match="on_mismatch must be 'fail' or 'warn'"):
        Environment(blender="4.5", on_mismatch="ignore")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"file_format": "GIF"}, "'GIF' is not an image format"),
        ({"scene": "x" * 64}, "is not a Blender scene name"),
        ({"scene": ""}, "is not a Blender scene name"),
        ({"blend": "../outside.blend"}, "must be a .blend path inside the project"),
        ({"blend": "/abs/file.blend"}, "must be a .blend path inside the project"),
        ({"blend": "scene.txt"}, "must be a .blend path inside the project"),
        ({"output_name": "../frame_####"}, "must be a file name with # marks"),
        ({"output_name": "frame"}, "must be a file name with # marks"),
        ({"device": "GPU"}, "Render device 'GPU' is not one of CPU, CUDA, OPTIX"),
    ],
    ids=[
        "format",
        "long scene",
        "empty scene",
        "dotdot",
        "absolute",
        "suffix",
        "slash",
        "no #",
        "device",
    ],
)
def test_render_settings_are_validated(settings: dict[str, str], message: str) -> None:
    with pytest.raises(TaskError, match=message):
        RenderSettings(**settings)  # type: ignore[arg-type]


def test_oversized_task_is_refused_before_sending() -> None:
    task = ScriptTask(FrameChunk(7, 9, 1), None, "x" * (MAX_MESSAGE_BYTES + 1))
    with pytest.raises(TaskError, match=r"task for frames 7-9 is \d+ bytes, over SQS's limit"):
        encode_task(task)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "not a Brenda task"),
        ("[1, 2]", "not a Brenda task"),
        ('{"brenda": 2}', "format version 2"),
        (
            '{"brenda": 1, "frames": {"start": 1, "end": 1, "step": 1}, "tile": null,'
            ' "kind": "video"}',
            "unknown kind 'video'",
        ),
        (
            '{"brenda": 1, "frames": {"start": 5, "end": 1, "step": 1}, "tile": null,'
            ' "kind": "script", "script": "x"}',
            "End frame 1 is before start frame 5",
        ),
    ],
    ids=["text", "list", "version", "kind", "frames"],
)
def test_decoding_bad_messages_says_why(body: str, message: str) -> None:
    with pytest.raises(TaskError, match=message):
        decode_task(body)


@pytest.mark.parametrize(
    ("ranges", "task_size", "tiles", "count"),
    [
        ([FrameRange(1, 100_000_000)], 1, None, 100_000_000),
        ([FrameRange(1, 30_000)], 1, (2, 2), 120_000),
    ],
    ids=["frames", "tiles"],
)
def test_an_absurd_push_is_refused_before_any_task_is_built(
    ranges: list[FrameRange], task_size: int, tiles: tuple[int, int] | None, count: int
) -> None:
    with pytest.raises(TaskError) as caught:
        chunks = chunk_frames(ranges, task_size)
        render_tasks(RenderSettings(), chunks, tile_grid(*tiles) if tiles else None)
    assert str(caught.value) == (
        f"That makes {count} tasks; Brenda sends at most 100000 at once: render more frames per "
        "task, or fewer frames at a time."
    )
    assert len(chunk_frames([FrameRange(1, 100_000_000)], 1000)) == 100_000


# Blender's own name for frame 7 of each format, as it writes it.
FRAME_PATHS = """
import json, os, sys, bpy
render = bpy.context.scene.render
render.filepath = "//frame_######"
names = {}
for name in json.loads(sys.argv[-1]):
    render.image_settings.file_format = name
    names[name] = os.path.basename(render.frame_path(frame=7))
print("NAMES " + json.dumps(names))
"""


@pytest.mark.slow
def test_frames_are_expected_under_the_names_blender_writes_them(tmp_path: Path) -> None:
    script = tmp_path / "names.py"
    script.write_text(FRAME_PATHS)
    host = [sys.executable, "-m", "brenda_node.bpy_host", "-b", "--python", str(script)]
    ran = subprocess.run(
        [*host, "--", json.dumps(IMAGE_FORMATS)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next(line for line in ran.stdout.splitlines() if line.startswith("NAMES "))
    blenders = json.loads(line.removeprefix("NAMES "))
    ours = {
        name: next(iter(frame_file_names(RenderSettings(file_format=name), [7])))
        for name in IMAGE_FORMATS
    }
    assert ours == blenders
