# SPDX-License-Identifier: GPL-3.0-or-later
"""``brenda-blender ARGS`` (``python -m brenda_node.bpy_host``): Blender's command line, run by
the ``bpy`` wheel.

Runs in its own process, never inside the node: this module imports bpy only when it renders.
It reads the Blender flags Brenda's task templates use, in order, as Blender does: ``-b``, a
``.blend`` file, ``-P/--python``, ``--python-expr``, ``--python-exit-code``, ``-S/--scene``,
``-E/--engine``, ``-F/--render-format``, ``-o/--render-output``, ``-x/--use-extension``,
``-t/--threads``, ``-s``, ``-e``, ``-j``, ``-f/--render-frame``, ``-a/--render-anim``; ``--``
ends them and leaves the rest to scripts. ``-v/--version`` prints ``Blender X.Y.Z`` as Blender
does, read from the wheel's metadata (without loading Blender). Like Blender 4.x it prints
``Fra:`` progress and ``Saved:`` lines, on Blender 5.x too (``render_script.relay_progress``).
One virtual environment per bpy wheel gives one ``brenda-blender`` per Blender version.
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from typing import Any, NoReturn

from .render_script import relay_progress, set_file_format

IGNORED_FLAGS = {"-b", "--background", "-noaudio", "--noaudio"}
# Whether the .blend files opened after the flag may run their own Python (drivers, registered
# scripts), as Blender's -y and -Y; without either, they may not (Blender's default).
AUTOEXEC_FLAGS = {"-y": True, "--enable-autoexec": True, "-Y": False, "--disable-autoexec": False}
EXIT_USAGE = 2


class UsageError(Exception):
    pass


class Host:
    """Applies Blender's command-line flags one after another to the loaded file."""

    def __init__(self, bpy: Any) -> None:
        self.bpy = bpy
        self.scene_name: str | None = None
        self.script_exit_code = 0

    @property
    def scene(self) -> Any:
        if self.scene_name is None:
            return self.bpy.context.scene
        return self.bpy.data.scenes[self.scene_name]

    def open(self, path: str) -> None:
        self.bpy.ops.wm.open_mainfile(filepath=path)
        self.scene_name = None

    def run_python(self, run: Callable[[], object]) -> None:
        try:
            run()
        except SystemExit:
            raise
        except BaseException:
            traceback.print_exc()
            if self.script_exit_code:
                sys.exit(self.script_exit_code)

    def render(self, frames: Sequence[int] | None) -> None:
        """Render the scene's frame range (``frames`` None) or the listed frames."""
        relay_progress(self.bpy)
        scene = self.scene
        if frames is None:
            self.bpy.ops.render.render(animation=True, scene=scene.name)
            return
        saved = (scene.frame_start, scene.frame_end, scene.frame_step)
        try:
            for frame in frames:
                scene.frame_start = scene.frame_end = frame
                scene.frame_step = 1
                self.bpy.ops.render.render(animation=True, scene=scene.name)
        finally:
            scene.frame_start, scene.frame_end, scene.frame_step = saved


def parse_frames(text: str, scene: Any) -> list[int]:
    """Blender's ``-f`` syntax: ``N``, ``N..M`` and comma lists of both."""
    frames: list[int] = []
    for item in text.split(","):
        first, dots, last = item.partition("..")
        try:
            start = int(first) if first else scene.frame_start
            end = (int(last) if last else scene.frame_end) if dots else start
        except ValueError:
            raise UsageError(f"-f {text}: frames must be numbers like 5, 1..10 or 1,3,5") from None
        frames.extend(range(start, end + 1))
    return frames


class Arguments:
    """Blender's arguments, read one at a time."""

    def __init__(self, arguments: Sequence[str]) -> None:
        self._values = iter(arguments)

    def __iter__(self) -> Iterator[str]:
        return self._values

    def value(self, flag: str) -> str:
        try:
            return next(self._values)
        except StopIteration:
            raise UsageError(f"{flag} needs a value") from None

    def number(self, flag: str) -> int:
        text = self.value(flag)
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"{flag} needs a whole number, not '{text}'") from None


def _python_file(host: Host, path: str) -> None:
    host.run_python(lambda: runpy.run_path(path, run_name="__main__"))


def _python_expression(host: Host, expression: str) -> None:
    host.run_python(lambda: exec(expression, {"__name__": "__main__"}))


def _scene(host: Host, name: str) -> None:
    if name not in host.bpy.data.scenes:
        raise UsageError(f"there is no scene named '{name}' in the file")
    host.scene_name = name


def _threads(host: Host, threads: int) -> None:
    render = host.scene.render
    render.threads_mode = "AUTO" if threads == 0 else "FIXED"
    if threads:
        render.threads = threads


def _setter(*attributes: str) -> Callable[[Host, Any], None]:
    """Set ``scene.<attributes...>`` to the flag's value."""

    def apply(host: Host, value: Any) -> None:
        target = host.scene
        for name in attributes[:-1]:
            target = getattr(target, name)
        setattr(target, attributes[-1], value)

    return apply


TEXT_FLAGS: dict[tuple[str, ...], Callable[[Host, str], None]] = {
    ("-P", "--python"): _python_file,
    ("--python-expr",): _python_expression,
    ("-S", "--scene"): _scene,
    ("-E", "--engine"): _setter("render", "engine"),
    ("-F", "--render-format"): lambda host, text: set_file_format(
        host.scene.render.image_settings, text
    ),
    ("-o", "--render-output"): _setter("render", "filepath"),
    ("-f", "--render-frame"): lambda host, text: host.render(parse_frames(text, host.scene)),
}
NUMBER_FLAGS: dict[tuple[str, ...], Callable[[Host, int], None]] = {
    ("--python-exit-code",): lambda host, code: setattr(host, "script_exit_code", code),
    ("-x", "--use-extension"): lambda host, flag: _setter("render", "use_file_extension")(
        host, flag != 0
    ),
    ("-t", "--threads"): _threads,
    ("-s", "--frame-start"): _setter("frame_start"),
    ("-e", "--frame-end"): _setter("frame_end"),
    ("-j", "--frame-jump"): _setter("frame_step"),
}
TEXT_BY_FLAG = {flag: apply for flags, apply in TEXT_FLAGS.items() for flag in flags}
NUMBER_BY_FLAG = {flag: apply for flags, apply in NUMBER_FLAGS.items() for flag in flags}


def execute(host: Host, arguments: Sequence[str]) -> None:
    """Apply ``arguments`` in order, like Blender's own command line."""
    values = Arguments(arguments)
    for argument in values:
        if argument == "--":
            return
        if argument in IGNORED_FLAGS:
            continue
        if argument in AUTOEXEC_FLAGS:
            host.bpy.context.preferences.filepaths.use_scripts_auto_execute = AUTOEXEC_FLAGS[
                argument
            ]
        elif argument == "--factory-startup":
            host.bpy.ops.wm.read_factory_settings(use_empty=False)
        elif argument in ("-a", "--render-anim"):
            host.render(None)
        elif argument in TEXT_BY_FLAG:
            TEXT_BY_FLAG[argument](host, values.value(argument))
        elif argument in NUMBER_BY_FLAG:
            NUMBER_BY_FLAG[argument](host, values.number(argument))
        elif argument.startswith("-"):
            raise UsageError(f"the Blender option {argument} is not supported by the bpy host")
        else:
            host.open(argument)


def version() -> str:
    """What ``blender --version`` prints first: ``Blender 4.5.15``."""
    try:
        return f"Blender {metadata.version('bpy')}"
    except metadata.PackageNotFoundError:
        import bpy  # noqa: PLC0415 - lazy bpy: only the Blender host loads Blender

        return f"Blender {bpy.app.version_string}"


USAGE = """usage: brenda-blender [-b] [FILE.blend] [OPTIONS] [-- SCRIPT ARGUMENTS]

Blender's command line, run by the bpy wheel of this Python. Options apply in order, as Blender's:
  -v, --version            print the Blender version (Blender X.Y.Z) and exit
  -b, --background         accepted (always in the background)
  -y/-Y, --enable-autoexec/--disable-autoexec   whether files opened after it may run Python
  --factory-startup        Blender's factory settings
  -P, --python FILE        run a Python script     --python-expr EXPR   run a Python expression
  --python-exit-code N     exit with N when a script fails (default: go on, exit 0)
  -S, --scene NAME         -E, --engine ENGINE     -F, --render-format FORMAT
  -o, --render-output PATH -x, --use-extension 0|1 -t, --threads N
  -s, --frame-start N      -e, --frame-end N       -j, --frame-jump N
  -f, --render-frame N|N..M|N,M   render frames    -a, --render-anim    render the frame range
"""


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] in (["-v"], ["--version"]):
        print(version())
        return 0
    if arguments[:1] in (["-h"], ["--help"]):
        print(USAGE, end="")
        return 0
    # Scripts run by -P read sys.argv as Blender sets it: the program, then every argument.
    sys.argv = ["blender", *arguments]
    import bpy  # noqa: PLC0415 - lazy bpy: only the Blender host loads Blender

    try:
        execute(Host(bpy), arguments)
    except UsageError as error:
        print(f"blender (bpy host): {error}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as error:
        # bpy operators raise RuntimeError for what Blender reports as "Error: ...".
        print(f"Error: {str(error).strip()}", file=sys.stderr)
        return 1
    return 0


def exit_status(request: SystemExit) -> int:
    """The status Python gives ``sys.exit(code)``, printing a message as Python does."""
    if request.code is None:
        return 0
    if isinstance(request.code, int):
        return request.code
    print(request.code, file=sys.stderr)
    return 1


def run() -> NoReturn:
    """The ``brenda-blender`` program: Blender's command line, then an exit without Blender's
    exit handlers."""
    try:
        status = main()
    except SystemExit as request:
        status = exit_status(request)
    sys.stdout.flush()
    sys.stderr.flush()
    # After a file with Python drivers, bpy 4.5's exit handlers can deadlock (a file-closing
    # thread's global state waits on itself). Everything is written by now: skip them, doing
    # the one thing they do that matters, removing Blender's temporary folder.
    loaded = sys.modules.get("bpy")
    if loaded is not None:
        shutil.rmtree(loaded.app.tempdir, ignore_errors=True)
    os._exit(status)


if __name__ == "__main__":
    run()
