"""Checks, made before any work starts, that a command can write where its flags say.

Writing happens late (after minutes of rendering or downloading) and deep (in :mod:`infra.atomic`), where
a folder given as a file, or a place the user cannot write to, would surface as a traceback. Each check
names the flag and what is wrong in one :class:`~infra.errors.UserError` line instead.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from infra.errors import UserError


def check_output_file(path: str | os.PathLike, flag: str) -> Path:
    """``path`` can be written as a file: it is not a folder, and its folder exists or can be made."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a folder; give the path of a file to write")
    _check_can_write_in(path.parent, flag, path)
    return path


def check_output_folder(path: str | os.PathLike, flag: str) -> Path:
    """``path`` can hold new files: it is a folder, or does not exist yet and can be made."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: is a file; give a folder")
    _check_can_write_in(path, flag, path)
    return path


def check_output_location(path: str | os.PathLike, flag: str) -> Path:
    """``path`` can be written, whether it names a file or a folder (existing or to be made)."""
    path = Path(path)
    _check_can_write_in(path if path.is_dir() else path.parent, flag, path)
    return path


def _check_can_write_in(folder: Path, flag: str, given: Path) -> None:
    existing = next(candidate for candidate in (folder, *folder.parents) if os.path.lexists(candidate))
    if not existing.is_dir():
        raise UserError(f"{flag} {given}: {existing} is a file, not a folder")
    try:
        descriptor, probe = tempfile.mkstemp(dir=existing, prefix=".write-probe-")
    except OSError as error:
        raise UserError(f"{flag} {given}: cannot write in {existing} ({error.strerror}); choose a folder you can "
                        "write to") from None
    os.close(descriptor)
    os.unlink(probe)
