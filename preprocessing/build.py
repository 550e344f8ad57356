"""Stage 2 in one command: clean, square and resize folders of images (raster and SVG), dedupe, augment, pack.

    python -m preprocessing.build --input collected/logos --size 56 --trim --out data/logos_56.npz

:func:`build_folders` is the same stage with the command's defaults, for callers that are handed a folder of
images (``models.train --data FOLDER``).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from infra import cli
from preprocessing.augment import add_augment_arguments, augment_options, run_augment
from preprocessing.clean import add_clean_arguments, clean_folders, clean_options, skipped_examples
from preprocessing.dataset import Dataset
from preprocessing.dedupe import add_dedupe_arguments, dedupe, describe_duplicates, hamming_threshold
from preprocessing.pack import add_output_arguments, check_output_arguments, report_written, write_packed


DESCRIPTION = """\
Stage 2 in one command: clean, square and resize folders of images, dedupe, augment, pack.

Takes raster files (PNG, JPEG, GIF, WebP, BMP, TIFF ...) and SVG files mixed, from one or more --input
folders; SVGs are rendered in safe mode by the project's icon renderer. What was skipped is counted by
reason and file type, e.g. "skipped 3: 2 not an image (.doc), 1 corrupt (.png)", then the first two files of each
reason with what was wrong, e.g. "  corrupt: logo.png (Truncated File Read)".

Runs the steps that are also commands of their own, in memory and in this order:
preprocessing.clean (open safely, flatten, trim, fit, resize; labels and credits), preprocessing.dedupe
(exact and near duplicates), preprocessing.augment (only with --augment-to), then writes the .npz with its
contact sheet (and --legacy-pickle) like preprocessing.pack.
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m preprocessing.build",
        description=DESCRIPTION,
        epilog=(
            "examples:\n"
            "  python -m preprocessing.build --input collected/logos --size 56 --trim --out data/logos_56.npz\n"
            "  python -m preprocessing.build --input brand-svgs --input logo-pngs --out data/mylogos_56.npz\n"
            "  python -m preprocessing.build --input photos --size 112 --fit crop --augment-to 2000 "
            "--legacy-pickle --out data/photos_112.npz"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_clean_arguments(parser)
    add_dedupe_arguments(parser)
    parser.add_argument("--no-dedupe", action="store_true", help="keep duplicates")
    add_augment_arguments(parser, required=False)
    add_output_arguments(parser)
    return parser.parse_args(argv)


@dataclass
class Built:
    dataset: Dataset
    written: list[Path]  # the .npz first, then its contact sheet (and legacy pickle)
    summary: str  # what came in and what was skipped, one line


def build(args: argparse.Namespace, report: Callable[[str], None] = print) -> Built:
    """Run the stage as the parsed flags say; ``report`` gets each step's one-line account."""
    check_output_arguments(args)
    threshold = hamming_threshold(args)
    augmenting = augment_options(args)
    clean_options(args)  # every flag is checked before any work starts
    dataset, summary = clean_folders(args)
    report(summary)
    for line in skipped_examples(dataset.meta["skipped"], dataset.meta["skipped_why"]):
        report(line)
    if not args.no_dedupe:
        total = len(dataset.x)
        dataset, found = dedupe(dataset, threshold)
        report(describe_duplicates(found, total))
    if args.augment_to is not None:
        dataset = run_augment(dataset, augmenting)
    return Built(dataset, write_packed(dataset, args), summary)


def build_folders(folders: Sequence[Path], out: Path, size: int, progress: bool = False) -> Built:
    """Build ``out`` from ``folders`` with the command's defaults at ``size`` px, silently: the caller says what
    happened (``Built.summary``)."""
    flags = [f"--input={folder}" for folder in folders]
    flags += [f"--size={size}", f"--out={out}"] + ([] if progress else ["--no-progress"])
    return build(parse_args(flags), report=lambda line: None)


def main(argv=None) -> int:
    built = build(parse_args(argv))
    report_written(built.written, built.dataset)
    return 0


if __name__ == "__main__":
    cli.run(main)
