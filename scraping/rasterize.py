"""Render SVG icons to square PNGs: a folder of SVGs, Simple Icons, or Font Awesome Free.

    python -m scraping.rasterize --path raw-svg/ --out png/
    python -m scraping.rasterize --source simple-icons --brand-colours --out png/simple-icons
    python -m scraping.rasterize --source fontawesome --set brands --out png/fa-brands

The walkthrough converted Font Awesome's raw SVGs with cairosvg into ``./png/`` one by one; this keeps
cairosvg (in its safe default: no external files or URLs, no XML entities), keeps each icon's aspect
ratio centred on a square canvas, uses every core, and writes manifest.csv with each icon's source and
licence. An SVG that cannot be rendered is named on stderr and counted, never dropped silently.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
from dataclasses import dataclass
from importlib.resources import files
from multiprocessing import Pool
from pathlib import Path

from tqdm import tqdm

from infra import cli
from infra.atomic import atomic_write, write_text
from infra.errors import UserError
from infra.icons import WHITE, render_svg, simple_icons
from infra.output_paths import check_output_folder
from scraping.manifest import MANIFEST, manifest_text

FONTAWESOME_SETS = ("brands", "solid", "regular")
FONTAWESOME_LICENCE = "CC-BY-4.0 (Font Awesome Free icons); brand icons are trademarks of their owners"
BACKGROUNDS = {"white": WHITE, "transparent": None}


@dataclass(frozen=True)
class SvgJob:
    name: str  # output file stem
    svg: str
    source: str
    licence: str
    title: str
    fill: str | None = None


def folder_jobs(folder: Path) -> list[SvgJob]:
    if not folder.is_dir():
        raise UserError(f"--path {folder} is not a folder of .svg files")
    paths = sorted(folder.glob("*.svg"))
    if not paths:
        raise UserError(f"--path {folder} holds no .svg files")
    return [SvgJob(path.stem, path.read_text(encoding="utf-8", errors="replace"), str(path), "", path.stem)
            for path in paths]


def fontawesome_jobs(icon_set: str) -> list[SvgJob]:
    import fontawesomefree
    from importlib.metadata import version

    folder = files(fontawesomefree) / "static" / "fontawesomefree" / "svgs" / icon_set
    source = f"fontawesomefree {version('fontawesomefree')} {icon_set}"
    return [SvgJob(path.name.removesuffix(".svg"), path.read_text(encoding="utf-8"), f"{source}/{path.name}",
                   FONTAWESOME_LICENCE, path.name.removesuffix(".svg"))
            for path in sorted(folder.iterdir(), key=lambda path: path.name) if path.name.endswith(".svg")]


def simple_icons_jobs(brand_colours: bool) -> list[SvgJob]:
    return [SvgJob(icon.slug, icon.svg, f"{icon.source}/{icon.slug}", icon.licence, icon.title,
                   icon.colour if brand_colours else None)
            for icon in simple_icons()]


@dataclass(frozen=True)
class Settings:
    out: Path
    size: int
    background: tuple[int, int, int] | None
    margin: float


def rasterize_one(job: SvgJob, settings: Settings) -> dict | str:
    """The manifest row of the PNG written for ``job``, or why it could not be rendered."""
    try:
        image = render_svg(job.svg, settings.size, fill=job.fill, background=settings.background,
                           margin=settings.margin)
    except Exception as error:  # cairosvg/ElementTree raise many kinds for a bad SVG; each is reported
        return f"{job.source}: cannot render ({type(error).__name__}: {str(error)[:120]})"
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    body = buffer.getvalue()
    name = f"{job.name}.png"
    with atomic_write(settings.out / name) as handle:
        handle.write(body)
    return {"path": name, "source_url": job.source, "sha1": hashlib.sha1(job.svg.encode()).hexdigest(),
            "content_sha1": hashlib.sha1(body).hexdigest(), "bytes": len(body), "licence": job.licence,
            "artist": "", "title": job.title, "page_url": ""}


def _rasterize_job(args: tuple[SvgJob, Settings]) -> dict | str:
    return rasterize_one(*args)


def rasterize(jobs: list[SvgJob], settings: Settings, workers: int, progress: bool) -> tuple[list[dict], list[str]]:
    settings.out.mkdir(parents=True, exist_ok=True)
    rows, failures = [], []
    with Pool(workers) as pool:
        results = pool.imap_unordered(_rasterize_job, [(job, settings) for job in jobs], chunksize=8)
        for result in tqdm(results, total=len(jobs), desc="Rasterizing", unit="icon", disable=not progress):
            (rows if isinstance(result, dict) else failures).append(result)
    rows.sort(key=lambda row: row["path"])
    write_text(settings.out / MANIFEST, manifest_text(rows))
    return rows, sorted(failures)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m scraping.rasterize",
        description="Render SVG icons to square PNGs (aspect ratio kept, centred), in parallel, with manifest.csv.",
        epilog="examples:\n"
        "  python -m scraping.rasterize --path raw-svg/ --out png/ --size 112\n"
        "  python -m scraping.rasterize --source simple-icons --brand-colours --out png/simple-icons\n"
        "  python -m scraping.rasterize --source fontawesome --set solid --background transparent --out png/fa-solid",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", choices=("folder", "simple-icons", "fontawesome"), default="folder",
                        help="where the SVGs come from: a folder (--path), the simple-icons-pack package, or the "
                        "fontawesomefree package (--set) (default: folder)")
    parser.add_argument("--path", type=Path, default=None, help="folder of .svg files, for --source folder")
    parser.add_argument("--set", dest="icon_set", choices=FONTAWESOME_SETS, default="brands",
                        help="Font Awesome set, for --source fontawesome (default: brands)")
    parser.add_argument("--brand-colours", action="store_true",
                        help="fill Simple Icons in each brand's colour instead of black (default: black)")
    parser.add_argument("--out", type=Path, default=Path("png"), help="folder for the PNGs and manifest.csv (default: png)")
    parser.add_argument("--size", type=int, default=56, help="side of the square PNGs in px, 8 or more (default: 56)")
    parser.add_argument("--background", choices=tuple(BACKGROUNDS), default="white",
                        help="white RGB, or transparent RGBA (default: white)")
    parser.add_argument("--margin", type=float, default=0.06,
                        help="fraction of the side left blank around each icon, 0 to 0.4 (default: 0.06)")
    parser.add_argument("--limit", type=int, default=None, help="render only the first N icons by name (default: all)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="processes in parallel (default: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.size < 8:
        raise UserError(f"--size {args.size} is too small; use 8 or more")
    if not 0 <= args.margin <= 0.4:
        raise UserError(f"--margin {args.margin} is outside 0..0.4")
    for flag, value in (("--limit", args.limit), ("--workers", args.workers)):
        if value is not None and value < 1:
            raise UserError(f"{flag} {value} must be 1 or more")
    if (args.source == "folder") != (args.path is not None):
        raise UserError("--path DIR goes with --source folder (the default) and only with it")
    if args.brand_colours and args.source != "simple-icons":
        raise UserError("--brand-colours applies to --source simple-icons only")
    check_output_folder(args.out, "--out")
    if args.source == "folder":
        jobs = folder_jobs(args.path)
    elif args.source == "fontawesome":
        jobs = fontawesome_jobs(args.icon_set)
    else:
        jobs = simple_icons_jobs(args.brand_colours)
    jobs = jobs[: args.limit]
    settings = Settings(args.out, args.size, BACKGROUNDS[args.background], args.margin)
    rows, failures = rasterize(jobs, settings, args.workers, progress=not args.no_progress)
    for failure in failures:
        print(f"not rendered: {failure}", file=sys.stderr)
    print(f"Wrote {len(rows)} PNGs ({args.size}x{args.size}) to {args.out}"
          + (f"; {len(failures)} SVGs could not be rendered (listed above)" if failures else ""))
    return 0


if __name__ == "__main__":
    cli.run(main)
