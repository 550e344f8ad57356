"""Dedupe (exact and near copies) and augment (deterministic varied copies)."""
from __future__ import annotations

import io

import imagehash
import numpy as np
from PIL import Image

from preprocessing.augment import AugmentOptions, Variation, augment, vary
from preprocessing.dataset import Dataset
from preprocessing.dedupe import dedupe, perceptual_hashes
from tests.preprocessing.image_fixtures import logo


def as_array(image: Image.Image, size=32) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.LANCZOS))


def shapes_dataset() -> Dataset:
    """Four distinct images, an exact copy of the first and a JPEG re-encode of the second."""
    circle = as_array(logo(64, colour=(200, 0, 0), background=(255, 255, 255, 255)))
    square = np.full((32, 32, 3), 255, np.uint8)
    square[4:28, 4:14] = (0, 0, 200)
    stripes = np.full((32, 32, 3), 255, np.uint8)
    stripes[::4] = 0
    corner = np.full((32, 32, 3), 255, np.uint8)
    corner[20:, 20:] = (0, 120, 0)
    buffer = io.BytesIO()
    Image.fromarray(square).save(buffer, format="JPEG", quality=70)
    square_jpeg = np.asarray(Image.open(buffer).convert("RGB"))
    x = np.stack([circle, square, stripes, circle, corner, square_jpeg])
    sources = ["circle.png", "square.png", "stripes.png", "circle copy.png", "corner.png", "square.jpg"]
    return Dataset(x=x, y=np.arange(6) % 2, class_names=["a", "b"], meta={"sources": sources})


def test_exact_and_near_duplicates_are_removed_and_reported():
    dataset = shapes_dataset()
    assert not np.array_equal(dataset.x[1], dataset.x[5])  # the JPEG copy is not pixel-identical
    deduped, found = dedupe(dataset, hamming=4)
    assert found.keep == [0, 1, 2, 4]
    assert deduped.meta["sources"] == ["circle.png", "square.png", "stripes.png", "corner.png"]
    assert deduped.y.tolist() == [0, 1, 0, 0]
    assert deduped.meta["dedupe"]["exact"] == [{"removed": "circle copy.png", "copy_of": "circle.png"}]
    (near,) = deduped.meta["dedupe"]["near"]
    assert (near["removed"], near["copy_of"]) == ("square.jpg", "square.png") and near["distance"] <= 4
    exact_only, found = dedupe(dataset, hamming=None)
    assert found.keep == [0, 1, 2, 4, 5] and len(exact_only.x) == 5


def test_augment_is_deterministic_and_keeps_originals_first():
    dataset = shapes_dataset()
    grown = augment(dataset, AugmentOptions(target=20, seed=7))
    again = augment(dataset, AugmentOptions(target=20, seed=7))
    other = augment(dataset, AugmentOptions(target=20, seed=8))
    assert grown.x.shape == (20, 32, 32, 3)
    np.testing.assert_array_equal(grown.x, again.x)
    assert not np.array_equal(grown.x[6:], other.x[6:])
    np.testing.assert_array_equal(grown.x[:6], dataset.x)
    assert grown.meta["augment"]["originals"] == 6 and grown.meta["augment"]["added"] == 14
    assert len(grown.meta["sources"]) == 20 and grown.y.shape == (20,)
    for index in range(6, 20):  # each copy carries the label of the original it came from
        assert grown.meta["sources"][index] in dataset.meta["sources"]
        original = dataset.meta["sources"].index(grown.meta["sources"][index])
        assert grown.y[index] == dataset.y[original]
    assert augment(dataset, AugmentOptions(target=3)).x.shape[0] == 6


def test_variations_fill_with_the_background_and_flip():
    pixels = np.full((20, 20, 3), (240, 240, 200), np.uint8)
    pixels[5:15, 2:8] = 0
    mirrored = vary(pixels, Variation(mirror=True, flip=False, degrees=0.0, scale=1.0))
    np.testing.assert_array_equal(mirrored, pixels[:, ::-1])
    rotated = vary(pixels, Variation(mirror=False, flip=False, degrees=20.0, scale=0.8))
    assert rotated[0, 0].tolist() == [240, 240, 200] and rotated[19, 19].tolist() == [240, 240, 200]
    assert (rotated.sum(axis=-1) < 100).sum() > 20  # the dark bar is still there, smaller and turned


def test_batch_hashes_equal_imagehash_phash():
    rng = np.random.default_rng(1)
    x = np.concatenate([shapes_dataset().x, rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)])
    expected = [int(str(imagehash.phash(Image.fromarray(image))), 16) for image in x]
    assert perceptual_hashes(x).tolist() == expected
    grey = x[:3, ..., :1]
    assert perceptual_hashes(grey).tolist() == [int(str(imagehash.phash(Image.fromarray(g[..., 0]))), 16) for g in grey]
