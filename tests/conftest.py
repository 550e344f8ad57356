"""Fixtures every stage's tests share."""
from __future__ import annotations

import pytest

from tests.shared_assets import shared_asset


@pytest.fixture(scope="session")
def fashion_mnist_dir():
    """The shared folder of the first 8,226 Fashion-MNIST training images and labels (IDX gzip)."""
    shared_asset("data/fashion-mnist-8k/train-labels-idx1-ubyte.gz")
    return shared_asset("data/fashion-mnist-8k/train-images-idx3-ubyte.gz").parent


@pytest.fixture(scope="session")
def fid_assets():
    """The canonical FID network weights and the reference features (see ../shared/fid/README.md)."""
    return {
        "weights": shared_asset("fid/inception-2015-12-05.pt"),
        "reference": shared_asset("fid/reference-64.npz"),
    }
