"""Training images for the trainer, from wherever the user keeps them.

``load_training_data`` accepts a ``.npz`` dataset (local or ``s3://``), a folder of images (raster and SVG,
optionally in class subfolders), a folder of MNIST-format IDX gzip files, or the names ``fashion_mnist`` /
``mnist``. Every source becomes a :class:`preprocessing.dataset.Dataset` (uint8 NHWC images, optional labels and
class names), and every problem is a one-line UserError.

A folder of images is built into a dataset by the preprocessing stage (:func:`preprocessing.build.build_folders`,
the defaults of ``python -m preprocessing.build``) and cached in the user cache folder under a key of the
folder's file names, sizes and modification times and the build options: the next run reuses it, and a changed
folder is built again.
"""
from __future__ import annotations

import dataclasses
import glob
import gzip
import hashlib
import json
import os
import re
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from infra import storage
from infra.errors import UserError
from infra.user_cache import user_cache_dir
from preprocessing.build import build_folders
from preprocessing.clean import CleanOptions, skipped_examples
from preprocessing.colour_rule import COLOUR_DISTANCE, MIN_SECOND_COLOUR
from preprocessing.dataset import Dataset, check_images, load_dataset
from preprocessing.remote_dataset import pull_dataset

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
DIGIT_CLASSES = [str(digit) for digit in range(10)]
NAMED_DATASETS = {"fashion_mnist": FASHION_MNIST_CLASSES, "mnist": DIGIT_CLASSES}
IDX_IMAGES = "train-images-idx3-ubyte"
IDX_LABELS = "train-labels-idx1-ubyte"
DATA_DIR_ENV = "LOGOGAN_DATA_DIR"
IDX_UBYTE = 0x08  # the IDX type code of unsigned bytes, the only type MNIST-format files use

SOURCES_HELP = ("a .npz dataset, an s3:// URL of one, a folder of images, a folder of IDX gzip files, fashion_mnist "
                "or mnist")
DATA_FOLDER_HELP = (f"a data folder holds images (PNG, JPEG, GIF, WebP, BMP, TIFF, SVG ...; class subfolders become "
                    f"labels) or MNIST-format {IDX_IMAGES}.gz and {IDX_LABELS}.gz")
_IDX_NAME = re.compile(r"-idx\d-ubyte(\.gz)?$")
# Bump when what build_folders makes from the same files changes, so that older cached builds are not reused.
# 2: blank images skipped, light marks put on black, UTF-16 and gzipped SVGs; 3: SVGs that link an image skipped
FOLDER_BUILD_VERSION = 3


def load_training_data(source: str, data_dir: str | None = None, image_size: int | None = None) -> Dataset:
    """The dataset ``source`` names; ``image_size`` resizes the images to image_size x image_size."""
    if source in NAMED_DATASETS:
        dataset = _load_named(source, data_dir)
    elif storage.is_s3_url(source):
        dataset = load_dataset(_cached_download(source))
    elif Path(source).is_dir():
        dataset = load_data_folder(Path(source), image_size)
    elif Path(source).suffix == ".npz":
        dataset = load_dataset(source)
    else:
        raise UserError(f"{source}: not a training data source; give {SOURCES_HELP}")
    return resize_dataset(dataset, image_size) if image_size else dataset


def with_clusters(dataset: Dataset, clusters: int | None) -> Dataset:
    """``data_clusters``: an unlabelled dataset's images labelled with their k-means clusters
    (preprocessing.clusters), ``meta["clusters"]`` saying how many; said in one line. The same images give the
    same clusters, so a resumed run and models.evaluate find the run's classes again. Labels of the data's own
    are kept."""
    if not clusters:
        return dataset
    if dataset.y is not None:
        print(f"data_clusters = {clusters}: the data has labels of its own ({len(dataset.class_names or [])} "
              "classes); training on those", file=sys.stderr)
        return dataset
    from preprocessing.clusters import cluster_images, cluster_names

    labels, count = cluster_images(dataset.x, clusters)
    sizes = np.bincount(labels)
    print(f"data_clusters = {clusters}: {len(labels)} images in {count} clusters of {sizes.min()}-{sizes.max()} "
          "images (k-means on 16 px thumbnails)", file=sys.stderr)
    return dataclasses.replace(dataset, y=labels, class_names=cluster_names(count),
                               meta={**dataset.meta, "clusters": count})


def _cached_download(url: str) -> Path:
    """Download an s3:// dataset (with its shards) once into the cache folder; later runs reuse the verified copy."""
    bucket, key = storage.split_s3_url(url)
    if not key.endswith(".npz"):
        raise UserError(f"{url}: an s3:// training source must be a .npz dataset")
    cache = user_cache_dir("s3", bucket, key)
    index, _ = pull_dataset(url, cache)
    return index


def _load_named(name: str, data_dir: str | None) -> Dataset:
    """A local copy (data_dir, then $LOGOGAN_DATA_DIR) first; else Keras' download, which caches in ~/.keras."""
    class_names = NAMED_DATASETS[name]
    for folder in filter(None, (data_dir, os.environ.get(DATA_DIR_ENV))):
        for candidate in (Path(folder), Path(folder) / name, Path(folder) / name.replace("_", "-")):
            if _idx_file(candidate, IDX_IMAGES).exists():
                return load_idx_folder(candidate, class_names)
    import keras  # only here: loading a local dataset should not pay for importing Keras

    loader = getattr(keras.datasets, name)
    try:
        (x, y), _ = loader.load_data()
    except Exception as error:  # Keras reports a failed download as a bare Exception
        raise UserError(
            f"{name}: no local copy and the download failed ({str(error).splitlines()[0]}); put "
            f"{IDX_IMAGES}.gz and {IDX_LABELS}.gz in a folder and pass it with --data-dir or ${DATA_DIR_ENV}"
        ) from None
    return Dataset(x=x[..., None], y=y.astype(np.int64), class_names=class_names, meta={"source": name})


def load_data_folder(folder: Path, image_size: int | None = None) -> Dataset:
    """An IDX folder, or a folder of images built (at ``image_size``, else the build's default) and cached."""
    if any(_IDX_NAME.search(path.name) for path in folder.iterdir()):
        return load_idx_folder(folder)
    return load_image_folder(folder, image_size or CleanOptions.size)


def load_image_folder(folder: Path, size: int) -> Dataset:
    """The dataset ``python -m preprocessing.build`` makes of ``folder`` at ``size`` px, built once per content;
    says in one line on stderr whether it was built or reused."""
    cached = cached_build_path(folder, size)
    if cached.is_file():
        try:
            dataset = load_dataset(cached)
        except UserError:
            pass  # a damaged cache entry is built again
        else:
            print(f"data: reusing {len(dataset.x)} images built from {folder}, cached in {cached}", file=sys.stderr)
            return dataset
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        built = build_folders([folder], cached, size, progress=sys.stderr.isatty())
    except UserError as error:
        # The build names its flag (--input FOLDER: ...); here the folder came from --data / data_path.
        raise UserError(f"{str(error).removeprefix('--input ')}; {DATA_FOLDER_HELP}") from None
    _remove_older_builds(cached)
    summary = built.summary[0].lower() + built.summary[1:]
    print(f"data: built {len(built.dataset.x)} images from {folder} into {cached} ({summary})", file=sys.stderr)
    for line in skipped_examples(built.dataset.meta["skipped"], built.dataset.meta["skipped_why"]):
        print(line, file=sys.stderr)
    return built.dataset


def cached_build_path(folder: Path, size: int) -> Path:
    """Where the build of ``folder`` as it is now lives: named by the folder and size, keyed by a hash of every
    file's name and bytes, the folder's location and the build options. The bytes, not sizes and modification
    times: a file replaced by one of the same size whose time was kept (``cp -p``, ``rsync -a``, an unpacked
    archive) must not train on the old build; reading a folder of logos costs far less than building it."""
    resolved = folder.resolve()
    content = hashlib.sha256()
    for path in sorted(resolved.rglob("*")):
        if path.is_file():
            with path.open("rb") as file:
                digest = hashlib.file_digest(file, "sha256").hexdigest()
            content.update(f"{path.relative_to(resolved).as_posix()}\0{digest}\n".encode())
    content.update(json.dumps({"size": size, "version": FOLDER_BUILD_VERSION}).encode())
    return user_cache_dir("datasets", f"{_build_prefix(resolved, size)}-{content.hexdigest()[:16]}.npz")


def _build_prefix(resolved: Path, size: int) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", resolved.name)[:40] or "folder"
    return f"{name}-{size}px-{hashlib.sha256(str(resolved).encode()).hexdigest()[:8]}"


def _remove_older_builds(current: Path) -> None:
    """Earlier builds of the same folder at the same size (their .npz, shards and contact sheet) are stale."""
    prefix = current.name.rsplit("-", 1)[0] + "-"
    keep = current.name.removesuffix(".npz")
    for path in current.parent.glob(f"{glob.escape(prefix)}*"):
        if not path.name.startswith(keep + "."):
            path.unlink(missing_ok=True)


def _idx_file(folder: Path, stem: str) -> Path:
    gzipped = folder / f"{stem}.gz"
    return gzipped if gzipped.exists() or not (folder / stem).exists() else folder / stem


def load_idx_folder(folder: Path, class_names: list[str] | None = None) -> Dataset:
    """MNIST-format training images and labels; class names default by the folder's name (fashion or digits)."""
    images_path, labels_path = _idx_file(folder, IDX_IMAGES), _idx_file(folder, IDX_LABELS)
    if not images_path.exists():
        raise UserError(f"{folder}: no {IDX_IMAGES}.gz in this folder; an IDX data folder holds {IDX_IMAGES}.gz "
                        f"and {IDX_LABELS}.gz")
    x = read_idx(images_path, ndim=3)[..., None]
    check_images(x, str(images_path))
    y = read_idx(labels_path, ndim=1).astype(np.int64) if labels_path.exists() else None
    if y is not None and len(y) != len(x):
        raise UserError(f"{labels_path}: holds {len(y)} labels but {images_path.name} holds {len(x)} images")
    if y is not None and class_names is None:
        class_names = FASHION_MNIST_CLASSES if "fashion" in folder.resolve().name.lower() else None
        class_names = class_names or [str(index) for index in range(int(y.max()) + 1)]
    if y is not None and y.max() >= len(class_names):
        raise UserError(f"{labels_path}: labels run up to {y.max()} but there are {len(class_names)} classes")
    return Dataset(x=x, y=y, class_names=class_names if y is not None else None, meta={"source": str(folder)})


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """One IDX file of unsigned bytes with ``ndim`` dimensions (gzip-compressed or not)."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise UserError(f"{path}: not a readable gzip file ({error})") from None
    if len(raw) < 4 + 4 * ndim or raw[:2] != b"\0\0" or raw[2] != IDX_UBYTE or raw[3] != ndim:
        raise UserError(f"{path}: not an IDX file of unsigned bytes with {ndim} dimension(s) (bad header)")
    shape = tuple(int.from_bytes(raw[4 + 4 * axis : 8 + 4 * axis], "big") for axis in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise UserError(f"{path}: the header promises {shape} bytes' worth of data but the file holds {body.size} bytes")
    return body.reshape(shape)


def resize_dataset(dataset: Dataset, size: int) -> Dataset:
    """Resize every image to ``size`` x ``size`` (Lanczos), e.g. Fashion-MNIST 28 -> 32 px."""
    if dataset.x.shape[1:3] == (size, size):
        return dataset
    grey = dataset.x.shape[-1] == 1
    resized = np.stack([
        np.asarray(Image.fromarray(image[..., 0] if grey else image).resize((size, size), Image.Resampling.LANCZOS))
        for image in dataset.x
    ])
    x = resized[..., None] if grey else resized
    return Dataset(x=x, y=dataset.y, class_names=dataset.class_names, meta={**dataset.meta, "resized_to": size})


BACKGROUND_SHARE = 0.8  # of the images that must share one border colour for palette_background 'auto' to fix it
BACKGROUND_TOLERANCE = 24  # levels of 255 within which a border pixel counts as that colour


def shared_background(x: np.ndarray) -> tuple[str | None, float]:
    """The colour ('#rrggbb') that at least BACKGROUND_SHARE of the images have all around their border (nine in
    ten border pixels within BACKGROUND_TOLERANCE of it), or None; and the share of the images that have it.
    Logos flattened onto white give '#ffffff'; logos on tiles of many colours give None."""
    sample = x[np.linspace(0, len(x) - 1, min(len(x), 2000)).astype(int)].astype(np.int16)
    if sample.shape[-1] == 1:
        sample = np.repeat(sample, 3, axis=-1)
    border = np.concatenate([sample[:, 0], sample[:, -1], sample[:, :, 0], sample[:, :, -1]], axis=1)  # (N, P, 3)
    medians = np.median(border, axis=1)  # (N, 3): each image's border colour
    # The most common of them, to within a bin of 16 levels: a median of colours can be a colour no image has.
    bins, which, counts = np.unique(medians // 16, axis=0, return_inverse=True, return_counts=True)
    candidate = medians[which.reshape(-1) == np.argmax(counts)].mean(axis=0)
    close = np.abs(border - candidate).max(axis=-1) <= BACKGROUND_TOLERANCE  # (N, P)
    share = float(np.mean(close.mean(axis=1) >= 0.9))
    if share < BACKGROUND_SHARE:
        return None, share
    return "#" + "".join(f"{int(round(value)):02x}" for value in np.clip(candidate, 0, 255)), share


FLAT_TOLERANCE = 12  # levels of 255 within which a pixel equals its right and lower neighbours (not an AA edge)


def multi_colour_share(x: np.ndarray) -> float:
    """The share of the images whose mark has two or more colours. An image's background is the median colour of
    its border; its mark, the flat pixels (equal to their right and lower neighbours, so that the blend of an
    anti-aliased edge is no colour of its own) further than COLOUR_DISTANCE from it; the mark is multi-colour when
    at least MIN_SECOND_COLOUR of them lie further than COLOUR_DISTANCE from its most common colour. Single-colour
    icons on white give about 0; brand logos in their own colours (tiles with a glyph, two-colour marks) about a
    half."""
    sample = x[np.linspace(0, len(x) - 1, min(len(x), 2000)).astype(int)].astype(np.int32)
    if sample.shape[-1] == 1:
        sample = np.repeat(sample, 3, axis=-1)
    inner = sample[:, :-1, :-1]
    flat = ((np.abs(inner - sample[:, :-1, 1:]).max(axis=-1) <= FLAT_TOLERANCE)
            & (np.abs(inner - sample[:, 1:, :-1]).max(axis=-1) <= FLAT_TOLERANCE))
    border = np.concatenate([sample[:, 0], sample[:, -1], sample[:, :, 0], sample[:, :, -1]], axis=1)
    backgrounds = np.median(border, axis=1)[:, None, None]  # (N, 1, 1, 3)
    mark = flat & (np.sqrt(((inner - backgrounds) ** 2).sum(axis=-1)) > COLOUR_DISTANCE)  # (N, H-1, W-1)
    # Each mark's most common colour, to within 8 levels per channel: one bincount over (image, bin) pairs.
    bins = (inner >> 5) @ np.array([64, 8, 1]) + 512 * np.arange(len(sample))[:, None, None]
    counts = np.bincount(bins[mark], minlength=512 * len(sample)).reshape(len(sample), 512)
    in_top = mark & (bins == (counts.argmax(axis=1) + 512 * np.arange(len(sample)))[:, None, None])
    common = (inner * in_top[..., None]).sum(axis=(1, 2)) / np.maximum(in_top.sum(axis=(1, 2)), 1)[:, None]
    second = mark & (np.sqrt(((inner - common[:, None, None]) ** 2).sum(axis=-1)) > COLOUR_DISTANCE)
    marks = mark.sum(axis=(1, 2))
    multi = (marks >= 16) & (second.sum(axis=(1, 2)) >= MIN_SECOND_COLOUR * marks)  # fewer than 16: no mark to speak of
    return float(multi.mean())
