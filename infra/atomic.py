"""Writes that matter (datasets, checkpoints, manifests) appear whole or not at all.

A file is written to a temporary name in the same folder (``.NAME.xxxxxxxx.partial``), flushed to disk,
then renamed over the target: a crash or Ctrl-C mid-write leaves the previous version in place, never a
truncated one. A write killed outright (SIGKILL, power loss) cannot remove its temporary file; the next
write to the same target does. The writer holds a lock on its temporary file until it is renamed, and
the kernel drops that lock when the process dies, so only files whose writer is gone are swept.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator

# mkstemp creates files readable by the owner only; finished files get the usual umask-based mode instead.
# Read once at import, since reading the umask means briefly changing it.
_UMASK = os.umask(0)
os.umask(_UMASK)
PARTIAL_SUFFIX = ".partial"
# A writer locks its file just after creating it; an empty, unlocked file this young may be in that gap.
_JUST_CREATED_S = 5.0


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit, move it over ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=PARTIAL_SUFFIX)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until the file is closed, or its writer dies
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            os.chmod(temporary, 0o666 & ~_UMASK)
            os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def remove_leftovers(target: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of earlier writes to ``target`` whose writer is no longer running."""
    target = Path(target)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}{re.escape(PARTIAL_SUFFIX)}")
    try:
        candidates = [entry for entry in os.scandir(target.parent) if pattern.fullmatch(entry.name)]
    except OSError:
        return []
    removed = []
    for entry in candidates:
        if _abandoned(entry.path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _abandoned(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # its writer still holds the lock
    else:
        info = os.fstat(fd)
        return info.st_size > 0 or time.time() - info.st_mtime > _JUST_CREATED_S
    finally:
        os.close(fd)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def write_json(path: str | os.PathLike, value: object) -> None:
    write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")
