"""Stage datasets and run folders on S3 (or any S3-compatible server): push, pull, ls.

Uploads go in 8 MiB parts and every transfer is checked against the object's ETag; push and pull skip
files that are already identical on the other side, so re-running a sync only moves what changed.
A .npz dataset moves with its shards (a large dataset's files beside it), whichever way it goes.
Credentials come from --profile or the usual AWS chain (environment, ~/.aws, instance role).
"""
from __future__ import annotations

import argparse
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
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m preprocessing.s3",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "action", choices=("push", "pull", "ls"),
        help="push: upload local SRC (a file or folder) to the S3 URL DST; pull: download the object or "
        "every object under the prefix SRC into local DST; ls: list the objects under the S3 URL SRC",
    )  # fmt: skip
    parser.add_argument("src", help="local file/folder (push) or s3://BUCKET/KEY (pull, ls)")
    parser.add_argument(
        "dst", nargs="?", default=None,
        help="s3://BUCKET/KEY (push; a trailing / keeps the file name) or a local file/folder (pull); not used by ls",
    )  # fmt: skip
    parser.add_argument(
        "--endpoint-url", default=None,
        help="S3-compatible endpoint, e.g. http://127.0.0.1:8333 (default: $AWS_ENDPOINT_URL, else AWS S3)",
    )  # fmt: skip
    parser.add_argument("--profile", default=None, help="AWS profile from ~/.aws/config (default: the AWS credential chain)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.action == "ls":
        if args.dst is not None:
            raise UserError(f"ls takes one S3 URL; got an extra argument {args.dst!r}")
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


if __name__ == "__main__":
    cli.run(main)
