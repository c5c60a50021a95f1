# SPDX-License-Identifier: GPL-3.0-or-later
"""What every Brenda command shares: argument errors, error printing, logging, progress bars.

No bpy module use. Every command follows one table of exit statuses (the README's): 0 done, 1 the
work could not be done (a BrendaError, printed as one line), 2 the command line is wrong (nothing
was done), 130 interrupted (Ctrl-C). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Column

from .. import __version__
from ..core.errors import BrendaError, MissingSetting, UsageError
from ..core.progress import Progress

EXIT_DONE = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
OUR_LOGGERS = ("shared", "brenda_node")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with Brenda's one-line usage errors (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (run '{self.prog} -h' for usage)\n")


def help_text(docstring: str) -> str:
    """A module docstring as ``--help`` shows it: without reStructuredText's double backticks."""
    return docstring.replace("``", "")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="configuration file (default: $BRENDA_CONFIG, else ~/.brenda.conf)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log what Brenda does, step by step"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")


class _PrefixedFormatter(logging.Formatter):
    def __init__(self, prog: str) -> None:
        super().__init__()
        self.prog = prog

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"{self.prog}: {level}{record.getMessage()}"


def configure_logging(prog: str, *, verbose: bool) -> None:
    """Send our loggers (only ours) to stderr as ``prog: warning: ...`` lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrefixedFormatter(prog))
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(logging.INFO if verbose else logging.WARNING)
        logger.propagate = False


def run_command(prog: str, main: Callable[[Sequence[str]], int], argv: Sequence[str]) -> int:
    """Run ``main`` with Brenda's error handling; returns the exit status."""
    configure_logging(prog, verbose=False)
    try:
        return main(argv)
    except UsageError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrendaError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


@contextmanager
def usage_errors() -> Iterator[None]:
    """Errors raised while reading the command line's values are usage errors (exit status 2);
    a setting the values need that is not set is not the command line's fault (exit status 1)."""
    try:
        yield
    except (UsageError, MissingSetting):
        raise
    except BrendaError as error:
        raise UsageError(str(error)) from error


@contextmanager
def progress_bar(unit: str = "tasks") -> Iterator[Progress]:
    """A Progress shown as a rich bar on stderr when it is a terminal."""

    console = Console(stderr=True)
    # A long description (a job's queue is named after it) may take a third of the line: left
    # to take more, it squeezed the bar and the count to "20…" on an 80-column terminal.
    description = Column(max_width=max(10, console.width // 3), no_wrap=True, overflow="ellipsis")
    columns = (
        TextColumn("{task.description}", table_column=description),
        BarColumn(bar_width=None, table_column=Column(ratio=1)),
        MofNCompleteColumn(),
        TextColumn(unit),
        TaskProgressColumn(),
        TimeRemainingColumn(),
    )
    with RichProgress(*columns, console=console, disable=not console.is_terminal) as bar:
        bar_task = bar.add_task("", total=None)

        def show(progress: Progress) -> None:
            bar.update(
                bar_task,
                description=progress.description,
                total=progress.total,
                completed=progress.done,
            )

        yield Progress(on_change=show)


def print_plan(summary: list[str], boot_script: str | None, *, dry_run: bool) -> None:
    """What a launch will do; with a dry run also the boot script, and that nothing happened."""
    for line in summary:
        print(line)
    if dry_run:
        if boot_script:
            print("Startup script:")
            print(boot_script, end="")
        print("Dry run: nothing was launched.")
