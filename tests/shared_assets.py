"""Where the tests find the shared assets: one setting, ``LOGOGAN_SHARED`` (default ``../shared``).

On a machine without them, an asset with a public original is fetched once into
``shared`` in the user cache folder (infra.user_cache: ``~/.cache/logogan/shared``) when online; otherwise the test that needs it is skipped with a message that
names the missing file and the setting.
"""
from __future__ import annotations

import gzip
import urllib.request
from pathlib import Path

import pytest

from infra.shared_assets import SETTING, shared_root
from infra.user_cache import user_cache_dir

FASHION_MNIST_URL = "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_8K = 8226  # the shared copy holds the first 8,226 training records


def _fetch_fashion_mnist_prefix(name: str, target: Path) -> None:
    """Download a public Fashion-MNIST IDX file and keep its first 8,226 records, like the shared copy."""
    with urllib.request.urlopen(FASHION_MNIST_URL + name, timeout=20) as response:
        raw = gzip.decompress(response.read())
    header = 16 if "images" in name else 8
    record = 28 * 28 if "images" in name else 1
    count = FASHION_MNIST_8K.to_bytes(4, "big")
    body = raw[:4] + count + raw[8:header] + raw[header : header + FASHION_MNIST_8K * record]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gzip.compress(body))


PUBLIC_ORIGINALS = {
    f"data/fashion-mnist-8k/{name}": name
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
}


def shared_asset(relative: str) -> Path:
    """The path of a shared asset, fetched if it has a public original, else the calling test is skipped."""
    local = shared_root() / relative
    if local.exists():
        return local
    cached = user_cache_dir("shared", relative)
    if cached.exists():
        return cached
    if relative in PUBLIC_ORIGINALS:
        try:
            _fetch_fashion_mnist_prefix(PUBLIC_ORIGINALS[relative], cached)
            return cached
        except OSError as error:
            pytest.skip(f"missing shared asset {local} (set {SETTING}); fetching the public original failed: {error}")
    pytest.skip(f"missing shared asset {local}: set {SETTING} to the folder that holds {relative}")
