"""One process of a multi-process run, watched by a thin parent that turns the runtime's crash into one line.

When a process of a run dies, JAX's distributed runtime ends the others itself: its coordination service
misses the heartbeats (or its coordinator vanishes) and aborts each survivor from a C++ thread with a glog
dump, where no Python handler runs. So ``models.train`` with ``--coordinator`` runs the training as a child
of this parent, which passes on its output without the runtime's log lines and, if the child is aborted that
way, says so in one line and exits 1. Signals reach the child, so Ctrl-C and SIGTERM still checkpoint.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

CHILD_MARK = "LOGOGAN_SUPERVISED"  # set in the child: it trains instead of supervising again
RUNTIME_LOG_LINE = re.compile(r"^([IWEF]\d{4} |\[Gloo\]|    @ |\*\*\* Check failure|WARNING: All log messages)")
RUNTIME_ERROR_LINE = re.compile(r"^[EF]\d{4} ")
FATAL_MARK = "Terminating process because the JAX distributed service detected fatal errors"


def is_child() -> bool:
    return os.environ.get(CHILD_MARK) == "1"


def run_supervised(argv: list[str]) -> int:
    """Run ``python -m models.train argv`` as a child; its exit status, or 1 with one line if the runtime killed it."""
    child = subprocess.Popen([sys.executable, "-m", "models.train", *argv], env={**os.environ, CHILD_MARK: "1"},
                             stderr=subprocess.PIPE, text=True, errors="replace")
    forward = lambda number, frame: child.send_signal(number)  # noqa: E731 - the handler is this one call
    previous = {number: signal.signal(number, forward) for number in (signal.SIGINT, signal.SIGTERM)}
    runtime_reason, runtime_failing = None, False
    try:
        for line in child.stderr:
            if FATAL_MARK in line:
                runtime_reason = "the JAX distributed runtime lost contact with it"
            # Once the runtime logs errors, its messages run over several lines; pass on only the trainer's own.
            runtime_failing = runtime_failing or RUNTIME_ERROR_LINE.match(line) is not None
            if line.startswith("models.train:") or not (runtime_failing or RUNTIME_LOG_LINE.match(line)):
                sys.stderr.write(line)
                sys.stderr.flush()
        status = child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if status == -signal.SIGABRT and runtime_reason:
        print(f"models.train: error: another process of this run stopped ({runtime_reason}); start all processes "
              "again with --resume to continue from the last checkpoint", file=sys.stderr)
        return 1
    return status if status >= 0 else 128 - status
