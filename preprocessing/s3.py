"""Stage datasets and run folders on S3 (or any S3-compatible server): push, pull, ls, clean.

Uploads go in 8 MiB parts and every transfer is checked against the object's ETag; push and pull skip
files that are already identical on the other side, so re-running a sync only moves what changed.
A .npz dataset moves with its shards (a large dataset's files beside it), whichever way it goes.
A push that fails, or is stopped with Ctrl-C or SIGTERM, aborts its upload in parts, so no orphan
parts stay in the bucket; a push killed outright (SIGKILL, a lost machine) cannot, and leaves an
incomplete upload whose parts still take space: ls --incomplete lists those, clean aborts them.
Credentials come from --profile or the usual AWS chain (environment, ~/.aws, instance role).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from infra import cli, storage
from infra.errors import UserError
from infra.output_paths import check_output_location
from preprocessing.remote_dataset import is_dataset, pull_dataset, push_dataset

EXAMPLES = """\
examples:
  python -m preprocessing.s3 push data/logos_56.npz s3://my-bucket/datasets/
  python -m preprocessing.s3 pull s3://my-bucket/datasets/logos_56.npz data/
  python -m preprocessing.s3 push runs/dcgan-56 s3://my-bucket/runs/dcgan-56
  python -m preprocessing.s3 ls s3://my-bucket/runs/ --endpoint-url http://127.0.0.1:8333
  python -m preprocessing.s3 ls --incomplete s3://my-bucket/datasets/
  python -m preprocessing.s3 clean s3://my-bucket/datasets/ --older-than 0
"""
CLEAN_DEFAULT_HOURS = 24.0  # younger uploads may belong to a push still running elsewhere


def hours(text: str) -> float:
    """--older-than: a number of hours, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours >= 0 (e.g. 24, 0.5 or 0)")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m preprocessing.s3",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "action", choices=("push", "pull", "ls", "clean"),
        help="push: upload local SRC (a file or folder) to the S3 URL DST; pull: download the object or "
        "every object under the prefix SRC into local DST; ls: list the objects under the S3 URL SRC (with "
        "--incomplete: the uploads in parts started under SRC and never finished, with their parts' size); "
        "clean: abort the incomplete uploads under SRC started at least --older-than hours ago, which frees "
        "their parts",
    )  # fmt: skip
    parser.add_argument("src", help="local file/folder (push) or s3://BUCKET/KEY (pull, ls, clean)")
    parser.add_argument(
        "dst", nargs="?", default=None,
        help="s3://BUCKET/KEY (push; a trailing / keeps the file name) or a local file/folder (pull); not used by "
        "ls or clean",
    )  # fmt: skip
    parser.add_argument(
        "--incomplete", action="store_true",
        help="ls only: list incomplete uploads in parts (what a killed push left) instead of objects",
    )  # fmt: skip
    parser.add_argument(
        "--older-than", type=hours, default=None, metavar="HOURS",
        help=f"clean only: abort the incomplete uploads started at least HOURS ago; 0 aborts all of them, "
        f"including one a push still running is making (default: {CLEAN_DEFAULT_HOURS:g})",
    )  # fmt: skip
    parser.add_argument(
        "--endpoint-url", default=None,
        help="S3-compatible endpoint, e.g. http://127.0.0.1:8333 (default: $AWS_ENDPOINT_URL, else AWS S3)",
    )  # fmt: skip
    parser.add_argument("--profile", default=None, help="AWS profile from ~/.aws/config (default: the AWS credential chain)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.incomplete and args.action != "ls":
        raise UserError(f"--incomplete goes with ls, not {args.action}; see python -m preprocessing.s3 --help")
    if args.older_than is not None and args.action != "clean":
        raise UserError(f"--older-than goes with clean, not {args.action}; see python -m preprocessing.s3 --help")
    with cli.sigterm_as_interrupt():  # an upload in parts is aborted on the way out
        return _run(args)


def _run(args) -> int:
    if args.action in ("ls", "clean") and args.dst is not None:
        raise UserError(f"{args.action} takes one S3 URL; got an extra argument {args.dst!r}")
    if args.action == "clean" or args.incomplete:
        return _incomplete(args)
    if args.action == "ls":
        objects = storage.list_objects(args.src, storage.s3_client(args.endpoint_url, args.profile))
        bucket, _ = storage.split_s3_url(args.src)
        for entry in objects:
            print(f"{entry['size']:>12}  {entry['etag']}  s3://{bucket}/{entry['key']}")
        print(f"{len(objects)} objects, {sum(entry['size'] for entry in objects)} bytes")
        return 0
    if args.dst is None:
        raise UserError(f"{args.action} needs SRC and DST; see --help")
    storage.split_s3_url(args.dst if args.action == "push" else args.src)
    if args.action == "pull":
        check_output_location(args.dst, "DST")
    client = storage.s3_client(args.endpoint_url, args.profile)
    if args.action == "push":
        if Path(args.src).is_file() and is_dataset(args.src):
            result = push_dataset(args.src, args.dst, client)
        else:
            result = storage.push(args.src, args.dst, client)
    elif is_dataset(args.src):
        _, result = pull_dataset(args.src, args.dst, client)
    else:
        result = storage.pull(args.src, args.dst, client)
    for target in result.copied:
        print(f"copied    {target}")
    changing = f", {len(result.changing)} changed while copying (the next push copies them)" if result.changing else ""
    print(f"{len(result.copied)} copied, {len(result.unchanged)} already identical{changing}")
    return 0


def _incomplete(args) -> int:
    """ls --incomplete and clean: the uploads in parts that were never finished under SRC."""
    bucket, _ = storage.split_s3_url(args.src)
    client = storage.s3_client(args.endpoint_url, args.profile)
    if args.action == "ls":
        uploads = storage.incomplete_uploads(args.src, client)
        for upload in uploads:
            print(f"{_describe(upload)}  s3://{bucket}/{upload.key}  {upload.upload_id}")
        print(f"{len(uploads)} incomplete uploads, {sum(upload.bytes for upload in uploads)} bytes in their parts")
        return 0
    older_than = CLEAN_DEFAULT_HOURS if args.older_than is None else args.older_than
    aborted, kept = storage.abort_incomplete_uploads(args.src, older_than, client)
    for upload in aborted:
        print(f"aborted   {_describe(upload)}  s3://{bucket}/{upload.key}")
    freed = sum(upload.bytes for upload in aborted)
    younger = (f", {len(kept)} started less than {older_than:g} hours ago kept (--older-than 0 aborts them too)"
               if kept else "")
    print(f"{len(aborted)} aborted ({freed} bytes freed){younger}")
    return 0


def _describe(upload: storage.IncompleteUpload) -> str:
    return f"{upload.initiated:%Y-%m-%d %H:%M:%S}Z {upload.parts:>5} parts {upload.bytes:>12} bytes"


if __name__ == "__main__":
    cli.run(main)
