"""Writes that matter (datasets, checkpoints, manifests) appear whole or not at all.

A file is written to a temporary name in the same folder (``.NAME.partial``), flushed to disk, then renamed
over the target: a crash or Ctrl-C mid-write leaves the previous version in place, never a truncated one.
A write killed outright (SIGKILL, power loss) cannot remove its temporary file; the next write to the same
target finds it and deletes it, with any other leftovers of that target. The writer holds a lock on its
temporary file until it is renamed, and the kernel drops that lock when the process dies, so only files
whose writer is gone are deleted; a second writer of the same target at the same time writes beside the
first under a unique name (``.NAME.xxxxxxxx.partial``).
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

# Temporary files are created readable by the owner only; finished files get the usual umask-based mode.
# Read once at import, since reading the umask means briefly changing it.
_UMASK = os.umask(0)
os.umask(_UMASK)
PARTIAL_SUFFIX = ".partial"
# A writer locks its file just after creating it; an empty, unlocked file this young may be in that gap.
_JUST_CREATED_S = 5.0


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", durable: bool = True) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit, move it over ``path``.

    ``durable``: flush the file to disk before the rename (an fsync). Without it the rename is still atomic for
    every reader, but a power loss may lose the newest version: for files rewritten often whose next version
    soon follows (a run's status.json at every log step), where the fsync would cost more than it keeps."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = _claim_temporary(target)
    try:
        with os.fdopen(fd, mode) as handle:  # closing it, after the rename, drops the lock
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o666 & ~_UMASK)
            os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _claim_temporary(target: Path) -> tuple[int, str]:
    """A new, locked temporary file for ``target``: ``.NAME.partial`` unless a live writer holds that name."""
    usual = target.with_name(f".{target.name}{PARTIAL_SUFFIX}")
    for attempt in range(2):
        try:
            fd = os.open(usual, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if attempt == 0 and remove_leftovers(target):
                continue  # it was a killed writer's leftover: the name is free now
            break
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd, str(usual)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=PARTIAL_SUFFIX)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd, temporary


def remove_leftovers(target: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of earlier writes to ``target`` whose writer is no longer running."""
    target = Path(target)
    pattern = re.compile(rf"\.{re.escape(target.name)}(?:\.[a-z0-9_]{{8}})?{re.escape(PARTIAL_SUFFIX)}")
    try:
        names = [name for name in os.listdir(target.parent) if pattern.fullmatch(name)]
    except OSError:
        return []
    removed = []
    for name in names:
        leftover = target.parent / name
        if _abandoned(leftover):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
                removed.append(leftover)
    return removed


def _abandoned(path: Path) -> bool:
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


def write_text(path: str | os.PathLike, text: str, durable: bool = True) -> None:
    with atomic_write(path, "w", durable=durable) as handle:
        handle.write(text)


def write_json(path: str | os.PathLike, value: object, durable: bool = True) -> None:
    write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n", durable=durable)
