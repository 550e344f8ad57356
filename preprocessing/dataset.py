"""The packed dataset format every stage after preprocessing reads.

One ``.npz`` file, loadable without pickle:

- ``x``: uint8 images, shape (N, H, W, C) with C = 1 (grey) or 3 (RGB);
- ``y`` (optional): int64 class indices, shape (N,);
- ``class_names`` (optional, with ``y``): unicode array, one name per class index;
- ``meta``: a JSON string (sources, counts, licences, how it was made).
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infra.atomic import atomic_write
from infra.cli import UserError


@dataclass
class Dataset:
    x: np.ndarray
    y: np.ndarray | None = None
    class_names: list[str] | None = None
    meta: dict = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x.shape[1:])


def check_images(x: np.ndarray, source: str) -> None:
    """Raise a one-line UserError unless ``x`` is uint8 (N, H, W, 1|3) with N ≥ 1."""
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3) or len(x) == 0:
        raise UserError(
            f"{source}: images are {x.dtype} with shape {x.shape}; expected uint8 (N, H, W, C) with N >= 1 and C 1 or 3"
        )


def save_dataset(
    path: str | os.PathLike,
    x: np.ndarray,
    y: np.ndarray | None = None,
    class_names: list[str] | None = None,
    meta: dict | None = None,
) -> Path:
    """Write a dataset atomically; a failed write leaves any previous file intact."""
    path = Path(path)
    if path.suffix != ".npz":
        raise UserError(f"{path}: a dataset file must end in .npz")
    check_images(x, str(path))
    arrays = {"x": x, "meta": np.array(json.dumps(meta or {}, sort_keys=True))}
    if y is not None:
        y = np.asarray(y, dtype=np.int64)
        if y.shape != (len(x),):
            raise UserError(f"{path}: labels have shape {y.shape}; expected ({len(x)},) to match the images")
        arrays["y"] = y
        if class_names is not None:
            if y.size and (y.min() < 0 or y.max() >= len(class_names)):
                raise UserError(f"{path}: labels run {y.min()}..{y.max()} but there are {len(class_names)} class names")
            arrays["class_names"] = np.array(class_names, dtype=str)
    with atomic_write(path) as handle:
        np.savez_compressed(handle, **arrays)
    return path


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Read and check a dataset; any problem is a one-line UserError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such dataset file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise UserError(f"{path}: not a readable .npz dataset ({error})") from None
    if "x" not in arrays:
        raise UserError(f"{path}: has no 'x' array (found: {', '.join(sorted(arrays)) or 'nothing'})")
    x = arrays["x"]
    check_images(x, str(path))
    y = arrays.get("y")
    if y is not None and y.shape != (len(x),):
        raise UserError(f"{path}: 'y' has shape {y.shape}; expected ({len(x)},)")
    class_names = [str(name) for name in arrays["class_names"]] if "class_names" in arrays else None
    try:
        meta = json.loads(str(arrays["meta"])) if "meta" in arrays else {}
    except json.JSONDecodeError:
        raise UserError(f"{path}: 'meta' is not a JSON string") from None
    return Dataset(x=x, y=None if y is None else y.astype(np.int64), class_names=class_names, meta=meta)
