"""The classes of samples asked for without one: plain numpy, so the command-line tools can use it before
Keras loads (bad input is answered first)."""
from __future__ import annotations

import numpy as np

# The golden ratio's fractional part: i * GOLDEN mod 1 spreads any run of consecutive i evenly over [0, 1).
GOLDEN = (5 ** 0.5 - 1) / 2


def default_labels(count: int, classes: int, shares: list[float] | None = None) -> np.ndarray:
    """The classes of ``count`` samples asked for without a class: in turn (0, 1, 2, ...) when the classes are
    equals, else in the data's proportions ``shares`` (clusters found by the trainer, models.train), interleaved
    so that any first n samples hold every class about n x its share."""
    if not shares:
        return np.arange(count) % classes
    bounds = np.cumsum(np.asarray(shares, dtype=np.float64))
    positions = (0.5 + np.arange(count) * GOLDEN) % 1.0 * bounds[-1]
    return np.minimum(np.searchsorted(bounds, positions, side="right"), classes - 1)
