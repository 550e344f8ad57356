"""Pseudo-labels for an unlabelled image set: k-means clusters of small thumbnails.

A GAN conditioned on clusters of its data, not on real classes, trains more stably and covers more of a
varied set (Sage et al. 2018, "Logo synthesis and manipulation with clustered generative adversarial
networks", LLD). The trainer uses this when a config sets ``data_clusters`` (models.train); samples then draw
the clusters in the data's proportions (:func:`models.labels.default_labels`).

Thumbnails, not deep features: what a logo generator must get right first is layout and colour (a tile or
none, where the mark sits, which colours), and a 16 px thumbnail is exactly that, fast and with no network.
"""
from __future__ import annotations

import warnings

import numpy as np
from PIL import Image
from scipy.cluster.vq import kmeans2

THUMBNAIL_SIDE = 16
RESTARTS = 4  # k-means from this many seeded starts; the tightest clustering wins (as scikit-learn's n_init)


def thumbnails(x: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """(N, side*side*C) float32 in [0, 1]: each uint8 (H, W, C) image shrunk by area averaging."""
    channels = x.shape[-1]
    rows = []
    for image in x:
        picture = Image.fromarray(image[..., 0] if channels == 1 else image)
        rows.append(np.asarray(picture.resize((side, side), Image.Resampling.BOX), dtype=np.float32).reshape(-1))
    return np.stack(rows) / 255.0


def cluster_images(x: np.ndarray, clusters: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """(labels int64 (N,), count): each image's cluster among at most ``clusters``, numbered from the largest
    cluster down. Empty clusters are dropped, so ``count`` can be smaller (never more than the images)."""
    features = thumbnails(x)
    clusters = min(clusters, len(np.unique(features, axis=0)))  # k-means++ needs a distinct image per start
    rng = np.random.default_rng(seed)
    best, raw = np.inf, None
    for _ in range(RESTARTS):
        with warnings.catch_warnings():  # a cluster that empties is dropped below, not a problem
            warnings.simplefilter("ignore", UserWarning)
            centres, assigned = kmeans2(features, clusters, minit="++", seed=rng, iter=30)
        spread = float(((features - centres[assigned]) ** 2).sum())
        if spread < best:
            best, raw = spread, assigned
    sizes = np.bincount(raw, minlength=clusters)
    order = np.argsort(-sizes, kind="stable")  # cluster 1 is the largest: names read in the data's proportions
    order = order[sizes[order] > 0]
    renumber = np.full(clusters, -1, dtype=np.int64)
    renumber[order] = np.arange(len(order))
    return renumber[raw], len(order)


def cluster_names(count: int) -> list[str]:
    return [f"cluster {index + 1}" for index in range(count)]
