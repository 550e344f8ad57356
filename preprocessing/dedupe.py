"""Remove duplicate images from a dataset: exact copies by pixel hash, near copies by perceptual hash.

    python -m preprocessing.dedupe --input data/logos_56_raw.npz --hamming 4 --out data/logos_56.npz
"""
from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fft
from PIL import Image

from infra import cli
from infra.errors import UserError
from preprocessing.dataset import Dataset, load_dataset
from preprocessing.pack import add_output_arguments, check_output_arguments, report_written, write_packed
from preprocessing.provenance import take

DEFAULT_HAMMING = 4
HASH_SIDE = 8  # 8x8 DCT coefficients: 64 bits
HASH_SOURCE_SIDE = 32  # imagehash's default: hash_size * highfreq_factor 4
HASH_BATCH = 4096  # images hashed together: bounds memory on large datasets


@dataclass
class Duplicates:
    keep: list[int] = field(default_factory=list)
    exact: list[tuple[int, int]] = field(default_factory=list)  # (removed, copy of)
    near: list[tuple[int, int, int]] = field(default_factory=list)  # (removed, near copy of, distance)


def pixel_digest(image: np.ndarray) -> bytes:
    return hashlib.blake2b(image.tobytes(), digest_size=16).digest()


def perceptual_hashes(x: np.ndarray) -> np.ndarray:
    """ImageHash's 64-bit ``phash`` of every (H, W, C) uint8 image, as uint64.

    Same steps as ``imagehash.phash`` (greyscale, 32×32 antialiased, 2-D DCT, low 8×8 above their
    median), but the DCT runs over a stack of images at once instead of per image: several times faster.
    """
    return np.concatenate(
        [_hash_stack(x[start : start + HASH_BATCH]) for start in range(0, len(x), HASH_BATCH)]
    ).astype(np.uint64)


def _hash_thumbnail(image: np.ndarray) -> np.ndarray:
    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).convert("L")
    return np.asarray(picture.resize((HASH_SOURCE_SIDE, HASH_SOURCE_SIDE), Image.Resampling.LANCZOS))


def _hash_stack(images: np.ndarray) -> np.ndarray:
    thumbnails = np.stack([_hash_thumbnail(image) for image in images]).astype(np.float64)
    coefficients = scipy.fft.dct(scipy.fft.dct(thumbnails, axis=1), axis=2)[:, :HASH_SIDE, :HASH_SIDE]
    low = coefficients.reshape(len(images), -1)
    bits = low > np.median(low, axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8").ravel()


def find_duplicates(x: np.ndarray, hamming: int | None = DEFAULT_HAMMING) -> Duplicates:
    """Which images to keep; ``hamming=None`` looks for exact copies only."""
    found = Duplicates()
    first_with_digest: dict[bytes, int] = {}
    codes = perceptual_hashes(x) if hamming is not None else None
    kept_hashes = np.zeros(len(x), dtype=np.uint64)
    for index in range(len(x)):
        digest = pixel_digest(x[index])
        if digest in first_with_digest:
            found.exact.append((index, first_with_digest[digest]))
            continue
        first_with_digest[digest] = index
        if codes is not None:
            code = codes[index]
            kept = len(found.keep)
            if kept:
                distances = np.bitwise_count(kept_hashes[:kept] ^ code)
                nearest = int(np.argmin(distances))
                if distances[nearest] <= hamming:
                    found.near.append((index, found.keep[nearest], int(distances[nearest])))
                    continue
            kept_hashes[kept] = code
        found.keep.append(index)
    return found


def dedupe(dataset: Dataset, hamming: int | None = DEFAULT_HAMMING) -> tuple[Dataset, Duplicates]:
    """The dataset without duplicates; its meta names each removed image and what it copied."""
    found = find_duplicates(dataset.x, hamming)
    sources = dataset.meta.get("sources")
    name = (lambda index: sources[index]) if isinstance(sources, list) and len(sources) == len(dataset.x) else int
    report = {
        "hamming": hamming,
        "exact": [{"removed": name(removed), "copy_of": name(kept)} for removed, kept in found.exact],
        "near": [
            {"removed": name(removed), "copy_of": name(kept), "distance": distance}
            for removed, kept, distance in found.near
        ],
    }
    return take(dataset, found.keep, {"dedupe": report}), found


def describe_duplicates(found: Duplicates, total: int) -> str:
    return (
        f"Kept {len(found.keep)} of {total} images; removed {len(found.exact)} exact and "
        f"{len(found.near)} near duplicates"
    )


def add_dedupe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hamming", type=int, default=DEFAULT_HAMMING,
        help="near duplicates: perceptual hashes differing in at most this many of 64 bits, 0 to 32 "
        f"(default: {DEFAULT_HAMMING})",
    )  # fmt: skip
    parser.add_argument("--exact-only", action="store_true", help="remove exact pixel copies only, no near duplicates")


def hamming_threshold(args: argparse.Namespace) -> int | None:
    if not 0 <= args.hamming <= 32:
        raise UserError(f"--hamming {args.hamming} is outside 0..32")
    return None if args.exact_only else args.hamming


DESCRIPTION = """\
Remove duplicate images from a dataset: exact copies by pixel hash, near copies by perceptual hash.

The first of each group is kept, in dataset order. Near duplicates (the same logo re-encoded, resized or
slightly recoloured) are images whose 64-bit perceptual hashes (ImageHash's phash) differ in at most
--hamming bits; 0 removes only identical hashes. What was removed, and of what it is a copy, is
recorded in the dataset's meta and printed.
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m preprocessing.dedupe",
        description=DESCRIPTION,
        epilog="example:\n  python -m preprocessing.dedupe --input data/logos_56_raw.npz --hamming 4 --out data/logos_56.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", type=Path, required=True, help="dataset (.npz) to dedupe")
    add_dedupe_arguments(parser)
    add_output_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    check_output_arguments(args)
    threshold = hamming_threshold(args)
    dataset = load_dataset(args.input)
    deduped, found = dedupe(dataset, threshold)
    print(describe_duplicates(found, len(dataset.x)))
    report_written(write_packed(deduped, args), deduped)
    return 0


if __name__ == "__main__":
    cli.run(main)
