"""Datasets on S3: a sharded dataset is its index file plus the shard files beside it, and they move together.

A push uploads the shards before the index, so whoever finds the new index on S3 finds its shards too. A
pull fetches the index to a hidden name, reads which shards it names, fetches those into the same folder
and only then moves the index into place, so an interrupted pull leaves the previous local copy whole;
shards of earlier versions of the dataset are then deleted. Files already identical on the other side are
skipped, as in :mod:`infra.storage`.
"""
from __future__ import annotations

import os
from pathlib import Path

from infra import storage
from infra.errors import UserError
from preprocessing.dataset import remove_stale_shards, shard_names


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

    ``url`` names a .npz object; ``local_path`` is a file path, or a folder (existing, or ending in a slash)
    to keep the object's file name in.
    """
    client = client or storage.s3_client()
    _, key = storage.split_s3_url(url)
    index = storage.local_destination(local_path, key)
    remote = next((entry for entry in storage.list_objects(url, client) if entry["key"] == key), None)
    if remote is None:
        raise UserError(f"{url}: no such object")
    if storage.matches_etag(index, remote["etag"], remote["size"]):
        result = storage.SyncResult(unchanged=[str(index)])
        names = _pull_shards(url, index, index, result, client)
    else:
        staged = index.with_name(f".{index.name}.pulled")
        try:
            storage.pull(url, staged, client)
            result = storage.SyncResult()
            names = _pull_shards(url, staged, index, result, client)
            os.replace(staged, index)
        finally:
            staged.unlink(missing_ok=True)
        result.copied.append(str(index))
    remove_stale_shards(index, keep=names)
    return index, result


def _pull_shards(url: str, index_copy: Path, index: Path, result: storage.SyncResult, client) -> list[str]:
    """Fetch the shards the downloaded index names to beside ``index``; returns their names."""
    bucket, key = storage.split_s3_url(url)
    names = shard_names(index_copy)
    if names:
        folder = _folder_of(key)
        remote = {entry["key"] for entry in storage.list_objects(f"s3://{bucket}/{folder}", client)}
        missing = [name for name in names if folder + name not in remote]
        if missing:
            raise UserError(f"{url}: names {len(missing)} shard(s) that are not on S3 beside it, e.g. "
                            f"s3://{bucket}/{folder}{missing[0]}; push the dataset again")
        for name in names:
            _merge(result, storage.pull(f"s3://{bucket}/{folder}{name}", index.with_name(name), client))
    return names
