"""A contact sheet of SVG files, each rendered from its vectors at any size (cairosvg, the project's safe-mode
renderer): shows that generated samples are vectors, not enlarged pixels.

    python -m models.generate --run runs/logos --seeds 0-7 --format svg --out svgs/
    python bench/svg_sheet.py --svg svgs --size 256 --out svg_sheet.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra import cli  # noqa: E402  (after the path insert, so the script runs from anywhere)
from infra.errors import UserError  # noqa: E402
from infra.output_paths import check_output_file  # noqa: E402

MAX_FILES = 64


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python bench/svg_sheet.py",
                                     description="Render a folder of SVG files at one size into a PNG grid.")
    parser.add_argument("--svg", required=True, metavar="DIR", help="folder of .svg files (first 64 by name)")
    parser.add_argument("--size", type=int, default=256, help="pixels per side of each rendering (default: 256)")
    parser.add_argument("--columns", type=int, default=4, help="tiles per row (default: 4)")
    parser.add_argument("--out", required=True, metavar="SHEET.png", help="the PNG grid to write")
    args = parser.parse_args(argv)
    if not 8 <= args.size <= 1024 or args.columns < 1:
        parser.error(f"--size {args.size} / --columns {args.columns}: size 8 to 1024, columns at least 1")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    import numpy as np

    from infra.icons import SvgError, render_svg
    from models.images import image_grid, save_png

    check_output_file(args.out, "--out")
    files = sorted(Path(args.svg).glob("*.svg"))[:MAX_FILES] if Path(args.svg).is_dir() else []
    if not files:
        raise UserError(f"--svg {args.svg}: no .svg files there; give a folder such as models.generate "
                        "--format svg writes")
    tiles = []
    for path in files:
        try:
            tiles.append(np.asarray(render_svg(path.read_text(errors="replace"), args.size)))
        except SvgError as error:
            raise UserError(f"{path}: not rendered ({error})") from None
    save_png(args.out, image_grid(np.stack(tiles), args.columns))
    print(f"wrote {args.out} ({len(tiles)} SVGs at {args.size} px)")


if __name__ == "__main__":
    cli.run(main)
