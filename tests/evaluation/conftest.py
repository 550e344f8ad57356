"""Shared, session-scoped pieces: the Inception network is built and the 64-image reference sets are
embedded once, because Inception on 299×299 is the slow part of these tests."""
from __future__ import annotations

import numpy as np
import pytest

from evaluation.evaluator import Evaluator


@pytest.fixture(scope="session")
def reference(fid_assets):
    with np.load(fid_assets["reference"], allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.fixture(scope="session")
def eval_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("eval-cache")


@pytest.fixture(scope="session")
def evaluator_a(reference, fid_assets, eval_cache):
    """An Evaluator on the reference set fmnist_a: embeds it once and caches its statistics."""
    return Evaluator(reference["fmnist_a"], ["fid", "kid"], cache_dir=eval_cache,
                     inception_weights=fid_assets["weights"], progress=False)


@pytest.fixture(scope="session")
def embedded(reference, evaluator_a):
    """Our features of the three reference sets."""
    return {
        "fmnist_a": evaluator_a.real_features,
        "fmnist_b": evaluator_a.embedder.embed(reference["fmnist_b"]),
        "logos": evaluator_a.embedder.embed(reference["logos"]),
    }
