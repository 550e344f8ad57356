"""The packed dataset format every stage after preprocessing reads.

One ``.npz`` file, loadable without pickle:

- ``x``: uint8 images, shape (N, H, W, C) with C = 1 (grey) or 3 (RGB);
- ``y`` (optional): int64 class indices, shape (N,);
- ``class_names`` (optional, with ``y``): unicode array, one name per class index;
- ``meta``: a JSON string (sources, counts, licences, how it was made).

A large dataset may be split into shards: ``name.npz`` then holds ``meta``, ``class_names``,
``shards`` (the shard file names) and ``generation`` (an id of this write), and each
``name.shard-<generation>-00000-of-00004.npz`` beside it holds a slice of ``x`` and ``y`` and the same
``generation``; :func:`load_dataset` reads them back as one dataset. A re-write puts its shards under new
names and replaces the index last, then deletes the old shards, so a write killed half-way leaves the old
dataset whole; a shard of another write found under a name the index lists is refused.

The walkthrough's float32 pickle (``X_train_56_1700.pkl``) can be written for old scripts and read back,
but only on request (``allow_pickle=True``): unpickling runs code, so it is only for files you made.
"""
from __future__ import annotations

import json
import math
import os
import pickle
import re
import secrets
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infra.atomic import atomic_write
from infra.errors import UserError


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
    *,
    shard_bytes: int | None = None,
) -> Path:
    """Write a dataset atomically; a failed write leaves any previous file intact.

    With ``shard_bytes``, images larger than that in total are split into shards of at most that size.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise UserError(f"{path}: a dataset file must end in .npz")
    check_images(x, str(path))
    labels = {}
    if y is not None:
        y = np.asarray(y, dtype=np.int64)
        if y.shape != (len(x),):
            raise UserError(f"{path}: labels have shape {y.shape}; expected ({len(x)},) to match the images")
        labels["y"] = y
        if class_names is not None:
            if y.size and (y.min() < 0 or y.max() >= len(class_names)):
                raise UserError(f"{path}: labels run {y.min()}..{y.max()} but there are {len(class_names)} class names")
            labels["class_names"] = np.array(class_names, dtype=str)
    shard_count = math.ceil(x.nbytes / shard_bytes) if shard_bytes and x.nbytes > shard_bytes else 1
    arrays = {"meta": np.array(json.dumps(meta or {}, sort_keys=True))}
    if shard_count == 1:
        _write_npz(path, x=x, **labels, **arrays)
        remove_stale_shards(path, keep=())
        return path
    generation = secrets.token_hex(4)
    names = []
    for index, rows in enumerate(np.array_split(np.arange(len(x)), shard_count)):
        name = f"{path.stem}.shard-{generation}-{index:05d}-of-{shard_count:05d}.npz"
        shard = {"x": x[rows[0] : rows[-1] + 1], "generation": np.array(generation)}
        if "y" in labels:
            shard["y"] = labels["y"][rows[0] : rows[-1] + 1]
        _write_npz(path.with_name(name), **shard)
        names.append(name)
    extra = {"class_names": labels["class_names"]} if "class_names" in labels else {}
    # The index goes last, in one rename: until then readers see the previous dataset and its shards.
    _write_npz(path, shards=np.array(names, dtype=str), generation=np.array(generation), **extra, **arrays)
    remove_stale_shards(path, keep=names)
    return path


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_write(path) as handle:
        np.savez_compressed(handle, **arrays)


def remove_stale_shards(path: str | os.PathLike, keep) -> None:
    """Delete the shard files beside ``path`` that its index does not name (``keep``): those of earlier
    writes of the same dataset, and of writes killed before their index was in place."""
    path = Path(path)
    pattern = re.compile(rf"{re.escape(path.stem)}\.shard-(?:[0-9a-f]{{8}}-)?\d{{5}}-of-\d{{5}}\.npz")
    for stale in path.parent.iterdir():
        if pattern.fullmatch(stale.name) and stale.name not in keep:
            stale.unlink(missing_ok=True)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise UserError(f"{path}: no such dataset file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise UserError(f"{path}: not a readable .npz dataset ({error})") from None


def shard_names(path: str | os.PathLike) -> list[str]:
    """The file names of the shards beside the dataset ``path`` (none for a one-file dataset).

    Only the index's ``shards`` array is read, so this is cheap on a large one-file dataset; a name that
    is not a plain file name (a path that would lead elsewhere) is a UserError.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such dataset file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = archive["shards"] if "shards" in archive.files else []
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise UserError(f"{path}: not a readable .npz dataset ({error})") from None
    return _plain_shard_names(path, names)


def _plain_shard_names(path: Path, names) -> list[str]:
    names = [str(name) for name in names]
    for name in names:
        if not name or Path(name).name != name or name.startswith("."):
            raise UserError(f"{path}: shard name {name!r} is not a plain file name beside the dataset")
    return names


def _join_shards(path: Path, names: np.ndarray, generation: np.ndarray | None) -> dict[str, np.ndarray]:
    names = _plain_shard_names(path, names)
    shards = [_read_npz(path.with_name(name)) for name in names]
    for name, shard in zip(names, shards):
        if "x" not in shard:
            raise UserError(f"{path.with_name(name)}: shard has no 'x' array")
        # Indexes written before shards carried a generation have none to compare.
        if generation is not None and str(shard.get("generation")) != str(generation):
            raise UserError(f"{path.with_name(name)}: belongs to another write of {path}, not to the one its "
                            "index describes; write (or pull) the dataset again")
    joined = {"x": np.concatenate([shard["x"] for shard in shards])}
    if all("y" in shard for shard in shards):
        joined["y"] = np.concatenate([shard["y"] for shard in shards])
    return joined


def legacy_pickle_path(folder: str | os.PathLike, x: np.ndarray) -> Path:
    """The walkthrough's file name: ``X_train_{height}_{count}.pkl``."""
    return Path(folder) / f"X_train_{x.shape[1]}_{len(x)}.pkl"


def save_legacy_pickle(folder: str | os.PathLike, x: np.ndarray) -> Path:
    """Write images as the walkthrough's pickled float32 (N, H, W, C) array with values 0..255."""
    check_images(x, str(folder))
    path = legacy_pickle_path(folder, x)
    with atomic_write(path) as handle:
        pickle.dump(x.astype(np.float32), handle, protocol=4)
    return path


def _load_legacy_pickle(path: Path) -> Dataset:
    try:
        array = np.load(path, allow_pickle=True)
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise UserError(f"{path}: not a readable pickled image array ({error})") from None
    if not isinstance(array, np.ndarray) or array.ndim != 4 or array.dtype.kind not in "fiu":
        raise UserError(f"{path}: holds {type(array).__name__}; expected a numeric (N, H, W, C) image array")
    x = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    check_images(x, str(path))
    return Dataset(x=x, meta={"converted_from": path.name, "format": "walkthrough float32 pickle"})


def load_dataset(path: str | os.PathLike, *, allow_pickle: bool = False) -> Dataset:
    """Read and check a dataset; any problem is a one-line UserError naming the file.

    A ``.pkl`` file (the walkthrough's format) is read only with ``allow_pickle=True``.
    """
    path = Path(path)
    if path.suffix == ".pkl":
        if not allow_pickle:
            raise UserError(
                f"{path}: is a pickle, and loading a pickle can run arbitrary code; "
                "pass --allow-pickle only for a file you made yourself"
            )
        if not path.is_file():
            raise UserError(f"{path}: no such dataset file")
        return _load_legacy_pickle(path)
    arrays = _read_npz(path)
    if "shards" in arrays:
        arrays.update(_join_shards(path, arrays["shards"], arrays.get("generation")))
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
