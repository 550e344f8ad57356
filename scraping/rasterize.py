"""Render SVG icons to square PNGs: a folder of SVGs, Simple Icons, or Font Awesome Free.

    python -m scraping.rasterize --path raw-svg/ --out png/
    python -m scraping.rasterize --source simple-icons --brand-colours --out png/simple-icons
    python -m scraping.rasterize --source fontawesome --set brands --out png/fa-brands

The walkthrough converted Font Awesome's raw SVGs with cairosvg into ``./png/`` one by one; this keeps
cairosvg (in its safe default: no external files or URLs, no XML entities), keeps each icon's aspect
ratio centred on a square canvas, uses every core, and writes manifest.csv with each icon's source and
licence. An SVG that cannot be rendered is named on stderr and counted, never dropped silently.

Each SVG is rendered within limits (``infra.icons``): its size in bytes, the pixels of the images it
embeds, a time limit (``--time-limit``) and a memory cap. In a folder run a file over them is reported
and skipped, counted by reason in the summary; a single file given with ``--path`` is one line, exit 2.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from tqdm import tqdm

from infra import cli
from infra.atomic import atomic_write, write_text
from infra.errors import UserError
from infra.icons import MAX_SVG_BYTES, RENDER_SECONDS, WHITE, SvgError, render_svg, simple_icons
from infra.output_paths import check_output_folder
from infra.regular_files import read_regular_file
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
    refused: str | None = None  # why it is not rendered at all, found before reading it


def folder_jobs(folder: Path) -> list[SvgJob]:
    """One job per .svg in ``folder``, or for the one file ``folder`` names."""
    if folder.is_file() and folder.suffix.lower() == ".svg":
        return [file_job(folder)]
    if not folder.is_dir():
        raise UserError(f"--path {folder} is not a folder of .svg files (nor one .svg file)")
    paths = sorted(folder.glob("*.svg"))
    if not paths:
        raise UserError(f"--path {folder} holds no .svg files")
    return [file_job(path) for path in paths]


def file_job(path: Path) -> SvgJob:
    try:  # a pipe is refused unread (it would block), a broken link is unreadable, not a traceback
        size = os.stat(path).st_size
        if size > MAX_SVG_BYTES:  # not even read: its size alone refuses it
            return SvgJob(path.stem, "", str(path), "", path.stem,
                          refused=f"SVG too large: {size} bytes; at most {MAX_SVG_BYTES} are accepted")
        text = read_regular_file(path, MAX_SVG_BYTES).decode("utf-8", errors="replace")
    except OSError as error:
        return SvgJob(path.stem, "", str(path), "", path.stem, refused=f"unreadable: {error.strerror or error}")
    return SvgJob(path.stem, text, str(path), "", path.stem)


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
    time_limit: float = RENDER_SECONDS


@dataclass(frozen=True)
class Failure:
    reason: str  # the label the summary counts
    line: str  # the file and what is wrong with it


def rasterize_one(job: SvgJob, settings: Settings) -> dict | Failure:
    """The manifest row of the PNG written for ``job``, or why it could not be rendered."""
    if job.refused:
        return Failure(job.refused.split(":", 1)[0], f"{job.source}: {job.refused}")
    try:
        image = render_svg(job.svg, settings.size, fill=job.fill, background=settings.background,
                           margin=settings.margin, time_limit=settings.time_limit)
    except SvgError as error:
        return Failure(error.reason, f"{job.source}: {' '.join(str(error).split())[:200]}")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    body = buffer.getvalue()
    name = f"{job.name}.png"
    with atomic_write(settings.out / name) as handle:
        handle.write(body)
    return {"path": name, "source_url": job.source, "sha1": hashlib.sha1(job.svg.encode()).hexdigest(),
            "content_sha1": hashlib.sha1(body).hexdigest(), "bytes": len(body), "licence": job.licence,
            "artist": "", "title": job.title, "page_url": ""}


def rasterize(jobs: list[SvgJob], settings: Settings, workers: int, progress: bool) -> tuple[list[dict], list[Failure]]:
    """Render every job; the renders run in infra.icons' worker processes, so threads here keep them busy."""
    settings.out.mkdir(parents=True, exist_ok=True)
    rows, failures = [], []
    with ThreadPoolExecutor(workers) as pool:
        results = pool.map(lambda job: rasterize_one(job, settings), jobs)
        for result in tqdm(results, total=len(jobs), desc="Rasterizing", unit="icon", disable=not progress):
            (rows if isinstance(result, dict) else failures).append(result)
    rows.sort(key=lambda row: row["path"])
    write_text(settings.out / MANIFEST, manifest_text(rows))
    return rows, sorted(failures, key=lambda failure: failure.line)


def summary(rows: list[dict], failures: list[Failure], size: int, out: Path) -> str:
    line = f"Wrote {len(rows)} PNGs ({size}x{size}) to {out}"
    if failures:
        counts = Counter(failure.reason for failure in failures)
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(counts.items()))
        line += f"; {len(failures)} SVGs not rendered ({reasons}), listed above"
    return line


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
    parser.add_argument("--path", type=Path, default=None,
                        help="folder of .svg files, or one .svg file, for --source folder")
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
    parser.add_argument("--time-limit", type=float, default=RENDER_SECONDS,
                        help="seconds one SVG may take to render; a slower one is reported and skipped, and its "
                        f"render stopped (default: {RENDER_SECONDS:g}). SVGs over {MAX_SVG_BYTES} bytes, or whose "
                        "embedded images declare more than 4096x4096 pixels in all, are skipped without rendering")
    parser.add_argument("--limit", type=int, default=None, help="render only the first N icons by name (default: all)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="processes in parallel (default: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.check_size_and_margin(args.size, args.margin)
    cli.check_seconds("--time-limit", args.time_limit, 3600)
    cli.check_counts(limit=args.limit, workers=args.workers)
    if (args.source == "folder") != (args.path is not None):
        raise UserError("--path DIR goes with --source folder (the default) and only with it")
    if args.brand_colours and args.source != "simple-icons":
        raise UserError("--brand-colours applies to --source simple-icons only")
    check_output_folder(args.out, "--out")
    single = args.source == "folder" and args.path.is_file()
    if args.source == "folder":
        jobs = folder_jobs(args.path)
    elif args.source == "fontawesome":
        jobs = fontawesome_jobs(args.icon_set)
    else:
        jobs = simple_icons_jobs(args.brand_colours)
    jobs = jobs[: args.limit]
    settings = Settings(args.out, args.size, BACKGROUNDS[args.background], args.margin, args.time_limit)
    if single:  # one file asked for by name: its failure is the command's, before anything is written
        result = rasterize_one(jobs[0], settings)
        if isinstance(result, Failure):
            raise UserError(f"--path {result.line}")
        write_text(settings.out / MANIFEST, manifest_text([result]))
        print(summary([result], [], args.size, args.out))
        return 0
    rows, failures = rasterize(jobs, settings, args.workers, progress=not args.no_progress)
    for failure in failures:
        print(f"not rendered: {failure.line}", file=sys.stderr)
    print(summary(rows, failures, args.size, args.out))
    return 0


if __name__ == "__main__":
    cli.run(main)
