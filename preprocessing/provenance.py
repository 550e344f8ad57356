"""Per-image provenance in a dataset's meta, kept aligned with ``x`` as images are removed or added.

``meta["sources"]`` (input paths) and ``meta["credits"]`` (manifest columns) hold one entry per image;
``meta["licences"]`` counts the credits' licences. Every step that changes which images a dataset holds
goes through :func:`take` so these never drift from the images they describe.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from preprocessing.dataset import Dataset

PER_IMAGE_KEYS = ("sources", "credits")


def licence_counts(credits: list[dict]) -> dict[str, int]:
    return dict(sorted(Counter(credit.get("licence", "unknown") for credit in credits).items()))


def take(dataset: Dataset, indices, extra_meta: dict | None = None) -> Dataset:
    """The images at ``indices`` (repeats allowed), with labels and per-image meta to match."""
    indices = np.asarray(indices, dtype=np.int64)
    meta = dict(dataset.meta)
    for key in PER_IMAGE_KEYS:
        if isinstance(meta.get(key), list) and len(meta[key]) == len(dataset.x):
            meta[key] = [meta[key][index] for index in indices]
        else:
            meta.pop(key, None)  # not aligned with the images (hand-made meta): drop rather than mislead
    if "credits" in meta:
        meta["licences"] = licence_counts(meta["credits"])
    meta["count"] = len(indices)
    meta.update(extra_meta or {})
    return Dataset(
        x=dataset.x[indices],
        y=None if dataset.y is None else dataset.y[indices],
        class_names=dataset.class_names,
        meta=meta,
    )
