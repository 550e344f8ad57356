"""Cut a sheet of logos into one image per cell: a given grid, or one found from the blank gutters.

    python -m scraping.split_grid --image sheet.jpeg --cols 3 --rows 2 --out tiles/
    python -m scraping.split_grid --image sheet.png --auto --out tiles/

Tiles are named ``{name}_{col}_{row}.{ext}`` (0-based, as the walkthrough's splitter did). With ``--auto``
the sheet's background colour is taken from its border; rows and columns with no pixel further than
``--tolerance`` from it are gutters, and the cuts go through the middle of each gutter.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from infra import cli
from infra.atomic import atomic_write
from infra.errors import UserError
from infra.image_files import open_image_file
from infra.output_paths import check_output_folder


def even_cuts(length: int, parts: int) -> list[int]:
    """``parts + 1`` cut positions splitting ``length`` pixels as evenly as whole pixels allow."""
    return [round(index * length / parts) for index in range(parts + 1)]


def background_colour(pixels: np.ndarray) -> np.ndarray:
    """The most common colour on the sheet's outer border."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    colours, counts = np.unique(border, axis=0, return_counts=True)
    return colours[counts.argmax()]


def gutter_cuts(has_content: np.ndarray, min_gap: int) -> list[int]:
    """Cut positions through the middle of each run of empty lines at least ``min_gap`` long between content."""
    length = len(has_content)
    filled = np.flatnonzero(has_content)
    cuts = [0]
    for before, after in zip(filled[:-1], filled[1:]):
        if after - before - 1 >= min_gap:
            cuts.append(int((before + 1 + after) // 2))
    cuts.append(length)
    return cuts


def auto_cuts(image: Image.Image, tolerance: int, min_gap: int) -> tuple[list[int], list[int]]:
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    content = np.abs(pixels - background_colour(pixels)).max(axis=2) > tolerance
    if not content.any():
        raise UserError("the sheet is blank (every pixel is its background colour); nothing to split")
    return gutter_cuts(content.any(axis=0), min_gap), gutter_cuts(content.any(axis=1), min_gap)


def split(image: Image.Image, x_cuts: list[int], y_cuts: list[int]) -> dict[tuple[int, int], Image.Image]:
    """Tiles keyed by (col, row)."""
    return {
        (col, row): image.crop((x_cuts[col], y_cuts[row], x_cuts[col + 1], y_cuts[row + 1]))
        for col in range(len(x_cuts) - 1)
        for row in range(len(y_cuts) - 1)
    }


def open_sheet(path: Path) -> Image.Image:
    return open_image_file(path, "--image")


def save_tile(tile: Image.Image, path: Path, image_format: str) -> None:
    if image_format == "JPEG" and tile.mode not in ("RGB", "L"):
        tile = tile.convert("RGB")
    options = {"quality": 95} if image_format == "JPEG" else {}
    with atomic_write(path) as handle:
        tile.save(handle, image_format, **options)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m scraping.split_grid",
        description="Cut a sheet of logos into tiles named NAME_COL_ROW.EXT (0-based), by a given grid or by "
        "finding the blank gutters between logos.",
        epilog="examples:\n"
        "  python -m scraping.split_grid --image sheet.jpeg --cols 3 --rows 2 --out tiles/\n"
        "  python -m scraping.split_grid --image sheet.jpeg --col 3 --row 2        # the walkthrough's spelling\n"
        "  python -m scraping.split_grid --image sheet.png --auto --min-gap 4 --out tiles/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--image", "--filename", dest="image", type=Path, required=True,
                        help="the sheet to cut (any format Pillow reads) (required)")
    parser.add_argument("--cols", "--col", dest="cols", type=int, default=None,
                        help="number of columns of equal width (required unless --auto)")
    parser.add_argument("--rows", "--row", dest="rows", type=int, default=None,
                        help="number of rows of equal height (required unless --auto)")
    parser.add_argument("--auto", action="store_true", help="find the grid from blank gutters instead")
    parser.add_argument("--tolerance", type=int, default=48,
                        help="with --auto: how far (0-255 per channel) a pixel may differ from the background "
                        "and still count as blank; JPEG ringing near strong edges reaches ~30 (default: 48)")
    parser.add_argument("--min-gap", type=int, default=3,
                        help="with --auto: narrowest blank run, in px, that counts as a gutter (default: 3)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the tiles (default: the sheet's folder)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.auto and (args.cols or args.rows):
        raise UserError("give either --auto or --cols and --rows, not both")
    if not args.auto and (args.cols is None or args.rows is None):
        raise UserError("give --cols N and --rows N (or --auto to find the grid)")
    if not args.auto and min(args.cols, args.rows) < 1:
        raise UserError(f"--cols {args.cols} and --rows {args.rows} must be 1 or more")
    if not 0 <= args.tolerance <= 255 or args.min_gap < 1:
        raise UserError(f"--tolerance must be 0..255 (got {args.tolerance}) and --min-gap 1 or more (got {args.min_gap})")
    image = open_sheet(args.image)
    out = check_output_folder(args.out or args.image.parent, "--out")
    if args.auto:
        x_cuts, y_cuts = auto_cuts(image, args.tolerance, args.min_gap)
    else:
        if args.cols > image.width or args.rows > image.height:
            raise UserError(f"a {image.width}x{image.height} image cannot be cut into {args.cols}x{args.rows} tiles")
        x_cuts, y_cuts = even_cuts(image.width, args.cols), even_cuts(image.height, args.rows)
    out.mkdir(parents=True, exist_ok=True)
    tiles = split(image, x_cuts, y_cuts)
    for (col, row), tile in tiles.items():
        save_tile(tile, out / f"{args.image.stem}_{col}_{row}{args.image.suffix}", image.format)
    print(f"Wrote {len(tiles)} tiles ({len(x_cuts) - 1} columns x {len(y_cuts) - 1} rows) to {out}")
    return 0


if __name__ == "__main__":
    cli.run(main)
