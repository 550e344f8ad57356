"""Read a ``.npz`` file someone else may have written: inspected before anything is allocated, no pickle.

``np.load`` trusts a file: it unpacks a zip bomb whole, allocates what an array's header declares before reading
it, and on a file that is not a zip at all falls back to pickle, whose refusal ("This file contains pickled
(object) data ... load it unsafely") reads like advice to do so. Datasets and checkpoints both arrive from other
machines (S3, a run folder copied in), so both read through here: the zip's members and their uncompressed sizes
(a bomb is refused by its compression ratio), each array's declared shape against the bytes its member really
holds, the total against the machine's memory; any problem is a one-line UserError naming the file and what it
should have been.
"""
from __future__ import annotations

import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from infra.errors import UserError
from infra.regular_files import check_regular_file

READ_ERRORS = (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error)
ZIP_MAGIC = b"PK\x03\x04"  # a .npz is a zip; an empty zip starts with its end record instead
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
# Deflate packs at most about 1,000 to 1; real image data, even mostly blank, packs far less, so a file that
# claims more than MAX_RATIO over RATIO_CHECKED_ABOVE uncompressed bytes is taken for a zip bomb.
MAX_RATIO = 200
RATIO_CHECKED_ABOVE = 256 * 1024 * 1024


def memory_bytes() -> int:
    """The machine's physical memory: no file that unpacks to more than this can be loaded."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _unreadable(path: Path, what: str, error) -> UserError:
    return UserError(f"{path}: not a readable .npz {what} ({' '.join(str(error).split())[:200]})")


def declared_sizes(path: str | os.PathLike, what: str, max_members: int) -> dict[str, int]:
    """The bytes each array of the .npz ``path`` (a ``what``: 'dataset', 'checkpoint') declares, checked against
    what the file really holds. Only the zip directory and each array's header are read."""
    path = Path(path)
    try:
        check_regular_file(path)  # a pipe is refused at once, never waited on
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what} file") from None
    except OSError as error:
        raise _unreadable(path, what, error) from None
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
        if magic not in (ZIP_MAGIC, EMPTY_ZIP_MAGIC):
            raise ValueError(f"it starts with {magic!r}, not with a zip archive's {ZIP_MAGIC!r}")
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > max_members:
                raise UserError(f"{path}: holds {len(members)} files; a {what} holds at most {max_members} arrays")
            _check_uncompressed(path, sum(member.file_size for member in members))
            return {member.filename.removesuffix(".npy"): _declared_bytes(path, archive, member) for member in members}
    except READ_ERRORS as error:
        raise _unreadable(path, what, error) from None


def read_npz(path: str | os.PathLike, what: str, max_members: int) -> dict[str, np.ndarray]:
    """Every array of the .npz ``path``, once :func:`declared_sizes` has passed it."""
    declared_sizes(path, what, max_members)
    return load_checked(path, what)


def load_checked(path: str | os.PathLike, what: str) -> dict[str, np.ndarray]:
    """Every array of the .npz ``path``, which :func:`declared_sizes` has passed (for callers that look at the
    sizes before reading)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except READ_ERRORS as error:
        raise _unreadable(path, what, error) from None


def _check_uncompressed(path: Path, total: int) -> None:
    size = path.stat().st_size
    if total > RATIO_CHECKED_ABOVE and total > MAX_RATIO * max(size, 1):
        raise UserError(f"{path}: {size} bytes that would unpack to {total} bytes (more than {MAX_RATIO} to 1); "
                        "refused as a zip bomb")
    if total > memory_bytes():
        raise UserError(f"{path}: unpacks to {total} bytes, more than this machine's {memory_bytes()} bytes of memory")


def _declared_bytes(path: Path, archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> int:
    with archive.open(member) as stream:
        try:
            version = npy_format.read_magic(stream)
        except ValueError:
            return member.file_size  # not an array: np.load reads it as the bytes it holds
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(stream)
        else:
            shape, _, dtype = npy_format.read_array_header_2_0(stream)
        declared = math.prod(shape) * dtype.itemsize
        held = member.file_size - stream.tell()
    if declared > held:
        raise UserError(f"{path}: array {member.filename.removesuffix('.npy')!r} declares shape {shape} of {dtype} "
                        f"({declared} bytes) but its file holds {held} bytes")
    return declared
