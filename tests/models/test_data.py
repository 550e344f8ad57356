"""Training data sources: .npz, s3://, IDX gzip folders, fashion_mnist / mnist, and their errors."""
from __future__ import annotations

import gzip
import shutil

import keras
import numpy as np
import pytest

from infra import storage
from infra.errors import UserError
from models.data import FASHION_MNIST_CLASSES, load_training_data
from preprocessing.dataset import save_dataset
from preprocessing.remote_dataset import push_dataset
from tests.s3_server import s3_server  # noqa: F401

SHARED_COUNT = 8226


def raw_idx_body(path, header_bytes):
    return np.frombuffer(gzip.decompress(path.read_bytes())[header_bytes:], dtype=np.uint8)


def test_idx_folder(fashion_mnist_dir):
    dataset = load_training_data(str(fashion_mnist_dir))
    assert dataset.x.shape == (SHARED_COUNT, 28, 28, 1) and dataset.x.dtype == np.uint8
    assert np.array_equal(dataset.x[5, :, :, 0].ravel(), raw_idx_body(fashion_mnist_dir / "train-images-idx3-ubyte.gz", 16)[5 * 784 : 6 * 784])
    assert np.array_equal(dataset.y, raw_idx_body(fashion_mnist_dir / "train-labels-idx1-ubyte.gz", 8))
    assert dataset.class_names == FASHION_MNIST_CLASSES  # the folder is called fashion-mnist-8k
    assert sorted(set(dataset.y.tolist())) == list(range(10))


def test_named_dataset_from_a_local_copy(fashion_mnist_dir, monkeypatch):
    by_flag = load_training_data("fashion_mnist", data_dir=str(fashion_mnist_dir))
    monkeypatch.setenv("LOGOGAN_DATA_DIR", str(fashion_mnist_dir))
    by_env = load_training_data("mnist")
    assert by_flag.class_names[0] == "T-shirt/top" and by_env.class_names == [str(digit) for digit in range(10)]
    assert np.array_equal(by_flag.x, by_env.x)


def test_named_dataset_offline_says_how_to_supply_a_copy(tmp_path, monkeypatch):
    def no_network():
        raise Exception("URL fetch failure on https://example.invalid/train-images-idx3-ubyte.gz: None")

    monkeypatch.delenv("LOGOGAN_DATA_DIR", raising=False)
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", no_network)
    with pytest.raises(UserError, match="--data-dir or \\$LOGOGAN_DATA_DIR") as raised:
        load_training_data("fashion_mnist", data_dir=str(tmp_path))
    assert "\n" not in str(raised.value)


def test_npz_dataset_and_resizing(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(6, 28, 28, 3), dtype=np.uint8)
    path = save_dataset(tmp_path / "icons.npz", x, y=[0, 1, 0, 1, 0, 1], class_names=["a", "b"])
    dataset = load_training_data(str(path))
    assert np.array_equal(dataset.x, x) and dataset.class_names == ["a", "b"]
    resized = load_training_data(str(path), image_size=32)
    assert resized.x.shape == (6, 32, 32, 3) and resized.x.dtype == np.uint8
    assert np.array_equal(resized.y, dataset.y)
    flat = save_dataset(tmp_path / "flat.npz", np.full((2, 28, 28, 1), 77, np.uint8))
    assert (load_training_data(str(flat), image_size=56).x == 77).all()


def test_s3_dataset_is_downloaded_once_into_the_cache(s3_server, tmp_path, monkeypatch):  # noqa: F811
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    cache = tmp_path / "cache"
    monkeypatch.setenv("LOGOGAN_CACHE_DIR", str(cache))
    x = np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3)
    local = save_dataset(tmp_path / "tiny.npz", x)
    bucket = s3_server.make_bucket("models-data")
    storage.upload_file(local, f"s3://{bucket}/sets/tiny.npz")
    dataset = load_training_data(f"s3://{bucket}/sets/tiny.npz")
    assert np.array_equal(dataset.x, x)
    cached = cache / "s3" / bucket / "sets" / "tiny.npz"
    assert cached.read_bytes() == local.read_bytes()
    first_write = cached.stat().st_mtime_ns
    assert np.array_equal(load_training_data(f"s3://{bucket}/sets/tiny.npz").x, x)
    assert cached.stat().st_mtime_ns == first_write
    with pytest.raises(UserError, match="must be a .npz dataset"):
        load_training_data(f"s3://{bucket}/sets/tiny.pkl")


def test_a_sharded_s3_dataset_trains_as_one(s3_server, tmp_path, monkeypatch):  # noqa: F811
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LOGOGAN_CACHE_DIR", str(tmp_path / "cache"))
    x = np.random.default_rng(2).integers(0, 256, (12, 8, 8, 1), np.uint8)
    local = save_dataset(tmp_path / "made" / "sharded.npz", x, shard_bytes=x.nbytes // 4)
    bucket = s3_server.make_bucket("models-shards")
    push_dataset(local, f"s3://{bucket}/sets/")
    assert len(storage.list_objects(f"s3://{bucket}/sets/")) == 5
    assert np.array_equal(load_training_data(f"s3://{bucket}/sets/sharded.npz").x, x)


def copy_idx(fashion_mnist_dir, tmp_path):
    folder = tmp_path / "idx"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        shutil.copy(fashion_mnist_dir / name, folder / name)
    return folder


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda folder: (folder / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip"),
         "train-images-idx3-ubyte.gz: not a readable gzip file"),
        (lambda folder: (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0\0\x08\x03" + b"\0" * 12)),
         "train-labels-idx1-ubyte.gz: not an IDX file of unsigned bytes with 1 dimension(s)"),
        (lambda folder: (folder / "train-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(b"\0\0\x08\x01" + (3).to_bytes(4, "big") + b"\0\1\2")),
         "holds 3 labels but train-images-idx3-ubyte.gz holds 8226 images"),
        (lambda folder: (folder / "train-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(b"\0\0\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (5, 28, 28)) + b"\0" * 100)),
         "the header promises (5, 28, 28)"),
        (lambda folder: (folder / "train-images-idx3-ubyte.gz").unlink(), "no train-images-idx3-ubyte.gz"),
    ],
)
def test_damaged_idx_files_are_one_line_errors(fashion_mnist_dir, tmp_path, damage, message):
    folder = copy_idx(fashion_mnist_dir, tmp_path)
    damage(folder)
    with pytest.raises(UserError) as raised:
        load_training_data(str(folder))
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_unknown_sources_are_one_line_errors(tmp_path):
    (tmp_path / "logos.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(UserError, match="not a training data source; give a .npz dataset"):
        load_training_data(str(tmp_path / "logos.pkl"))
    (tmp_path / "broken.npz").write_bytes(b"PK not really")
    with pytest.raises(UserError, match="broken.npz: not a readable .npz dataset"):
        load_training_data(str(tmp_path / "broken.npz"))
