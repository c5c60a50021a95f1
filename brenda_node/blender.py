# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a task with Blender, and read what it prints. No bpy module use.

The Blender is one of the node's (``blenders``): the one whose version saved the task's .blend,
the first one for template tasks. Its ``blender`` launcher goes first on the task's ``PATH``, so
that task templates saying ``blender -b *.blend ...`` work unchanged.

Every task runs in its own process group, so stopping a task stops Blender and anything the task
script started, not only the shell.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from brenda_node import render_script
from shared.core.blend_header import saved_by
from shared.core.errors import BrendaError
from shared.tasks.task import RenderTask, ScriptTask, Task

from .blenders import Blender, Blenders
from .processes import STOP_GRACE_SECONDS, kill_group, stop_process_group
from .render_script import DENOISE_MARK, DEVICE_MARK, DONE_MARK, OUTPUT_MARK, READY_MARK, SIZE_MARK
from .warm import WarmKey, WarmPool, project_version

log = logging.getLogger(__name__)

EXIT_GRACE_SECONDS = 30.0
"""How long Blender may take to exit once a structured task reported every frame."""
POLL_SECONDS = 0.005
ERROR_LINES_KEPT = 40
RENDER_SCRIPT = Path(render_script.__file__)

# From Blender 5.0 each line Blender logs starts with the time and the log's name:
# "00:00.298  render           | Saved: '/tmp/frame_0001.png'".
_LOG_PREFIX = re.compile(r"^(?:\d+:)?\d\d:\d\d\.\d{3}\s+[\w.]+\s*\| ")
_FRAME = re.compile(r"^Fra:(\d+)\b")
_SAMPLE = re.compile(r"\bSample (\d+)/(\d+)")
_SAVED = re.compile(r"^Saved: '(.*)'")
# After each frame: "Time: 00:01.23 (Saving: 00:00.01)", hours only when there are some.
_RENDER_TIME = re.compile(r"^\s*Time: (?:(\d+):)?(\d+):(\d+(?:\.\d+)?)\b")
# What Blender says when a linked library or data-block is missing (it renders on regardless).
_MISSING = re.compile(
    r"^Info: (?:Cannot find lib '(.*)'|LIB: (\w+): '(.*)' missing from '([^']*)')"
)
# A driver Blender would not run because the file's Python is not allowed, then its expression.
_DRIVER_BLOCKED = "enable auto-execution"
_DRIVER_FAILED = re.compile(r"^Error in PyDriver: expression failed: (.*)$")
_ERROR = re.compile(r"^(Error|ERROR|Traceback|.*Error:|.*failed|Blender quit)", re.IGNORECASE)


@dataclass(frozen=True)
class BlenderLine:
    """What one line of Blender's output says, for progress and logs."""

    text: str
    frame: int | None = None
    sample: tuple[int, int] | None = None
    saved: str | None = None
    render_seconds: float | None = None
    """What Blender says rendering (and saving) the last frame took."""
    device: str | None = None
    """What the render script said the task renders on (CPU, or a GPU backend and its cards)."""
    denoise: dict[str, Any] | None = None
    """How to denoise the frame once its tiles are assembled (a tile rendered noisy)."""
    output: str | None = None
    size: tuple[int, int] | None = None
    """The frame size a structured task's render script announced."""
    error: bool = False
    missing: str | None = None
    """A library or linked data-block Blender could not find."""
    driver_blocked: bool = False
    """Blender refused a driver's Python: the file's scripts may not run."""
    driver_failed: str | None = None
    """The expression of a driver that failed."""


def parse_line(line: str) -> BlenderLine:
    """Recognise Blender's frame and sample progress, saved files, and error lines (in the
    output of every Blender version from 4.2)."""
    text = _LOG_PREFIX.sub("", line, count=1)
    frame = _FRAME.match(text)
    sample = _SAMPLE.search(text)
    saved = _SAVED.match(text)
    missing = _MISSING.match(text)
    driver = _DRIVER_FAILED.match(text)
    took = _RENDER_TIME.match(text)
    return BlenderLine(
        text=line,
        frame=int(frame.group(1)) if frame else None,
        sample=(int(sample.group(1)), int(sample.group(2))) if sample else None,
        saved=saved.group(1) if saved else None,
        render_seconds=_seconds(took) if took else None,
        device=text[len(DEVICE_MARK) :] if text.startswith(DEVICE_MARK) else None,
        denoise=_json(text[len(DENOISE_MARK) :]) if text.startswith(DENOISE_MARK) else None,
        output=text[len(OUTPUT_MARK) :] if text.startswith(OUTPUT_MARK) else None,
        size=_size(text),
        error=bool(_ERROR.match(text)) and not frame,
        missing=_missing_text(missing) if missing else None,
        driver_blocked=_DRIVER_BLOCKED in text,
        driver_failed=driver.group(1) if driver else None,
    )


def _json(text: str) -> dict[str, Any] | None:
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _seconds(match: re.Match[str]) -> float:
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)


def _size(text: str) -> tuple[int, int] | None:
    if not text.startswith(SIZE_MARK):
        return None
    width, _, height = text.removeprefix(SIZE_MARK).partition(" ")
    return (int(width), int(height)) if width.isdigit() and height.isdigit() else None


def _missing_text(match: re.Match[str]) -> str:
    library, kind, name, source = match.groups()
    return f"library {library}" if library else f"{kind} '{name}' from {source}"


@dataclass
class RunResult:
    exit_code: int | None
    """None when the task was stopped before it ended."""
    seconds: float
    outputs: list[Path]
    render_seconds: float = 0.0
    """What Blender said rendering the frames took, summed."""
    denoise: dict[str, Any] | None = None
    """How to denoise the frame once its tiles are assembled (tiles rendered noisy)."""
    reported: list[str] = field(default_factory=list)
    """Files the render script reported as written (structured tasks)."""
    last_lines: list[str] = field(default_factory=list)
    last_error: str | None = None
    missing: list[str] = field(default_factory=list)
    """Libraries and linked data-blocks Blender said it could not find."""
    render_anyway: bool = False
    python_drivers: list[str] = field(default_factory=list)
    """Driver expressions Blender did not run because the file's Python was not allowed."""
    size: tuple[int, int] | None = None
    """The size every frame of a structured task must have."""
    watchdog: str | None = None
    """Why the node's watchdog stopped the task (too long, silent, hung at exit), if it did."""
    hung_at_exit: bool = False
    """A structured task reported every frame, then Blender did not exit: the frames count."""
    blender: Blender | None = None
    """The Blender that ran the task."""

    @property
    def stopped_by_node(self) -> bool:
        """Stopped from outside (signal, spot notice): the task goes back untouched."""
        return self.exit_code is None and self.watchdog is None and not self.hung_at_exit

    def failure(self) -> str | None:
        """Why this run counts as failed, or None if it succeeded."""
        if self.hung_at_exit:
            return None
        if self.watchdog is not None:
            return self.watchdog
        if self.exit_code is None:
            return "the task was stopped"
        tail = self.last_error or (self.last_lines[-1] if self.last_lines else "no output")
        if self.exit_code != 0:
            return f"the task exited with status {self.exit_code} ({tail})"
        if self.python_drivers:
            return (
                f"a driver needs Python, which this task does not allow "
                f"('{self.python_drivers[0]}'): add -y to the template's blender command, or "
                "push with --allow-python"
            )
        if self.missing and not self.render_anyway:
            found = "; ".join(self.missing)
            return f"Blender could not find {found} (pack the project with Brenda)"
        if not self.outputs:
            return f"the task exited 0 but wrote no output ({tail})"
        return None


def _frames_of(task: Task) -> int | None:
    """How many frames a structured task reports; None for templates (unknown)."""
    return len(task.chunk.frames()) if isinstance(task, RenderTask) else None


@dataclass
class Watchdog:
    """Stops a task that runs too long, prints nothing for too long, or hangs at exit."""

    timeout: float
    silence: float
    exit_grace: float
    frames: int | None
    started: float
    reason: str | None = None
    hung_at_exit: bool = False
    _all_reported: float | None = None

    def check(self, output: OutputReader, now: float) -> bool:
        """True when the task must be stopped now (``reason`` or ``hung_at_exit`` says why)."""
        if self.frames is not None and len(output.reported) >= self.frames:
            self._all_reported = self._all_reported or now
            if now - self._all_reported > self.exit_grace:
                self.hung_at_exit = True
                log.warning("Blender wrote every frame but did not exit: stopped; frames kept")
                return True
        if now - self.started > self.timeout:
            self.reason = f"the task ran past its timeout of {self.timeout:.0f} s"
        elif self.silence and now - max(output.last_seen, self.started) > self.silence:
            self.reason = (
                f"the task printed nothing for {self.silence:.0f} s and was stopped as hung "
                f"(last line: {output.lines[-1] if output.lines else 'none'})"
            )
        return self.reason is not None


@dataclass
class OutputReader:
    """What a task's output lines add up to: written files, errors, missing files."""

    on_line: Callable[[BlenderLine], None]
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=ERROR_LINES_KEPT))
    reported: list[str] = field(default_factory=list)
    last_error: str | None = None
    missing: list[str] = field(default_factory=list)
    python_drivers: list[str] = field(default_factory=list)
    size: tuple[int, int] | None = None
    """The image size the render script said the frames have."""
    render_seconds: float = 0.0
    denoise: dict[str, Any] | None = None
    last_seen: float = 0.0
    """When the last line arrived (monotonic seconds)."""
    _driver_blocked: bool = False

    def feed(self, text: str) -> None:
        line = parse_line(text)
        self.last_seen = time.monotonic()
        self.lines.append(text)
        if line.error:
            self.last_error = text
        if line.output is not None:
            self.reported.append(line.output)
        if line.size is not None:
            self.size = line.size
        if line.render_seconds is not None:
            self.render_seconds += line.render_seconds
        if line.denoise is not None:
            self.denoise = line.denoise
        if line.missing is not None:
            self.missing.append(line.missing)
        self._driver_blocked = self._driver_blocked or line.driver_blocked
        if line.driver_failed is not None and self._driver_blocked:
            self.python_drivers.append(line.driver_failed)
            self._driver_blocked = False
        log.debug("| %s", text)
        self.on_line(line)


@dataclass(frozen=True)
class _Attempt:
    """One run of a task: where it writes, its environment, its output so far, its watchdog."""

    outdir: Path
    environ: dict[str, str]
    output: OutputReader
    watch: Watchdog
    stop: threading.Event
    blender: Blender


@dataclass
class TaskRunner:
    """Runs tasks in a project folder, each with the node's Blender for its .blend."""

    project: Path
    blenders: Blenders
    temp_folder: Path
    environ: Mapping[str, str] = field(default_factory=lambda: task_environment(os.environ))
    timeout: float = 21600.0
    """Seconds a task may run (TASK_TIMEOUT; a structured task may carry its own)."""
    silence: float = 1800.0
    """Seconds a task may print nothing before it counts as hung (TASK_SILENCE); 0: no limit."""
    exit_grace: float = EXIT_GRACE_SECONDS
    warm: WarmPool | None = None
    """The node's warm Blender for structured tasks (WARM_BLENDER); None: a Blender per task."""

    def blender_for(self, task: Task) -> Blender:
        """The Blender that renders ``task``: for a structured task, the one of the version that
        saved its .blend (read on the node: the file is the truth, whatever the job says). A
        file whose header cannot be read goes to the first Blender, which says what is wrong."""
        if isinstance(task, ScriptTask):
            return self.blenders.default
        blend = task_blend(task, self.project)
        try:
            wanted = saved_by(blend)
        except BrendaError:
            return self.blenders.default
        if task.settings.blender and task.settings.blender != wanted:
            log.warning(
                "%s was saved by Blender %s, not %s as its job says",
                blend.name,
                wanted,
                task.settings.blender,
            )
        return self.blenders.for_version(wanted, newer_ok=task.settings.blender_newer_ok)

    def command_for(
        self, task: Task, outdir: Path, script_path: Path, blender: Blender
    ) -> list[str]:
        if isinstance(task, ScriptTask):
            script_path.write_text(task.script, encoding="utf-8")
            return ["/bin/bash", str(script_path)]
        return render_command(task, self.project, outdir, blender.launcher_folder / "blender")

    def run(
        self,
        task: Task,
        outdir: Path,
        *,
        stop: threading.Event,
        on_line: Callable[[BlenderLine], None] = lambda line: None,
    ) -> RunResult:
        """Run ``task`` writing into ``outdir``; stops it (whole process group) when ``stop`` is
        set. Returns what happened; never raises for a failing task, only when it cannot start
        (no Blender of its version)."""
        blender = self.blender_for(task)
        if outdir.exists():
            shutil.rmtree(outdir)
        outdir.mkdir(parents=True)
        environ = self._environment(
            blender,
            OUTDIR=str(outdir),
            TMP=str(self.temp_folder),
            TMPDIR=str(self.temp_folder),
            PYTHONUNBUFFERED="1",
        )
        self.temp_folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        output = OutputReader(on_line)
        watch = Watchdog(
            self._timeout_of(task), self.silence, self.exit_grace, _frames_of(task), started
        )
        attempt = _Attempt(outdir, environ, output, watch, stop, blender)
        if self.warm is not None and isinstance(task, RenderTask):
            exit_code = self._run_warm(task, attempt)
        else:
            exit_code = self._run_cold(task, attempt)
        return RunResult(
            exit_code=exit_code,
            seconds=time.monotonic() - started,
            outputs=stored_outputs(outdir),
            render_seconds=output.render_seconds,
            denoise=output.denoise,
            reported=output.reported,
            last_lines=list(output.lines),
            last_error=output.last_error,
            missing=output.missing,
            render_anyway=isinstance(task, RenderTask) and task.settings.render_anyway,
            python_drivers=output.python_drivers,
            size=output.size,
            watchdog=watch.reason,
            hung_at_exit=watch.hung_at_exit,
            blender=blender,
        )

    def _run_cold(self, task: Task, attempt: _Attempt) -> int | None:
        """A process of its own for the task; its exit status, or None if it was stopped."""
        outdir, output, watch, stop = attempt.outdir, attempt.output, attempt.watch, attempt.stop
        script = outdir.with_suffix(".sh")
        command = self.command_for(task, outdir, script, attempt.blender)
        try:
            process = subprocess.Popen(
                command,
                cwd=self.project,
                env=attempt.environ,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except (OSError, ValueError) as error:
            reason = error.strerror if isinstance(error, OSError) else str(error)
            raise BrendaError(f"Could not start {command[0]}: {reason}.") from error

        def read() -> None:
            assert process.stdout is not None
            for raw in process.stdout:
                output.feed(raw.decode("utf-8", "replace").rstrip())

        reader = threading.Thread(target=read, name="brenda-blender-output", daemon=True)
        reader.start()
        stopped = False
        while process.poll() is None:
            if stop.wait(POLL_SECONDS) or watch.check(output, time.monotonic()):
                stop_process_group(process)
                stopped = True
                break
        # Anything the task left running in the background dies with it.
        kill_group(process.pid, signal.SIGKILL)
        reader.join(timeout=STOP_GRACE_SECONDS)
        script.unlink(missing_ok=True)
        return None if stopped else process.returncode

    def _run_warm(self, task: RenderTask, attempt: _Attempt) -> int | None:
        """The task handed to the warm Blender for its file (started if needed); 0 once it says
        the task is done, its exit status if it ended, None if it was stopped."""
        assert self.warm is not None
        output, watch, stop, environ = attempt.output, attempt.watch, attempt.stop, attempt.environ
        blend, arguments = render_arguments(task, self.project, attempt.outdir)
        launcher = attempt.blender.launcher_folder / "blender"
        key = WarmKey(
            self.project,
            project_version(self.project, blend),
            blend,
            task.settings.scene,
            task.settings.allow_python,
            launcher,
        )
        command = blender_arguments(launcher, key.blend, key.allow_python)
        command += [json.dumps({"serve": True})]
        warm = self.warm.take(key, command, environ)
        if not warm.send(json.dumps(arguments)):  # it ended since its last task
            self.warm.discard()
            warm = self.warm.take(key, command, environ)
            warm.send(json.dumps(arguments))
        while True:
            if stop.is_set() or watch.check(output, time.monotonic()):
                self.warm.kill()
                return None
            try:
                line = warm.lines.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if line is None:
                self.warm.discard()
                return warm.process.returncode or 1  # it ended before saying the task was done
            if line == DONE_MARK:
                self.warm.finished(warm)
                return 0
            if line != READY_MARK:
                output.feed(line)

    def denoise(self, noisy: Path, target: Path, after: dict[str, Any], blender: Blender) -> None:
        """Denoise an assembled frame (a multilayer OpenEXR of noisy tiles and their denoising
        passes) into ``target``, in a Blender of its own (the tiles' version)."""
        settings = {"noisy": str(noisy), "output": str(target), "after": after}
        command = blender_arguments(blender.launcher_folder / "blender", None)
        command.append(json.dumps({"denoise": settings}))
        try:
            done = subprocess.run(
                command,
                cwd=noisy.parent,
                env=self._environment(blender),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise BrendaError(f"Denoising {target.name} failed: {error}.") from error
        if done.returncode != 0 or not target.is_file():
            lines = (done.stdout + done.stderr).strip().splitlines()
            raise BrendaError(
                f"Denoising {target.name} failed: {lines[-1] if lines else 'no output'}."
            )

    def _environment(self, blender: Blender, **extra: str) -> dict[str, str]:
        """What Blender runs with: the task environment, its launcher first on PATH."""
        path = self.environ.get("PATH", os.defpath)
        return {**self.environ, "PATH": f"{blender.launcher_folder}{os.pathsep}{path}", **extra}

    def _timeout_of(self, task: Task) -> float:
        if isinstance(task, RenderTask) and task.settings.timeout is not None:
            return float(task.settings.timeout)
        return self.timeout


# What a task may see of the node's environment: what Blender, Python and the shell need. AWS and
# Brenda settings (keys on a local farm) and anything else stay with the node.
TASK_ENVIRONMENT = {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM"}
TASK_ENVIRONMENT |= {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "DISPLAY"}
TASK_ENVIRONMENT_PREFIXES = ("LC_", "BLENDER_", "OCIO", "CYCLES_", "CUDA_", "NVIDIA_", "OPENBLAS_")


def task_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of ``environ`` a task runs with."""
    return {
        name: value
        for name, value in environ.items()
        if name in TASK_ENVIRONMENT or name.startswith(TASK_ENVIRONMENT_PREFIXES)
    }


def stored_outputs(outdir: Path) -> list[Path]:
    """The regular files a task wrote into ``outdir``; links are skipped, so a task cannot have
    the node upload a file from elsewhere (a link to ~/.aws/credentials)."""
    outputs = []
    for path in sorted(outdir.rglob("*")):
        if path.is_symlink():
            log.warning("%s is a link, not stored: only regular files are outputs", path.name)
        elif path.is_file():
            outputs.append(path)
    return outputs


def task_blend(task: RenderTask, project: Path) -> Path:
    """The .blend a structured task renders: the one it names, else the project's one."""
    return project / task.settings.blend if task.settings.blend else find_blend(project)


def render_arguments(task: RenderTask, project: Path, outdir: Path) -> tuple[Path, dict[str, Any]]:
    """The .blend a structured task renders, and the render script's settings for it."""
    blend = task_blend(task, project)
    return blend, {
        "frames": [task.chunk.start, task.chunk.end, task.chunk.step],
        "tile": None
        if task.tile is None
        else [task.tile.min_x, task.tile.max_x, task.tile.min_y, task.tile.max_y],
        "format": task.settings.file_format,
        "scene": task.settings.scene,
        "render_anyway": task.settings.render_anyway,
        "allow_python": task.settings.allow_python,
        "output": str(outdir / task.output_name),
        "device": task.settings.device,
        "blender_newer_ok": task.settings.blender_newer_ok,
        "environment": None
        if task.settings.environment is None
        else asdict(task.settings.environment),
    }


def blender_arguments(blender: Path, blend: Path | None, allow_python: bool = False) -> list[str]:
    """Blender opening ``blend`` (if any) and running the render script, up to its settings."""
    # Before the file: whether its own Python (drivers, registered scripts) may run.
    opening = (
        ["--enable-autoexec" if allow_python else "--disable-autoexec", str(blend)]
        if blend is not None
        else []
    )
    return [
        str(blender),
        "-b",
        *opening,
        "--python-exit-code",
        "1",
        "-P",
        str(RENDER_SCRIPT),
        "--",
    ]


def render_command(task: RenderTask, project: Path, outdir: Path, blender: Path) -> list[str]:
    """Blender's command line for a structured task: the render script does the work."""
    blend, arguments = render_arguments(task, project, outdir)
    return [*blender_arguments(blender, blend, task.settings.allow_python), json.dumps(arguments)]


def find_blend(project: Path) -> Path:
    """The one .blend file at the top of the project."""
    blends = sorted(path for path in project.glob("*.blend") if path.is_file())
    if len(blends) == 1:
        return blends[0]
    if not blends:
        raise BrendaError(f"The project {project} has no .blend file at its top level.")
    names = ", ".join(path.name for path in blends)
    raise BrendaError(
        f"The project {project} has several .blend files ({names}): name one in the task."
    )
