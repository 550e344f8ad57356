"""Stage 2 in one command: clean, square and resize a folder of images, dedupe, augment, pack.

    python -m preprocessing.build --input collected/logos --size 56 --trim --out data/logos_56.npz
"""
from __future__ import annotations

import argparse

from infra import cli
from preprocessing.augment import add_augment_arguments, augment_options, run_augment
from preprocessing.clean import add_clean_arguments, clean_options, run_clean
from preprocessing.dedupe import add_dedupe_arguments, dedupe, describe_duplicates, hamming_threshold
from preprocessing.pack import add_output_arguments, check_output_arguments, report_written, write_packed


DESCRIPTION = """\
Stage 2 in one command: clean, square and resize a folder of images, dedupe, augment, pack.

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


def main(argv=None) -> int:
    args = parse_args(argv)
    check_output_arguments(args)
    threshold = hamming_threshold(args)
    augmenting = augment_options(args)
    clean_options(args)  # every flag is checked before any work starts
    dataset = run_clean(args)
    if not args.no_dedupe:
        total = len(dataset.x)
        dataset, found = dedupe(dataset, threshold)
        print(describe_duplicates(found, total))
    if args.augment_to is not None:
        dataset = run_augment(dataset, augmenting)
    report_written(write_packed(dataset, args), dataset)
    return 0


if __name__ == "__main__":
    cli.run(main)
