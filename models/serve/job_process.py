"""Run ``models.train`` as a server's job, bound to the server's life:

    python -m models.serve.job_process SERVER_PID [models.train arguments...]

The server stops its job itself when it is stopped (SIGTERM, Ctrl-C); this is the backstop for a server
that cannot (SIGKILL, a crash). On Linux the kernel is asked (prctl PR_SET_PDEATHSIG) to send the trainer
SIGTERM when the server's thread that started it ends, which the trainer answers as it does a cancel: a
checkpoint, then exit. The kernel may send it again as the trainer passes from one of the dying server's
threads to the next, so the trainer ignores further stops while it saves. A server already gone before that
request took effect means no training at all.
"""
from __future__ import annotations

import ctypes
import os
import runpy
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def stop_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        sys.exit(f"models.serve.job_process: the server (process {parent_pid}) is gone; not training")


def main() -> None:
    parent_pid, arguments = int(sys.argv[1]), sys.argv[2:]
    stop_with_parent(parent_pid)
    sys.argv = [sys.argv[0], *arguments]
    runpy.run_module("models.train", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
