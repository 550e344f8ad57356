"""Grow a dataset to N images with flipped, slightly rotated and rescaled copies of its images.

    python -m preprocessing.augment --input data/logos_56.npz --augment-to 2000 --seed 0 --out data/logos_56_aug.npz
"""
from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from infra import cli
from infra.errors import UserError
from preprocessing.dataset import Dataset, load_dataset
from preprocessing.geometry import as_channels, background_colour
from preprocessing.pack import add_output_arguments, check_output_arguments, report_written, write_packed
from preprocessing.provenance import take

FLIPS = ("horizontal", "vertical", "both", "none")


@dataclass(frozen=True)
class AugmentOptions:
    target: int
    seed: int = 0
    max_rotation: float = 15.0
    scale_jitter: float = 0.1
    flip: str = "horizontal"


@dataclass(frozen=True)
class Variation:
    mirror: bool
    flip: bool
    degrees: float
    scale: float


def draw_variations(count: int, options: AugmentOptions, rng: np.random.Generator) -> list[Variation]:
    mirror = rng.random(count) < 0.5
    flip = rng.random(count) < 0.5
    degrees = rng.uniform(-options.max_rotation, options.max_rotation, count)
    scale = rng.uniform(1 - options.scale_jitter, 1 + options.scale_jitter, count)
    return [
        Variation(
            mirror=bool(mirror[i]) and options.flip in ("horizontal", "both"),
            flip=bool(flip[i]) and options.flip in ("vertical", "both"),
            degrees=float(degrees[i]),
            scale=float(scale[i]),
        )
        for i in range(count)
    ]


def vary(pixels: np.ndarray, variation: Variation) -> np.ndarray:
    """One (H, W, C) uint8 image flipped, rotated and scaled about its centre on its own background."""
    background = background_colour(pixels)
    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    if variation.mirror:
        image = ImageOps.mirror(image)
    if variation.flip:
        image = ImageOps.flip(image)
    # Pillow's affine transform maps each output pixel back to its source: rotate by -angle, scale by 1/s.
    angle = math.radians(variation.degrees)
    a, b = math.cos(angle) / variation.scale, math.sin(angle) / variation.scale
    d, e = -b, a
    cx, cy = image.width / 2, image.height / 2
    coefficients = (a, b, cx - a * cx - b * cy, d, e, cy - d * cx - e * cy)
    fill = background[0] if image.mode == "L" else background
    moved = image.transform(image.size, Image.Transform.AFFINE, coefficients, Image.Resampling.BICUBIC, fillcolor=fill)
    return as_channels(moved)


def augment(dataset: Dataset, options: AugmentOptions) -> Dataset:
    """The originals followed by ``options.target - N`` varied copies (nothing added if already that many)."""
    originals = len(dataset.x)
    extra = max(0, options.target - originals)
    rng = np.random.default_rng(options.seed)
    picks = rng.integers(0, originals, extra)
    variations = draw_variations(extra, options, rng)
    report = {**asdict(options), "originals": originals, "added": extra}
    grown = take(dataset, np.concatenate([np.arange(originals), picks]), {"augment": report})
    for position, (pick, variation) in enumerate(zip(picks, variations)):
        grown.x[originals + position] = vary(dataset.x[pick], variation)
    return grown


def add_augment_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument(
        "--augment-to", type=int, required=required, default=None,
        help="grow the dataset to this many images with varied copies" + ("" if required else " (default: no augmentation)"),
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same images (default: 0)")
    parser.add_argument("--max-rotation", type=float, default=15.0, help="largest rotation in degrees, 0 to 45 (default: 15)")
    parser.add_argument("--scale-jitter", type=float, default=0.1, help="largest scale change as a fraction, 0 to 0.5 (default: 0.1)")
    parser.add_argument("--flip", choices=FLIPS, default="horizontal", help="which flips to apply half the time (default: horizontal)")


def augment_options(args: argparse.Namespace) -> AugmentOptions:
    if args.augment_to is not None and args.augment_to < 1:
        raise UserError(f"--augment-to {args.augment_to} must be 1 or more")
    if not 0 <= args.max_rotation <= 45:
        raise UserError(f"--max-rotation {args.max_rotation} is outside 0..45 degrees")
    if not 0 <= args.scale_jitter <= 0.5:
        raise UserError(f"--scale-jitter {args.scale_jitter} is outside 0..0.5")
    return AugmentOptions(args.augment_to or 0, args.seed, args.max_rotation, args.scale_jitter, args.flip)


def run_augment(dataset: Dataset, options: AugmentOptions) -> Dataset:
    grown = augment(dataset, options)
    added = grown.meta["augment"]["added"]
    if added:
        print(f"Augmented {len(dataset.x)} images to {len(grown.x)} (seed {options.seed})")
    else:
        print(f"Not augmented: the dataset already has {len(dataset.x)} images, at least --augment-to {options.target}")
    return grown


DESCRIPTION = """\
Grow a dataset to N images with flipped, slightly rotated and rescaled copies of its images.

The walkthrough meant to rotate by up to ±20° and flip to about 2,000 images. Each new image copies a
randomly chosen original (its label and credits too), flips it (per --flip, half the time), rotates it by
up to --max-rotation degrees and scales it by up to ±--scale-jitter, filling uncovered pixels with the
image's own background colour. The same --seed always gives the same images; originals come first.
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m preprocessing.augment",
        description=DESCRIPTION,
        epilog="example:\n  python -m preprocessing.augment --input data/logos_56.npz --augment-to 2000 --out data/logos_56_aug.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", type=Path, required=True, help="dataset (.npz) to augment")
    add_augment_arguments(parser, required=True)
    add_output_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    check_output_arguments(args)
    options = augment_options(args)
    grown = run_augment(load_dataset(args.input), options)
    report_written(write_packed(grown, args), grown)
    return 0


if __name__ == "__main__":
    cli.run(main)
