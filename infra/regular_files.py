"""Read a file a user, a crash or an attacker may have replaced: only a regular file, and only so many bytes.

``open()`` on a named pipe blocks until something writes to it, and ``/dev/zero`` never ends; either as a run's
``config.json`` would hang every reader, the web server's threads first. Opening without blocking and checking
the opened file (not the name, which can change in between) makes both one OSError the callers already report.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def read_regular_file(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of ``path``. FileNotFoundError when there is none; an OSError naming the problem when it is not
    a regular file (a pipe, device or socket) or holds more than ``max_bytes``."""
    descriptor = open_regular(path)
    with open(descriptor, "rb") as handle:
        size = os.fstat(descriptor).st_size
        if size > max_bytes:
            raise OSError(errno.EFBIG, f"{size} bytes, more than the {max_bytes} accepted", str(Path(path)))
        data = handle.read(max_bytes + 1)  # a file that grew since the check is cut at the limit too
    if len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"more than the {max_bytes} bytes accepted", str(Path(path)))
    return data


def check_regular_file(path: str | os.PathLike) -> None:
    """Raise as read_regular_file does unless ``path`` is a regular file, for readers that open it themselves
    (``np.load``); checked on the opened file, so a pipe is refused without waiting for a writer."""
    os.close(open_regular(path))


def open_regular(path: str | os.PathLike) -> int:
    """A blocking descriptor of ``path`` once it is known to be a regular file; a pipe is opened without waiting
    for a writer, then refused."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(Path(path)))
        os.set_blocking(descriptor, True)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor
