"""Checks on a config posted to the server: the trainer's own validation, then where its data may come from.

The server trains on behalf of whoever can reach it, so a posted config may only read data under the
server's data root: ``data_path`` (and ``data_dir``) are resolved against that root (symlinks followed) and
rewritten as absolute paths; anything outside it, and s3:// URLs (which would use the server's credentials),
is refused. So is a path whose files link out of the root: the files of an IDX folder, the shards of a
.npz dataset, each resolved on its own. Answers name paths relative to the root, never the root itself.
"""
from __future__ import annotations

from pathlib import Path

from infra.errors import UserError, quoted
from infra.storage import is_s3_url
from models.data import NAMED_DATASETS
from models.serve.errors import ApiError
from preprocessing.dataset import shard_names


def under_data_root(key: str, value: object, data_root: Path) -> str:
    root = data_root.resolve()
    if not isinstance(value, str) or not value or is_s3_url(value):
        raise ApiError(400, f"{key} = {quoted(value)} is not allowed here; use a path under the server's data root")
    if "\0" in value:
        raise ApiError(400, f"{key} = {quoted(value)} contains a NUL character; use a path under the server's "
                            "data root")
    try:
        path = (root / value).resolve()
        exists = path.exists()
    except (OSError, RuntimeError) as error:  # a name too long, a loop of links
        raise ApiError(400, f"{key} = {value[:200]!r} cannot be used as a path ({reason(error)})") from None
    if not path.is_relative_to(root):
        raise ApiError(403, f"{key} = {quoted(value)} lies outside the server's data root; use a path under it")
    if not exists:
        raise ApiError(400, f"{key} = {quoted(value)}: no such file or folder under the data root")
    try:
        outside = next((file for file in files_read_from(path) if not resolves_under(file, root)), None)
    except OSError as error:
        raise ApiError(400, f"{key} = {quoted(value)} cannot be read ({reason(error)})") from None
    if outside is not None:
        raise ApiError(403, f"{key} = {quoted(value)}: {outside.relative_to(root)} links to a file outside the "
                            "server's data root; copy the data into it instead")
    return str(path)


def reason(error: Exception) -> str:
    """The error without the (possibly very long) path an OSError repeats."""
    return str(getattr(error, "strerror", None) or error)[:200]


def files_read_from(path: Path) -> list[Path]:
    """What training from ``path`` may open: a folder's entries and its sub-folders' (where a data_dir keeps
    fashion_mnist/), or a .npz dataset's shards."""
    if path.is_dir():
        entries = list(path.iterdir())
        return entries + [child for entry in entries if entry.is_dir() for child in entry.iterdir()]
    if path.suffix == ".npz":
        try:
            return [path.with_name(name) for name in shard_names(path)]
        except UserError:  # not a readable dataset: the trainer says so, in the job's message
            return []
    return []


def resolves_under(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a loop of links leads nowhere, and nowhere is not under the root
        return False


def check_posted_config(config: object, data_root: Path) -> dict:
    """The config to hand to the trainer, with its data paths made absolute; ApiError/UserError if it is bad."""
    from models.config import resolve  # the schema pulls in the network builders: load them with the first job

    if not isinstance(config, dict):
        raise ApiError(400, f"a config must be a JSON object, got {type(config).__name__}")
    resolve(config, "posted config")
    checked = dict(config)
    data_path = config.get("data_path")
    if data_path is None:
        raise ApiError(
            400, "posted config: data_path is required: a .npz file or IDX folder under the server's data root, "
            f"or one of {', '.join(NAMED_DATASETS)}",
        )
    if data_path not in NAMED_DATASETS:
        checked["data_path"] = under_data_root("data_path", data_path, data_root)
    if config.get("data_dir") is not None:
        checked["data_dir"] = under_data_root("data_dir", config["data_dir"], data_root)
    return checked
