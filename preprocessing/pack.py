"""Write a dataset the way every preprocessing step does, or re-pack an existing one.

    python -m preprocessing.pack --input X_train_56_1700.pkl --allow-pickle --out data/old_logos_56.npz
"""
from __future__ import annotations

import argparse
from pathlib import Path

from infra import cli
from infra.errors import UserError
from infra.output_paths import check_output_file
from preprocessing.contact_sheet import write_contact_sheet
from preprocessing.dataset import Dataset, load_dataset, save_dataset, save_legacy_pickle

MIB = 1024 * 1024
DEFAULT_SHARD_MB = 1024


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="dataset file to write, ending in .npz (required)")
    parser.add_argument(
        "--shard-mb", type=int, default=DEFAULT_SHARD_MB,
        help="split datasets whose images exceed this many MiB into shards of at most that size, read back as "
        f"one by load_dataset (default: {DEFAULT_SHARD_MB})",
    )  # fmt: skip
    parser.add_argument(
        "--legacy-pickle", action="store_true",
        help="also write the walkthrough's X_train_<h>_<N>.pkl (float32 0..255) beside --out, for old scripts",
    )  # fmt: skip


def check_output_arguments(args: argparse.Namespace) -> None:
    if args.out.suffix != ".npz":
        raise UserError(f"--out {args.out}: a dataset file must end in .npz")
    if args.shard_mb < 1:
        raise UserError(f"--shard-mb {args.shard_mb} must be 1 or more")
    check_output_file(args.out, "--out")


def write_packed(dataset: Dataset, args: argparse.Namespace) -> list[Path]:
    """Write ``dataset`` to ``args.out`` with its contact sheet (and legacy pickle); return what was written."""
    written = [
        save_dataset(
            args.out, dataset.x, dataset.y, dataset.class_names, dataset.meta, shard_bytes=args.shard_mb * MIB
        ),
        write_contact_sheet(args.out, dataset.x),
    ]
    if args.legacy_pickle:
        written.append(save_legacy_pickle(args.out.parent, dataset.x))
    return written


def describe(dataset: Dataset) -> str:
    height, width, channels = dataset.image_shape
    kind = "RGB" if channels == 3 else "greyscale"
    classes = f", {len(dataset.class_names)} classes" if dataset.class_names else ""
    return f"{len(dataset.x)} images, {height}x{width} {kind}{classes}"


def report_written(written: list[Path], dataset: Dataset) -> None:
    print(f"Wrote {written[0]}: {describe(dataset)}")
    for path in written[1:]:
        print(f"Wrote {path}")


DESCRIPTION = """\
Write a dataset the way every preprocessing step does, or re-pack an existing one.

Writing means: the .npz (in shards when large), a contact sheet PNG beside it and, with
--legacy-pickle, the walkthrough's X_train_{h}_{N}.pkl float32 array for old scripts. As a command
it converts a walkthrough pickle to .npz, re-shards, or adds the legacy pickle to an existing dataset.
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m preprocessing.pack",
        description=DESCRIPTION,
        epilog=(
            "examples:\n"
            "  python -m preprocessing.pack --input X_train_56_1700.pkl --allow-pickle --out data/old_logos_56.npz\n"
            "  python -m preprocessing.pack --input data/logos_56.npz --out data/logos_56.npz --legacy-pickle"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", type=Path, required=True, help="dataset to read: .npz, or a walkthrough .pkl")
    parser.add_argument(
        "--allow-pickle", action="store_true",
        help="accept a .pkl input; unpickling can run arbitrary code, so only for files you made (default: refuse)",
    )  # fmt: skip
    add_output_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    check_output_arguments(args)
    dataset = load_dataset(args.input, allow_pickle=args.allow_pickle)
    report_written(write_packed(dataset, args), dataset)
    return 0


if __name__ == "__main__":
    cli.run(main)
