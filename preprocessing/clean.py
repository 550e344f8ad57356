"""Clean folders of real-world images (raster and SVG) into a square, same-size dataset.

    python -m preprocessing.clean --input collected/logos --size 56 --trim --out data/logos_56_raw.npz
"""
from __future__ import annotations

import argparse
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from infra import cli
from infra.errors import UserError
from infra.icons import GZIP_MAGIC, UTF16_MARKS, SvgError, render_svg, svg_file_text
from infra.image_files import MAX_FILE_BYTES
from infra.regular_files import read_regular_file
from preprocessing.collection import LABEL_MODES, Collection, scan_collection
from preprocessing.dataset import Dataset
from preprocessing.geometry import FITS, as_channels, square_and_resize
from preprocessing.images import DEFAULT_MAX_PIXELS, SkippedImage, flatten_visibly, is_flat, open_image
from preprocessing.pack import add_output_arguments, check_output_arguments, report_written, write_packed
from preprocessing.provenance import licence_counts

# An SVG file: optional XML declaration, comments and doctype, then the <svg> root element. Files are
# recognised by content, not name, so a PNG saved as .svg still opens and an SVG without the suffix renders.
_SVG_START = re.compile(
    r"\A\s*(?:<\?xml[^>]*\?>\s*)?(?:(?:<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)\s*)*<svg\b",
    re.IGNORECASE | re.DOTALL,
)
SVG_SNIFF_CHARS = 65536
# <image href="logo.png"> or xlink:href: a picture the safe renderer never fetches (data: URIs are drawn).
_LINKED_IMAGE = re.compile(r"""<image\b[^>]*?\bhref\s*=\s*["']\s*(?!data:|#)([^"']+)["']""", re.IGNORECASE)


@dataclass(frozen=True)
class CleanOptions:
    size: int = 56
    fit: str = "pad"
    trim: bool = False
    margin: float = 0.06
    tolerance: int = 12
    grayscale: bool = False
    min_size: int = 16
    max_aspect: float = 4.0
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass
class Cleaned:
    """The images that made it, in input order, and the files that did not, by reason."""

    x: np.ndarray
    kept: list[int]  # indices into the collection's files
    skipped: dict[str, list[str]] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)  # each skipped file's "reason: detail"
    on_black: list[str] = field(default_factory=list)  # light marks on transparency, flattened onto black


def svg_text(data: bytes) -> str | None:
    """The SVG's text when ``data`` is an SVG file (UTF-8, UTF-16 or gzipped, as infra.icons reads them), else
    None."""
    if data[:2] == GZIP_MAGIC or data[:2] in UTF16_MARKS or data.lstrip()[:1] in (b"<", b"\xef"):
        try:
            text = svg_file_text(data)
        except SvgError as error:
            raise SkippedImage(error.reason, str(error)) from None
        if _SVG_START.match(text[:SVG_SNIFF_CHARS]):
            return text
    return None


def clean_image(data: bytes, options: CleanOptions) -> tuple[np.ndarray, bool]:
    """One encoded image (raster or SVG) -> (uint8 (size, size, 3|1), whether it was put on black); raises
    SkippedImage with the reason."""
    text = svg_text(data)
    if text is not None:
        image = open_svg(text, options)
    else:
        image = open_image(data, options.max_pixels)
        width, height = image.size
        if max(width, height) / min(width, height) > options.max_aspect:
            raise SkippedImage("extreme aspect", f"{width}x{height} beyond --max-aspect {options.max_aspect}")
        if min(width, height) < options.min_size:
            raise SkippedImage("too small", f"{width}x{height} < --min-size {options.min_size}")
    image, on_black = flatten_visibly(image, options.grayscale, options.tolerance)
    if is_flat(image, options.tolerance):
        raise SkippedImage("blank", "one flat colour: nothing is drawn")
    image = square_and_resize(image, options.size, options.fit, options.trim, options.margin, options.tolerance)
    return as_channels(image), on_black


def svg_render_side(size: int) -> int:
    """SVGs are drawn larger than the output, so that --trim and the antialiased resize start from a sharp image
    as they do with a large raster."""
    return min(max(4 * size, 256), 2048)


def open_svg(text: str, options: CleanOptions) -> Image.Image:
    """Render an SVG with the project's icon renderer (safe mode, within its limits) onto transparency, centred
    on a square canvas; the renderer's refusals are skips with its reason (cannot render, SVG too large ...).

    A vector image has no pixel size and is framed by its own view box, so --min-size and --max-aspect do not
    apply (a wordmark in a square icon's view box is a logo, not a banner).
    """
    linked = _LINKED_IMAGE.search(text)
    if linked:  # drawn without it, the mark would be blank or a fragment
        raise SkippedImage("links an image", f"its <image> links {linked.group(1)[:60]!r}, never fetched: embed it "
                                             "as a data: URI or give the image file")
    try:
        canvas = render_svg(text, svg_render_side(options.size), background=None)
    except SvgError as error:
        raise SkippedImage(error.reason, str(error)) from None
    if canvas.getchannel("A").getbbox() is None:
        raise SkippedImage("blank", "the SVG draws nothing")
    return canvas


def _clean_file(job: tuple[Path, CleanOptions]) -> tuple[np.ndarray, bool] | str:
    """Worker: clean_image's answer, or "reason: detail" of its skip (exceptions do not cross processes well)."""
    path, options = job
    try:  # a pipe or a device in the folder is refused at once, never read (a pipe would wait forever)
        return clean_image(read_regular_file(path, MAX_FILE_BYTES), options)
    except OSError as error:
        return f"unreadable: {error.strerror or error}"
    except SkippedImage as skipped:
        return str(skipped)


def clean_collection(collection: Collection, options: CleanOptions, workers: int, progress: bool) -> Cleaned:
    jobs = [(path, options) for path in collection.files]
    bar = dict(total=len(jobs), desc="Cleaning images", unit="img", disable=not progress)
    if workers == 1:
        results = list(tqdm(map(_clean_file, jobs), **bar))
    else:
        with Pool(workers) as pool:
            results = list(tqdm(pool.imap(_clean_file, jobs, chunksize=16), **bar))
    kept = [index for index, result in enumerate(results) if not isinstance(result, str)]
    skipped: dict[str, list[str]] = {}
    why: dict[str, str] = {}
    for name, result in zip(collection.source_names(), results):
        if isinstance(result, str):
            skipped.setdefault(result.split(":")[0], []).append(name)
            why[name] = result
    if not kept:
        folders = " --input ".join(str(root) for root in collection.roots)
        raise UserError(f"--input {folders}: no usable images ({describe_skipped(skipped)})")
    names = collection.source_names()
    return Cleaned(x=np.stack([results[index][0] for index in kept]), kept=kept, skipped=skipped, why=why,
                   on_black=[names[index] for index in kept if results[index][1]])


def describe_skipped(skipped: dict[str, list[str]]) -> str:
    """E.g. ``skipped 3: 2 not an image (.txt), 1 corrupt (1 .png, 1 .svg)``: by reason, then by file type."""
    if not skipped:
        return "none skipped"
    total = sum(len(paths) for paths in skipped.values())
    return f"skipped {total}: " + ", ".join(
        f"{len(paths)} {reason} ({describe_types(paths)})" for reason, paths in sorted(skipped.items())
    )


def skipped_examples(skipped: dict[str, list[str]], why: dict[str, str], per_reason: int = 2) -> list[str]:
    """The first files skipped for each reason, with what was wrong, so that one bad file is found without
    opening the dataset's metadata: ``  corrupt: logo.png (cannot identify image file ...)``."""
    lines = []
    for reason, paths in sorted(skipped.items()):
        named = []
        for path in paths[:per_reason]:
            detail = why.get(path, reason).partition(":")[2].strip()
            detail = detail.removeprefix(f"{reason}:").strip()  # some refusals name their reason again
            named.append(f"{path} ({detail[:120]})" if detail else path)
        more = f" and {len(paths) - per_reason} more" if len(paths) > per_reason else ""
        lines.append(f"  {reason}: {', '.join(named)}{more}")
    return lines


def describe_types(paths: list[str]) -> str:
    """``.png`` when all share one type, else ``2 .png, 1 .svg``; a file without a suffix is ``no suffix``."""
    return describe_suffix_counts(Counter(Path(path).suffix.lower() or "no suffix" for path in paths))


def describe_suffix_counts(types: dict[str, int]) -> str:
    if len(types) == 1:
        return next(iter(types))
    return ", ".join(f"{count} {suffix}" for suffix, count in sorted(types.items()))


def describe_inputs(collection: Collection, cleaned: Cleaned) -> str:
    """``Cleaned 197 of 200 files`` and, with several folders, how many each gave."""
    summary = f"Cleaned {len(cleaned.kept)} of {len(collection.files)} files"
    if len(collection.roots) > 1:
        counts = input_counts(collection, cleaned)
        summary += " (" + ", ".join(f"{row['folder']}: {row['kept']} of {row['files']}" for row in counts) + ")"
    return summary


def input_counts(collection: Collection, cleaned: Cleaned) -> list[dict]:
    files, kept = Counter(collection.file_roots), Counter(collection.file_roots[index] for index in cleaned.kept)
    return [{"folder": str(root), "files": files[index], "kept": kept[index]}
            for index, root in enumerate(collection.roots)]


def cleaned_dataset(collection: Collection, cleaned: Cleaned, options: CleanOptions) -> Dataset:
    """The dataset with its provenance: source paths, credits, licences and what was skipped."""
    names = collection.source_names()
    sources = [names[index] for index in cleaned.kept]
    meta = {
        "input": str(collection.root) if len(collection.roots) == 1 else [str(root) for root in collection.roots],
        "inputs": input_counts(collection, cleaned),
        "sources": sources,
        "count": len(sources),
        "skipped": {reason: paths for reason, paths in sorted(cleaned.skipped.items())},
        "skipped_why": dict(sorted(cleaned.why.items())),
        "ignored_non_images": collection.ignored,
        "on_black": cleaned.on_black,
        "clean": asdict(options),
    }
    if collection.credits:
        credits = [collection.credits.get(source, {}) for source in sources]
        meta["credits"] = credits
        meta["licences"] = licence_counts(credits)
    labels = None if collection.labels is None else np.array([collection.labels[index] for index in cleaned.kept])
    return Dataset(x=cleaned.x, y=labels, class_names=collection.class_names if labels is not None else None, meta=meta)


def add_clean_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = CleanOptions()
    parser.add_argument(
        "--input", type=Path, action="append", required=True,
        help="folder of images: PNG, JPEG, GIF, WebP, BMP, TIFF ... and SVG (rendered in safe mode), mixed; class "
        "subfolders become labels; repeat to take several folders together",
    )  # fmt: skip
    parser.add_argument("--size", type=int, default=defaults.size, help=f"side of the square output images, 8 or more (default: {defaults.size})")
    parser.add_argument(
        "--fit", choices=FITS, default=defaults.fit,
        help="pad: keep the whole image, pad to square with its background colour; crop: centre square "
        f"(the walkthrough's) (default: {defaults.fit})",
    )  # fmt: skip
    parser.add_argument("--trim", action="store_true", help="cut uniform background borders around the content first")
    parser.add_argument(
        "--margin", type=float, default=defaults.margin,
        help=f"with --trim: fraction of the side left blank around the content, 0 to 0.4 (default: {defaults.margin})",
    )  # fmt: skip
    parser.add_argument(
        "--tolerance", type=int, default=defaults.tolerance,
        help=f"with --trim: how far (0-255 per channel) a pixel may differ from the background and still be border (default: {defaults.tolerance})",
    )  # fmt: skip
    parser.add_argument("--grayscale", action="store_true", help="one grey channel instead of RGB")
    parser.add_argument("--min-size", type=int, default=defaults.min_size, help=f"skip images whose shorter side is below this (default: {defaults.min_size})")
    parser.add_argument(
        "--max-aspect", type=float, default=defaults.max_aspect,
        help=f"skip images whose long side exceeds this many times the short side (default: {defaults.max_aspect})",
    )  # fmt: skip
    parser.add_argument(
        "--max-pixels", type=int, default=defaults.max_pixels,
        help=f"refuse images declaring more pixels than this, as decompression bombs (default: {defaults.max_pixels})",
    )  # fmt: skip
    parser.add_argument(
        "--labels", choices=LABEL_MODES, default="auto",
        help="folders: one class per top-level subfolder; none: unlabelled; auto: folders when the top level "
        "holds only subfolders (two or more) (default: auto)",
    )  # fmt: skip
    parser.add_argument("--manifest", type=Path, default=None, help="credits CSV (default: each --input folder's manifest.csv when present)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="processes working in parallel (default: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def clean_options(args: argparse.Namespace) -> CleanOptions:
    """Check the cleaning flags and gather them; each bad value is named with what is allowed."""
    cli.check_size_and_margin(args.size, args.margin)
    if not 0 <= args.tolerance <= 255:
        raise UserError(f"--tolerance {args.tolerance} is outside 0..255")
    if args.min_size < 1:
        raise UserError(f"--min-size {args.min_size} must be 1 or more")
    if not args.max_aspect >= 1:  # NaN too
        raise UserError(f"--max-aspect {args.max_aspect} must be 1 or more (inf: no limit)")
    if args.max_pixels < 1:
        raise UserError(f"--max-pixels {args.max_pixels} must be 1 or more")
    if args.workers < 1:
        raise UserError(f"--workers {args.workers} must be 1 or more")
    return CleanOptions(
        size=args.size, fit=args.fit, trim=args.trim, margin=args.margin, tolerance=args.tolerance,
        grayscale=args.grayscale, min_size=args.min_size, max_aspect=args.max_aspect, max_pixels=args.max_pixels,
    )  # fmt: skip


def run_clean(args: argparse.Namespace) -> Dataset:
    """Scan, clean and describe the input folders as the flags say; prints what was skipped."""
    dataset, summary = clean_folders(args)
    print(summary)
    for line in skipped_examples(dataset.meta["skipped"], dataset.meta["skipped_why"]):
        print(line)
    return dataset


def clean_folders(args: argparse.Namespace) -> tuple[Dataset, str]:
    """The cleaned dataset of the input folders, and one line saying what came in and what was skipped."""
    options = clean_options(args)
    collection = scan_collection(args.input, args.labels, args.manifest)
    cleaned = clean_collection(collection, options, args.workers, progress=not args.no_progress)
    ignored = sum(collection.ignored.values())
    summary = f"{describe_inputs(collection, cleaned)}; {describe_skipped(cleaned.skipped)}"
    if ignored:
        summary += f"; ignored {ignored} non-image files ({describe_suffix_counts(collection.ignored)})"
    if cleaned.on_black:
        count = len(cleaned.on_black)
        summary += (f"; {count} light {'mark' if count == 1 else 'marks'} on transparency put on black "
                    f"({describe_types(cleaned.on_black)})")
    return cleaned_dataset(collection, cleaned, options), summary


DESCRIPTION = """\
Clean folders of real-world images into a square, same-size dataset.

Raster files (PNG, JPEG, GIF, WebP, BMP, TIFF ...) and SVG files may be mixed, in one or more --input
folders. SVGs are rendered with the project's icon renderer in its safe mode (no external files or URLs): an
SVG whose <image> links a picture is skipped ("links an image"), since it would be drawn without it; pictures
embedded as data: URIs are drawn.
SVG files may be UTF-8, UTF-16 or gzipped (.svgz). Every file is opened safely (decompression bombs refused,
structure verified, then fully decoded), brought to RGB (or grey) with transparency flattened onto white (onto
black for a light mark that would vanish on white, as logos for dark backgrounds are drawn), optionally
trimmed of uniform borders, squared by padding with the background (or centre-cropped) and resized with
antialiasing. Files that are corrupt, blank (one flat colour), too small or extremely elongated are skipped and
counted by reason and file type. Class subfolders become labels; manifest.csv from the collection stage
supplies credits and licences. Runs on all cores.
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m preprocessing.clean",
        description=DESCRIPTION,
        epilog="example:\n  python -m preprocessing.clean --input collected/logos --size 56 --trim --out data/logos_56_raw.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_clean_arguments(parser)
    add_output_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    check_output_arguments(args)
    dataset = run_clean(args)
    report_written(write_packed(dataset, args), dataset)
    return 0


if __name__ == "__main__":
    cli.run(main)
