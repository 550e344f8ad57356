"""Datasets on S3: a sharded dataset is its index file plus the shard files beside it, and they move together.

A push uploads the shards before the index, so whoever finds the new index on S3 finds its shards too. A
pull fetches the index, reads which shards it names and fetches those into the same folder; files already
identical on the other side are skipped, as in :mod:`infra.storage`.
"""
from __future__ import annotations

from pathlib import Path

from infra import storage
from infra.cli import UserError
from preprocessing.dataset import shard_names


def is_dataset(path_or_url) -> bool:
    return str(path_or_url).endswith(".npz")


def _index_key(key: str, file_name: str) -> str:
    """Where a push puts the index: under the given key, or named as the local file when the key is a folder."""
    return key + file_name if not key or key.endswith("/") else key


def _folder_of(key: str) -> str:
    return key[: key.rfind("/") + 1]


def _merge(total: storage.SyncResult, part: storage.SyncResult) -> None:
    total.copied += part.copied
    total.unchanged += part.unchanged
    total.changing += part.changing


def push_dataset(path, url: str, client=None) -> storage.SyncResult:
    """Upload the dataset ``path`` (and its shards, first) to ``url``, an S3 key or a folder ending in /."""
    path = Path(path)
    client = client or storage.s3_client()
    bucket, key = storage.split_s3_url(url)
    index_key = _index_key(key, path.name)
    result = storage.SyncResult()
    for name in shard_names(path):
        _merge(result, storage.push(path.with_name(name), f"s3://{bucket}/{_folder_of(index_key)}{name}", client))
    _merge(result, storage.push(path, f"s3://{bucket}/{index_key}", client))
    return result


def pull_dataset(url: str, local_path, client=None) -> tuple[Path, storage.SyncResult]:
    """Download the dataset at ``url`` and the shards it names; returns the local index path and what moved.

    ``url`` names a .npz object; ``local_path`` is a file path, or an existing folder to keep the object's
    file name in.
    """
    client = client or storage.s3_client()
    bucket, key = storage.split_s3_url(url)
    result = storage.pull(url, local_path, client)
    index = Path((result.copied + result.unchanged)[0])
    names = shard_names(index)
    if names:
        folder = _folder_of(key)
        remote = {entry["key"] for entry in storage.list_objects(f"s3://{bucket}/{folder}", client)}
        missing = [name for name in names if folder + name not in remote]
        if missing:
            raise UserError(f"{url}: names {len(missing)} shard(s) that are not on S3 beside it, e.g. "
                            f"s3://{bucket}/{folder}{missing[0]}; push the dataset again")
        for name in names:
            _merge(result, storage.pull(f"s3://{bucket}/{folder}{name}", index.with_name(name), client))
    return index, result
