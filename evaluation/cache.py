"""Per-dataset cache of what evaluation derives from the real images (features, statistics, classifiers).

Entries are keyed by a hash of the images' bytes (plus labels and whatever else the result depends on),
so a changed dataset never reuses stale numbers and repeated evaluations only embed the generated images.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np

from infra.atomic import atomic_write
from infra.npz_files import READ_ERRORS
from infra.user_cache import user_cache_dir

CACHE_ENV = "LOGOGAN_EVAL_CACHE"


def default_cache_dir() -> Path:
    """$LOGOGAN_EVAL_CACHE, else eval in the user cache folder (infra.user_cache: ~/.cache/logogan/eval)."""
    return Path(os.environ.get(CACHE_ENV) or user_cache_dir("eval"))


def content_hash(*arrays: np.ndarray | None, extra: str = "") -> str:
    """sha256 over each array's dtype, shape and bytes (None counts as absent), then ``extra``."""
    digest = hashlib.sha256()
    for array in arrays:
        if array is None:
            digest.update(b"none;")
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(memoryview(array).cast("B"))
    digest.update(extra.encode())
    return digest.hexdigest()


def cached_arrays(path: Path, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays stored at ``path``, or ``compute()``'s result, written there atomically for next time.

    An unreadable entry (a crash mid-write of an older version, a foreign file) is recomputed, not trusted.
    """
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files}
        except READ_ERRORS:
            pass
    arrays = compute()
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)
    return arrays
