"""The .npz dataset format: round trip, checks, and one-line errors that name the file."""
from __future__ import annotations

import numpy as np
import pytest

from infra.errors import UserError
from preprocessing.dataset import load_dataset, save_dataset


def test_round_trip_with_labels(tmp_path):
    x = np.arange(4 * 8 * 8 * 1, dtype=np.uint8).reshape(4, 8, 8, 1)
    path = save_dataset(tmp_path / "d.npz", x, y=[0, 2, 1, 2], class_names=["T-shirt/top", "Bag", "Sneaker"], meta={"a": 1})
    dataset = load_dataset(path)
    np.testing.assert_array_equal(dataset.x, x)
    assert dataset.y.tolist() == [0, 2, 1, 2] and dataset.y.dtype == np.int64
    assert dataset.class_names == ["T-shirt/top", "Bag", "Sneaker"]
    assert dataset.meta == {"a": 1}
    assert dataset.image_shape == (8, 8, 1)


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "d.npz"
    save_dataset(path, np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(UserError, match="labels run 0..5 but there are 2 class names"):
        save_dataset(path, np.ones((2, 8, 8, 3), np.uint8), y=[0, 5], class_names=["a", "b"])
    assert load_dataset(path).x.max() == 0
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((2, 8, 8, 3), np.float32), "images are float32 with shape \\(2, 8, 8, 3\\)"),
        (np.zeros((2, 8, 8), np.uint8), "expected uint8 \\(N, H, W, C\\)"),
        (np.zeros((2, 8, 8, 4), np.uint8), "C 1 or 3"),
    ],
)
def test_wrong_arrays_are_named(tmp_path, x, message):
    path = tmp_path / "bad.npz"
    np.savez(path, x=x)
    with pytest.raises(UserError, match=f"{path}: .*{message}"):
        load_dataset(path)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(UserError, match="no such dataset file"):
        load_dataset(tmp_path / "nope.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a readable .npz dataset"):
        load_dataset(garbage)
    other = tmp_path / "other.npz"
    np.savez(other, images=np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(UserError, match="has no 'x' array \\(found: images\\)"):
        load_dataset(other)
