"""Build the multi-colour logo dataset: brand and product marks from Iconify icon sets, in their own colours.

    python -m preprocessing.colour_logos --out data/colour_logos_56.npz

The sets come from the npm registry through ``scraping.iconify`` (integrity-checked, cached, so a rebuild
works offline), each icon is rendered in its own colours on white (``infra.icons.render_svg``, cairosvg's
safe mode), marks that are one colour only are left out, and exact and near duplicates are removed
(``preprocessing.dedupe``) before packing with a contact sheet beside the dataset.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from infra import cli
from infra.errors import UserError
from infra.icons import WHITE, render_svg, to_array
from infra.output_paths import check_output_file
from preprocessing.colour_rule import COLOUR_DISTANCE, MIN_SECOND_COLOUR
from preprocessing.contact_sheet import write_contact_sheet
from preprocessing.dataset import Dataset, save_dataset
from preprocessing.dedupe import DEFAULT_HAMMING, dedupe, describe_duplicates
from preprocessing.provenance import licence_counts
from scraping.iconify import (
    HELD_OUT, IconSet, TarballCache, cache_root, load_icon_set, parse_set_spec, registry_url,
)
from scraping.download import http_session
from scraping.identity import resolve_contact


@dataclass(frozen=True)
class SetChoice:
    """A set in the preset and which of its icons are marks (name prefixes kept, then prefixes dropped)."""

    name: str
    keep: tuple[str, ...] = ("",)
    drop: tuple[str, ...] = ()

    def wants(self, icon_name: str) -> bool:
        return icon_name.startswith(self.keep) and not icon_name.startswith(self.drop)


# Multi-colour brand and product marks under permissive licences (data/README.md lists each with its licence).
PRESET = (
    SetChoice("devicon"),  # technology brands, symbol and wordmark (MIT)
    SetChoice("skill-icons"),  # technology brands on dark and light rounded tiles (MIT)
    # File-type icons are language and tool logos; folder icons are one folder shape with a badge, and the
    # file-type-light-* variants are the same marks recoloured for light themes.
    SetChoice("vscode-icons", keep=("file-type-",), drop=("file-type-light-",)),  # MIT
    SetChoice("cryptocurrency-color"),  # coin brands on coloured discs (CC0-1.0)
)
# A mark is multi-colour when at least MIN_SECOND_COLOUR of its opaque pixels are further than COLOUR_DISTANCE
# (RGB, 0..441) from its most common colour: a second flat colour, a tile behind the mark, or a gradient.
OPAQUE = 200
MIN_OPAQUE_PIXELS = 16
RULE = (f"kept when at least {MIN_SECOND_COLOUR:.0%} of the mark's opaque pixels (alpha >= {OPAQUE}) are more than "
        f"{COLOUR_DISTANCE} (RGB distance) from its most common colour (quantised to 8 levels per channel)")
LICENCE_NOTE = ("Icon files under each set's own licence (meta['sets'], meta['credits']); the logos are trademarks "
                "of their owners: use them for research and learning, and follow each brand's guidelines elsewhere.")


def is_multi_colour(rgba: np.ndarray) -> bool:
    """The rule above, on an RGBA render of one mark on transparency."""
    opaque = rgba[..., 3] >= OPAQUE
    if opaque.sum() < MIN_OPAQUE_PIXELS:
        return False
    colours = rgba[..., :3][opaque].astype(np.int32)
    bins = (colours >> 5) @ np.array([64, 8, 1])
    common = colours[bins == np.bincount(bins).argmax()].mean(axis=0)
    far = np.sqrt(((colours - common) ** 2).sum(axis=1)) > COLOUR_DISTANCE
    return far.mean() >= MIN_SECOND_COLOUR


def render_mark(job: tuple[str, int, float]) -> tuple[np.ndarray, bool] | str:
    """(the mark on white, whether it is multi-colour), or why it could not be rendered."""
    svg, size, margin = job
    try:
        canvas = render_svg(svg, size, background=None, margin=margin)
    except Exception as error:  # cairosvg raises many kinds for a bad SVG; each one is reported by name
        return f"{type(error).__name__}: {str(error)[:100]}"
    flattened = Image.new("RGBA", canvas.size, WHITE + (255,))
    flattened.alpha_composite(canvas)
    return to_array(flattened.convert("RGB")), is_multi_colour(to_array(canvas))


def fetch_sets(choices, registry: str, cache: TarballCache, contact: str | None, progress: bool) -> list[IconSet]:
    session = http_session(contact, 3, 2)
    icon_sets = []
    for choice in choices:
        icon_set = load_icon_set(parse_set_spec(choice.name), registry, cache, session, progress=progress)
        chosen = [icon for icon in icon_set.icons if choice.wants(icon.name)]
        icon_set.skipped["not a mark (preset's name rule)"] += len(icon_set.icons) - len(chosen)
        icon_set.icons = chosen
        icon_sets.append(icon_set)
    return icon_sets


def build(icon_sets: list[IconSet], size: int, margin: float, workers: int, all_colours: bool, progress: bool,
          limit: int | None = None) -> tuple[Dataset, list[str], dict]:
    """The dataset (before dedupe), the icons that failed to render, and per-set counts."""
    entries = [(icon_set, icon) for icon_set in icon_sets for icon in icon_set.icons[:limit]]
    with Pool(workers) as pool:
        results = list(tqdm(pool.imap(render_mark, [(icon.svg, size, margin) for _, icon in entries], chunksize=16),
                            total=len(entries), desc="Rendering marks", unit="icon", disable=not progress))
    images, sources, credits, failures = [], [], [], []
    counts = {icon_set.prefix: {"icons": 0, "single_colour": 0, "failed": 0, "kept": 0} for icon_set in icon_sets}
    for (icon_set, icon), result in zip(entries, results):
        count = counts[icon_set.prefix]
        count["icons"] += 1
        if isinstance(result, str):
            failures.append(f"{icon_set.prefix}:{icon.name}: cannot render ({result})")
            count["failed"] += 1
        elif not (result[1] or all_colours):
            count["single_colour"] += 1
        else:
            images.append(result[0])
            sources.append(f"{icon_set.prefix}:{icon.name}")
            credits.append(icon_set.credit(icon))
            count["kept"] += 1
    if not images:
        raise UserError("no marks left to pack: every icon was single-colour or failed to render")
    meta = {
        "source": "Iconify JSON sets from npm: " + ", ".join(
            f"{icon_set.package.npm_name}@{icon_set.package.version}" for icon_set in icon_sets),
        "licence": LICENCE_NOTE,
        "sets": [{**icon_set.provenance(), "counts": counts[icon_set.prefix]} for icon_set in icon_sets],
        "multi_colour_rule": "none: --all-colours" if all_colours else RULE,
        "sources": sources,
        "credits": credits,
        "licences": licence_counts(credits),
        "size": size,
        "margin": margin,
        "background": "#FFFFFF",
        "count": len(images),
    }
    for entry in meta["sets"]:
        entry.pop("info", None)  # licence and author are kept; the rest of info (samples, tags) is not provenance
    return Dataset(x=np.stack(images), meta=meta), sorted(failures), counts


DESCRIPTION = f"""\
Build the multi-colour logo dataset: brand and product marks from Iconify icon sets, in their own colours on white.

Sets (npm @iconify-json/NAME, fetched, integrity-checked and cached by scraping.iconify):
{chr(10).join(f"  {choice.name}" + (f" (icons named {'/'.join(choice.keep)}*, without {'/'.join(choice.drop)}*)"
                                    if choice.drop else "") for choice in PRESET)}
Marks of a single colour are left out ({RULE}); then exact and near duplicates (perceptual hash within
{DEFAULT_HAMMING} bits) are removed. The Iconify set 'logos' is held out for evaluation and always refused.
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m preprocessing.colour_logos",
        description=DESCRIPTION,
        epilog="example:\n  python -m preprocessing.colour_logos --out data/colour_logos_56.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", type=int, default=56, help="side of the square images in pixels, at least 8 "
                        "(default: 56)")
    parser.add_argument("--out", type=Path, default=None,
                        help="dataset file to write (default: data/colour_logos_<size>.npz)")
    parser.add_argument("--margin", type=float, default=0.06,
                        help="fraction of the side left blank around each logo, 0 to 0.4 (default: 0.06)")
    parser.add_argument("--set", dest="sets", action="append", default=None, metavar="NAME",
                        help="use this Iconify set instead of the preset's, all its icons; repeatable "
                        "(default: the preset's sets, listed above)")
    parser.add_argument("--all-colours", action="store_true", help="keep single-colour marks too")
    parser.add_argument("--limit", type=int, default=None, help="render only the first N icons of each set by name "
                        "(default: all)")
    parser.add_argument("--registry", default=None, help="npm registry URL (default: $LOGOGAN_NPM_REGISTRY, else "
                        "https://registry.npmjs.org)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder caching the sets' tarballs (default: iconify/ in the LogoGAN user cache)")
    parser.add_argument("--contact", default=None, help="e-mail or URL for the User-Agent (default: $LOGOGAN_CONTACT)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="processes rendering in parallel (default: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.check_size_and_margin(args.size, args.margin)
    cli.check_counts(limit=args.limit, workers=args.workers)
    choices = PRESET
    if args.sets:
        for name in args.sets:
            if name.partition("@")[0] in HELD_OUT:
                raise UserError(f"--set {name}: held out for evaluation; it never goes into a training dataset")
            parse_set_spec(name)
        choices = tuple(SetChoice(name) for name in dict.fromkeys(args.sets))
    out = args.out or Path(f"data/colour_logos_{args.size}.npz")
    if out.suffix != ".npz":
        raise UserError(f"--out {out}: a dataset file must end in .npz")
    check_output_file(out, "--out")  # before minutes of fetching and rendering
    registry = registry_url(args.registry)
    started = time.monotonic()
    progress = not args.no_progress
    icon_sets = fetch_sets(choices, registry, TarballCache(cache_root(args.cache)), resolve_contact(args.contact),
                           progress)
    dataset, failures, counts = build(icon_sets, args.size, args.margin, args.workers, args.all_colours, progress,
                                      args.limit)
    for failure in failures:
        print(f"not rendered: {failure}", file=sys.stderr)
    total = len(dataset.x)
    dataset, found = dedupe(dataset)
    save_dataset(out, dataset.x, meta=dataset.meta)
    sheet = write_contact_sheet(out, dataset.x)
    for name, count in counts.items():
        print(f"{name}: {count['icons']} icons, {count['single_colour']} single-colour left out, "
              f"{count['failed']} not rendered, {count['kept']} kept")
    print(describe_duplicates(found, total))
    print(f"Wrote {out}: {len(dataset.x)} logos, {args.size}x{args.size} RGB, in {time.monotonic() - started:.0f} s; "
          f"contact sheet {sheet}")
    return 0


if __name__ == "__main__":
    cli.run(main)
