"""The contract every command keeps: bad input ends with one line on stderr, never a traceback.

Each stage's module defines ``main(argv) -> int`` and ends with::

    if __name__ == "__main__":
        cli.run(main)

Code anywhere below ``main`` raises :class:`~infra.errors.UserError` for input a user can fix (a file, a
flag, a config key); ``run`` prints it as ``<command>: error: <message>`` and exits with status 2, the
status argparse uses for bad flags. A bad flag is reported the same way: one line naming it and pointing
to ``--help``, instead of argparse's full usage. Ctrl-C exits with 130 after whatever cleanup the
command's own handlers did; a command whose cleanup must also run on SIGTERM (kill, systemd, a closed tmux
pane's ``kill-session``) wraps its work in :func:`sigterm_as_interrupt`.
"""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator, NoReturn, Sequence

from infra import quiet
from infra.errors import UserError

__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "UserError", "check_counts", "check_size_and_margin", "command_name",
           "run", "sigterm_as_interrupt"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def command_name() -> str:
    """``models.train`` for ``python -m models.train``, ``models.serve`` for a package's ``__main__``; the
    script name otherwise."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        return spec.name.removesuffix(".__main__")
    return sys.argv[0].rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else "logogan"


def check_size_and_margin(size: int, margin: float) -> None:
    """The --size and --margin flags of every stage that fits marks to a square (rasterize, clean, the logo
    dataset builders): a side of 8 px or more, a margin of 0 to 0.4 of the side."""
    if size < 8:
        raise UserError(f"--size {size} is too small; use 8 or more")
    if not 0 <= margin <= 0.4:
        raise UserError(f"--margin {margin} is outside 0..0.4")


def check_seconds(flag: str, value: float, most: float) -> None:
    """A time limit flag: more than 0 and at most ``most`` seconds (written so that NaN fails it too)."""
    if not 0 < value <= most:
        raise UserError(f"{flag} {value} must be more than 0 and at most {most:g} seconds")


def check_counts(**flags: int | None) -> None:
    """Count flags given by their names with ``_`` for ``-`` (``limit=args.limit``): each one given is 1 or
    more."""
    for name, value in flags.items():
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} {value} must be 1 or more")


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    raise UserError(f"{' '.join(message.split())}; see {parser.prog} --help")


@contextlib.contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    """While a command runs, argparse reports a bad flag as a UserError instead of printing its usage.

    Patched here, once, so that every command's own ``ArgumentParser`` keeps the contract unchanged.
    """
    original = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = _usage_error
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM stops the command as Ctrl-C does (a KeyboardInterrupt in the main thread),
    so the same cleanup runs for both and the command exits with 130."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set a handler; a caller on another thread keeps its own
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> NoReturn:
    """Call ``main`` and turn its outcome into an exit status and, for bad input, one line on stderr."""
    quiet.install()  # the backends' start-up log lines stay off stderr (see infra.quiet)
    try:
        with _one_line_usage_errors():
            status = main(argv)
    except UserError as error:
        print(f"{command_name()}: error: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        print(f"{command_name()}: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(status or 0)
