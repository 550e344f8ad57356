"""The packed dataset format every stage after preprocessing reads.

One ``.npz`` file, loadable without pickle:

- ``x``: uint8 images, shape (N, H, W, C) with C = 1 (grey) or 3 (RGB);
- ``y`` (optional): int64 class indices, shape (N,);
- ``class_names`` (optional, with ``y``): unicode array, one name per class index;
- ``meta``: a JSON string (sources, counts, licences, how it was made).

Every file is inspected before anything is allocated (:mod:`infra.npz_files`: the zip's members and their
uncompressed sizes, each array's declared shape against the bytes its member holds, the total against the
machine's memory); ``meta`` is parsed with limits on nesting and digits.

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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infra.atomic import atomic_write
from infra.bounded_json import loads_bounded
from infra import npz_files
from infra.errors import UserError, shown

MIB = 1024 * 1024
MAX_SIDE = 4096  # pixels; datasets hold icons and logos, tens to hundreds of pixels a side
MAX_ASPECT = 16  # longer side over shorter side
MAX_CLASSES = 1000  # a conditional network holds an embedding row per class; ImageNet's count is plenty here
MAX_CLASS_NAME = 200  # characters
MAX_MEMBERS = 16  # arrays in one .npz: x, y, class_names, meta, shards, generation, and room to grow
MAX_SHARDS = 100_000
MAX_META_BYTES = 16 * MIB


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
    """Raise a one-line UserError unless ``x`` is uint8 (N, H, W, 1|3) with N ≥ 1 and sane sides."""
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3) or len(x) == 0:
        raise UserError(
            f"{source}: images are {x.dtype} with shape {x.shape}; expected uint8 (N, H, W, C) with N >= 1 and C 1 or 3"
        )
    check_sides(x.shape[1], x.shape[2], source)


def check_sides(height: int, width: int, source: str) -> None:
    """Raise a one-line UserError unless an image of ``height`` x ``width`` is one a dataset can hold."""
    if min(height, width) < 1 or max(height, width) > MAX_SIDE or max(height, width) > MAX_ASPECT * min(height, width):
        raise UserError(f"{source}: images are {height}x{width} pixels; expected sides of 1 to {MAX_SIDE} pixels, "
                        f"the longer at most {MAX_ASPECT} times the shorter")


def check_labels(y: np.ndarray, class_names: list[str] | None, source: str) -> None:
    """Raise a one-line UserError unless every label is a whole number naming one of at most MAX_CLASSES
    classes, and the class names (when given) are distinct and can be typed (``--class NAME``, ``?class=``)."""
    if y.dtype.kind not in "iu":
        raise UserError(f"{source}: labels are {y.dtype}; expected whole numbers (class indices)")
    if class_names is not None:
        check_class_names(class_names, source)
    if not y.size:
        return
    low, high = int(y.min()), int(y.max())
    if high >= MAX_CLASSES:
        raise UserError(f"{source}: labels run up to {high}; at most {MAX_CLASSES} classes (0..{MAX_CLASSES - 1}) "
                        "are supported")
    if class_names is not None and (low < 0 or high >= len(class_names)):
        raise UserError(f"{source}: labels run {low}..{high} but there are {len(class_names)} class names, so "
                        f"0..{len(class_names) - 1} are allowed")
    if low < 0:
        raise UserError(f"{source}: labels run {low}..{high}; class indices are 0 or more")


def check_class_names(class_names: list[str], source: str) -> None:
    if len(class_names) > MAX_CLASSES:
        raise UserError(f"{source}: {len(class_names)} class names; at most {MAX_CLASSES} classes are supported")
    for name in class_names:
        if not name.strip() or len(name) > MAX_CLASS_NAME or not name.isprintable():
            raise UserError(f"{source}: class name {shown(name)} cannot be asked for by name; a class name is 1 to "
                            f"{MAX_CLASS_NAME} printable characters, not only spaces")
    repeated = sorted(name for name, count in Counter(class_names).items() if count > 1)
    if repeated:
        raise UserError(f"{source}: class name {shown(repeated[0])} is given to two classes; class names must differ")


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
        check_labels(y, class_names, str(path))
        if class_names is not None:
            labels["class_names"] = np.array(class_names, dtype=str)
    shard_count = math.ceil(x.nbytes / shard_bytes) if shard_bytes and x.nbytes > shard_bytes else 1
    arrays = {"meta": np.array(json.dumps(meta or {}, sort_keys=True))}
    if shard_count == 1:
        _write_npz(path, x=x, **labels, **arrays)
        remove_stale_shards(path, keep=())
        return path
    generation = secrets.token_hex(4)
    names = []
    try:
        for index, rows in enumerate(np.array_split(np.arange(len(x)), shard_count)):
            name = f"{path.stem}.shard-{generation}-{index:05d}-of-{shard_count:05d}.npz"
            shard = {"x": x[rows[0] : rows[-1] + 1], "generation": np.array(generation)}
            if "y" in labels:
                shard["y"] = labels["y"][rows[0] : rows[-1] + 1]
            names.append(name)
            _write_npz(path.with_name(name), **shard)
        extra = {"class_names": labels["class_names"]} if "class_names" in labels else {}
        # The index goes last, in one rename: until then readers see the previous dataset and its shards.
        _write_npz(path, shards=np.array(names, dtype=str), generation=np.array(generation), **extra, **arrays)
    except BaseException:
        # Shards of a write that failed would only fill the disk that made it fail; the old dataset never
        # named them.
        for name in names:
            path.with_name(name).unlink(missing_ok=True)
        raise
    remove_stale_shards(path, keep=names)
    return path


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    try:
        with atomic_write(path) as handle:
            np.savez_compressed(handle, **arrays)
    except OSError as error:
        raise UserError(f"{path}: cannot be written ({error.strerror or error}); the dataset there before, if "
                        "any, is unchanged and nothing of this write was kept") from None


def remove_stale_shards(path: str | os.PathLike, keep) -> None:
    """Delete the shard files beside ``path`` that its index does not name (``keep``): those of earlier
    writes of the same dataset, and of writes killed before their index was in place."""
    path = Path(path)
    pattern = re.compile(rf"{re.escape(path.stem)}\.shard-(?:[0-9a-f]{{8}}-)?\d{{5}}-of-\d{{5}}\.npz")
    for stale in path.parent.iterdir():
        if pattern.fullmatch(stale.name) and stale.name not in keep:
            stale.unlink(missing_ok=True)


def declared_sizes(path: Path) -> dict[str, int]:
    """The bytes each array of the dataset ``path`` declares, checked against what the file really holds
    (:mod:`infra.npz_files`): a zip bomb or a file larger than memory is refused before anything is allocated."""
    return npz_files.declared_sizes(path, "dataset", MAX_MEMBERS)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    sizes = declared_sizes(path)
    if sizes.get("meta", 0) > MAX_META_BYTES:
        raise UserError(f"{path}: 'meta' is {sizes['meta']} bytes; at most {MAX_META_BYTES} are accepted")
    return npz_files.load_checked(path, "dataset")


def shard_names(path: str | os.PathLike) -> list[str]:
    """The file names of the shards beside the dataset ``path`` (none for a one-file dataset).

    Only the index's ``shards`` array is read, so this is cheap on a large one-file dataset; a name that
    is not a plain file name (a path that would lead elsewhere) is a UserError.
    """
    path = Path(path)
    if "shards" not in declared_sizes(path):
        return []
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = archive["shards"]
    except npz_files.READ_ERRORS as error:
        raise UserError(f"{path}: not a readable .npz dataset ({' '.join(str(error).split())[:200]})") from None
    return _plain_shard_names(path, names)


def _plain_shard_names(path: Path, names) -> list[str]:
    names = [str(name) for name in np.ravel(names)]
    if len(names) > MAX_SHARDS:
        raise UserError(f"{path}: names {len(names)} shards; a dataset has at most {MAX_SHARDS}")
    seen = set()
    for name in names:
        if not name or Path(name).name != name or name.startswith("."):
            raise UserError(f"{path}: shard name {name!r} is not a plain file name beside the dataset")
        if name in seen:
            raise UserError(f"{path}: names the shard {name} more than once; each shard is one slice of the dataset")
        seen.add(name)
    return names


def _join_shards(path: Path, names: np.ndarray, generation: np.ndarray | None) -> dict[str, np.ndarray]:
    names = _plain_shard_names(path, names)
    total = sum(sum(declared_sizes(path.with_name(name)).values()) for name in names)
    if total > npz_files.memory_bytes():
        raise UserError(f"{path}: its {len(names)} shards hold {total} bytes, more than this machine's "
                        f"{npz_files.memory_bytes()} bytes of memory")
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
    class_names = [str(name) for name in np.ravel(arrays["class_names"])] if "class_names" in arrays else None
    if y is not None:
        check_labels(y, class_names, str(path))
    meta = loads_bounded(str(arrays["meta"]), f"{path}: 'meta'") if "meta" in arrays else {}
    if not isinstance(meta, dict):
        raise UserError(f"{path}: 'meta' is JSON {type(meta).__name__}; expected an object")
    return Dataset(x=x, y=None if y is None else y.astype(np.int64), class_names=class_names, meta=meta)
