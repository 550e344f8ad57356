"""A folder of logos as users bring them: half SVG files on white, half PNG and JPEG files on coloured tiles.

    python bench/mixed_logos.py --out bench/out/mixed_logos --count 300
    XTRAIN=bench/out/mixed_logos ./run-model.sh

From Simple Icons (the pip package simple-icons-pack, CC0, so it works offline): every other icon is written as
its SVG in its brand colour; the others are rendered white on a full tile of their brand colour at 96 px, two
in three as PNG and one in three as JPEG. Which icons: spread evenly over the set, so the folder is the same on
every machine.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra import cli  # noqa: E402  (after the path insert, so the script runs from anywhere)
from infra.output_paths import check_output_folder  # noqa: E402

TILE_PX = 96


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python bench/mixed_logos.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write the logo files into")
    parser.add_argument("--count", type=int, default=300, help="logos, 2 to 3000 (default: 300)")
    args = parser.parse_args(argv)
    if not 2 <= args.count <= 3000:
        parser.error(f"--count {args.count}: allowed 2 to 3000")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    from PIL import Image

    from infra.icons import parse_hex_colour, render_svg, simple_icons, with_fill

    check_output_folder(args.out, "--out")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    icons = list(simple_icons())
    chosen = [icons[index * len(icons) // args.count] for index in range(args.count)]
    counts = {"svg": 0, "png": 0, "jpg": 0}
    for index, icon in enumerate(chosen):
        colour = icon.colour or "#000000"
        if index % 2 == 0:
            (out / f"{icon.slug}.svg").write_text(with_fill(icon.svg, colour))
            counts["svg"] += 1
            continue
        mark = render_svg(icon.svg, TILE_PX, fill="#ffffff", background=None, margin=0.2)
        tile = Image.new("RGBA", (TILE_PX, TILE_PX), parse_hex_colour(colour) + (255,))
        tile.alpha_composite(mark)
        kind = "jpg" if index % 6 == 5 else "png"
        tile.convert("RGB").save(out / f"{icon.slug}.{kind}", **({"quality": 92} if kind == "jpg" else {}))
        counts[kind] += 1
    print(f"wrote {args.count} logos to {out}/: {counts['svg']} SVG on white, {counts['png']} PNG and "
          f"{counts['jpg']} JPEG on tiles of their brand colour")


if __name__ == "__main__":
    cli.run(main)
