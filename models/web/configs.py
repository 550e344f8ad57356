"""Checks on a config posted to the server: the trainer's own validation, then where its data may come from.

The server trains on behalf of whoever can reach it, so a posted config may only read data under the
server's data root: ``data_path`` (and ``data_dir``) are resolved against that root (symlinks followed) and
rewritten as absolute paths; anything outside it, and s3:// URLs (which would use the server's credentials),
is refused.
"""
from __future__ import annotations

from pathlib import Path

from infra.storage import is_s3_url
from models.data import NAMED_DATASETS
from models.web.errors import ApiError


def under_data_root(key: str, value: object, data_root: Path) -> str:
    root = data_root.resolve()
    if not isinstance(value, str) or not value or is_s3_url(value):
        raise ApiError(400, f"{key} = {value!r} is not allowed here; use a path under the server's data root {root}")
    path = (root / value).resolve()
    if not path.is_relative_to(root):
        raise ApiError(403, f"{key} = {value!r} lies outside the server's data root {root}; use a path under it")
    if not path.exists():
        raise ApiError(400, f"{key} = {value!r}: no such file or folder under the data root {root}")
    return str(path)


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
