"""Does a run look like it is failing? Cheap checks on the sample grid's images and on the dataset's size.

At each sample grid the trainer passes the grid's images (uint8, 0-255) to :class:`SampleHealth`, which
warns, with the likely cause and what to try, when

- most samples are blank: an image is blank when the standard deviation of its values (all pixels and
  channels) is under ``BLANK_STD`` levels of 255, one flat colour to the eye (a pure white or black tile);
- most samples are near-identical (mode collapse): two images are near-identical when the root mean square
  of their difference is under ``NEAR_IDENTICAL_RMS`` levels; the grid has collapsed when more than half of
  its pairs of images are;

where "most" is more than ``MOST`` of them. Grids before step ``WARMUP_STEPS`` are not judged: until batch
normalization's moving statistics have settled (their average spans about a hundred steps), the inference-mode
samples of a healthy run are flat too. A dataset whose own images are blank or alike by the same
measure (checked once, on a few of them) is not warned about: its samples are meant to look so. The checks
look at ``MAX_IMAGES`` samples at most, each reduced to ``MAX_SIDE`` pixels a side by striding, so they cost
a few milliseconds whatever the grid. A dataset of fewer than ``SMALL_DATASET`` images without augmentation
gets a one-line hint when training starts (:func:`small_dataset_hint`), and so does one whose images are mostly
blank (:func:`blank_data_hint`).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

BLANK_STD = 4.0
NEAR_IDENTICAL_RMS = 6.0
MOST = 0.5
WARMUP_STEPS = 200
MAX_IMAGES = 64
MAX_SIDE = 32
SMALL_DATASET = 500


def _reduced(images: np.ndarray, limit: int = MAX_IMAGES) -> np.ndarray:
    """At most ``limit`` images, strided to at most MAX_SIDE pixels a side, as (N, values) float32."""
    images = images[:limit]
    stride = max(1, -(-max(images.shape[1:3]) // MAX_SIDE))
    return images[:, ::stride, ::stride].reshape(len(images), -1).astype(np.float32)


def blank_share(images: np.ndarray, limit: int = MAX_IMAGES) -> float:
    """The share of ``images`` (N, H, W, C), the first ``limit`` of them, that are one flat colour (value spread
    under BLANK_STD)."""
    flat = _reduced(images, limit)
    return float(np.mean(flat.std(axis=1) < BLANK_STD)) if len(flat) else 0.0


def near_identical_share(images: np.ndarray) -> float:
    """The share of pairs of ``images`` whose root-mean-square difference is under NEAR_IDENTICAL_RMS."""
    flat = _reduced(images)
    count = len(flat)
    if count < 2:
        return 0.0
    squares = (flat * flat).sum(axis=1)
    # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, for every pair at once.
    distances = np.maximum(squares[:, None] + squares[None, :] - 2.0 * flat @ flat.T, 0.0) / flat.shape[1]
    pairs = np.triu_indices(count, k=1)
    return float(np.mean(np.sqrt(distances[pairs]) < NEAR_IDENTICAL_RMS))


class SampleWarning(NamedTuple):
    kind: str  # "blank" or "collapse"
    line: str  # what the log and status.json show


class SampleHealth:
    """Warnings about a run's sample grids; ``real_images`` (a few of the dataset's) set what is normal."""

    def __init__(self, real_images: np.ndarray, config: dict):
        self.config = config
        self.blank_data = blank_share(real_images) > MOST
        self.alike_data = near_identical_share(real_images) > MOST

    def check(self, images: np.ndarray, step: int) -> SampleWarning | None:
        """The warning for the grid of ``step`` (one line), or None when its samples look healthy."""
        if step < WARMUP_STEPS:
            return None
        count = min(len(images), MAX_IMAGES)
        blank = blank_share(images)
        if blank > MOST and not self.blank_data:
            return SampleWarning("blank", f"warning: {round(blank * count)} of {count} samples at step {step} are "
                                          "blank (one flat colour): the generator draws nothing; "
                                          f"{self._blank_cause()}")
        alike = near_identical_share(images)
        if alike > MOST and not self.alike_data:
            return SampleWarning("collapse", f"warning: the samples at step {step} are near-identical ({alike:.0%} of "
                                             "pairs): the generator has collapsed to one output, likely because the "
                                             "discriminator wins too easily; try lower learning rates, a lower "
                                             "discriminator learning rate than the generator's, augmentation "
                                             "(augment.policy) or R1 (r1_gamma)")
        return None

    def _blank_cause(self) -> str:
        background = (self.config.get("generator") or {}).get("palette_background")
        if background is not None:
            return (f"likely cause: the fixed background {background!r} does not fit images on other backgrounds; "
                    "try --set generator.palette_background=null (the generator then learns the background)")
        return ("likely causes: learning rates too high or a discriminator that wins at once; try lower learning "
                "rates, augmentation (augment.policy) or the small-data preset configs/logos_small_data.json")


BLANK_DATA_IMAGES = 4096  # images of the dataset the blank-data hint looks at, evenly spread over it


def blank_data_hint(images: np.ndarray) -> str | None:
    """A one-line hint when most of the training images are one flat colour (as blank_share measures a grid),
    else None: a GAN trained on them learns to draw blank tiles, which is no failure of training to warn about
    later but a dataset to fix now."""
    picked = images[np.linspace(0, len(images) - 1, min(len(images), BLANK_DATA_IMAGES)).astype(int)]
    share = blank_share(picked, limit=len(picked))
    if share <= MOST:
        return None
    return (f"hint: {share:.0%} of the training images are one flat colour (nothing drawn), so the samples will be "
            "too; look at the data (a contact sheet: python -m preprocessing.contact_sheet --input DATA.npz). "
            "Logos drawn in white on transparency vanish when flattened onto white: python -m preprocessing.build "
            "puts them on black")


def small_dataset_hint(image_count: int, config: dict, conditional: bool) -> str | None:
    """A one-line hint for a dataset under SMALL_DATASET images trained without augmentation, else None."""
    if image_count >= SMALL_DATASET or (config.get("augment") or {}).get("policy"):
        return None
    preset = "configs/fashion_small_data.json" if conditional else "configs/logos_small_data.json"
    return (f"hint: {image_count} training images is few for a GAN (under {SMALL_DATASET}): the discriminator can "
            "memorise them and the samples then collapse or go blank; turn on augmentation, e.g. "
            "--set 'augment.policy=[\"color\",\"translation\",\"cutout\"]', and consider the small-data preset "
            f"{preset}")
