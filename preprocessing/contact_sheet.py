"""A contact sheet: a random 8×8 grid of a dataset's images, to see at a glance what was packed.

    python -m preprocessing.contact_sheet --input data/logos_56.npz
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

from infra import cli
from infra.atomic import atomic_write
from infra.errors import UserError
from infra.output_paths import check_output_file
from preprocessing.dataset import load_dataset

GRID = 8
GAP = 2  # pixels of grey between tiles, so white-background images stay apart
GAP_GREY = 160
MIN_TILE = 64  # small images are enlarged (nearest neighbour, no blur) to at least this many pixels


def contact_sheet_path(dataset_path: str | Path) -> Path:
    path = Path(dataset_path)
    return path.with_name(f"{path.stem}.contact.png")


def contact_sheet(x: np.ndarray, seed: int = 0, grid: int = GRID) -> Image.Image:
    """Up to grid×grid images drawn at random (without repeats) from uint8 (N, H, W, C) ``x``."""
    count = min(len(x), grid * grid)
    chosen = np.sort(np.random.default_rng(seed).choice(len(x), size=count, replace=False))
    height, width, channels = x.shape[1:]
    zoom = max(1, -(-MIN_TILE // max(height, width)))
    columns = min(grid, count)
    rows = -(-count // columns)
    sheet = np.full(
        (rows * (height * zoom + GAP) + GAP, columns * (width * zoom + GAP) + GAP, channels), GAP_GREY, np.uint8
    )
    for position, index in enumerate(chosen):
        row, column = divmod(position, columns)
        tile = x[index].repeat(zoom, axis=0).repeat(zoom, axis=1)
        top, left = GAP + row * (height * zoom + GAP), GAP + column * (width * zoom + GAP)
        sheet[top : top + height * zoom, left : left + width * zoom] = tile
    return Image.fromarray(sheet[..., 0] if channels == 1 else sheet)


def save_contact_sheet(path: str | Path, x: np.ndarray, seed: int = 0) -> Path:
    buffer = io.BytesIO()
    contact_sheet(x, seed).save(buffer, format="PNG")
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())
    return Path(path)


def write_contact_sheet(dataset_path: str | Path, x: np.ndarray, seed: int = 0) -> Path:
    """The contact sheet beside a dataset file."""
    return save_contact_sheet(contact_sheet_path(dataset_path), x, seed)


DESCRIPTION = """\
A contact sheet: a random 8×8 grid of a dataset's images, to see at a glance what was packed.

Every packing command writes one beside its dataset (logos_56.npz -> logos_56.contact.png).
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m preprocessing.contact_sheet",
        description=DESCRIPTION,
        epilog="example:\n  python -m preprocessing.contact_sheet --input data/logos_56.npz --seed 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", type=Path, required=True, help="dataset (.npz) to sample from")
    parser.add_argument("--out", type=Path, default=None, help="PNG to write (default: <dataset>.contact.png beside it)")
    parser.add_argument("--seed", type=int, default=0, help="which random images to show (default: 0)")
    parser.add_argument(
        "--allow-pickle", action="store_true", help="accept a walkthrough .pkl input (pickles can run code: only your own)"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.out is not None and args.out.suffix.lower() != ".png":
        raise UserError(f"--out {args.out}: a contact sheet is a .png file")
    out = check_output_file(args.out or contact_sheet_path(args.input), "--out")
    dataset = load_dataset(args.input, allow_pickle=args.allow_pickle)
    path = save_contact_sheet(out, dataset.x, args.seed)
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    cli.run(main)
