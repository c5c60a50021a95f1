# SPDX-License-Identifier: GPL-3.0-or-later
"""The render script of structured tasks, run inside Blender: ``blender -b FILE -P THIS -- JSON``.

It runs in Blender's Python (the ``blender`` executable or the bpy host), never in the node, and
imports bpy only when run. The JSON after ``--`` holds the frames ``[start, end, step]``, the tile
``[min_x, max_x, min_y, max_y]`` or null, the image format, the scene (null: the active one) and
the output path with ``#`` marks. A tile renders only its region, in a full-size image (border
render, not cropped) as Brenda's subframe template does. After rendering it prints
``BRENDA-OUTPUT: <path>`` for each frame file that exists, which is how the node knows every
frame was written.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any

OUTPUT_MARK = "BRENDA-OUTPUT: "


def arguments() -> dict[str, Any]:
    try:
        return dict(json.loads(sys.argv[sys.argv.index("--") + 1]))
    except (ValueError, IndexError) as error:
        raise SystemExit(
            f"Error: the render script needs its settings after '--' ({error})"
        ) from None


def main() -> None:
    # Blender's own module, used as Blender runs it (the add-on is type-checked against stubs).
    bpy: Any = importlib.import_module("bpy")

    settings = arguments()
    name = settings["scene"]
    if name is not None and name not in bpy.data.scenes:
        raise SystemExit(f"Error: the file has no scene named '{name}'")
    scene = bpy.data.scenes[name] if name is not None else bpy.context.scene
    render = scene.render
    render.image_settings.file_format = settings["format"]
    render.filepath = settings["output"]
    render.use_file_extension = True
    tile = settings["tile"]
    render.use_border = tile is not None
    if tile is not None:
        render.use_crop_to_border = False
        render.border_min_x, render.border_max_x, render.border_min_y, render.border_max_y = tile
    start, end, step = settings["frames"]
    scene.frame_start, scene.frame_end, scene.frame_step = start, end, step
    bpy.ops.render.render(animation=True, scene=scene.name)
    for frame in range(start, end + 1, step):
        path = render.frame_path(frame=frame)
        if os.path.isfile(path):
            print(f"{OUTPUT_MARK}{path}", flush=True)


if __name__ == "__main__":
    main()
