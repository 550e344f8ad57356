"""The canonical FID pipeline reproduces ../shared/fid/reference-64.npz (made with PyTorch)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from evaluation import metrics
from evaluation.features import InceptionEmbedder
from evaluation.inception import build_inception

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def relative_error(ours, theirs):
    return np.linalg.norm(ours - theirs, axis=1) / np.linalg.norm(theirs, axis=1)


@pytest.mark.parametrize("name", ["fmnist_a", "fmnist_b", "logos"])
def test_features_match_the_reference_within_1e_3(embedded, reference, name):
    ours, theirs = embedded[name], reference[f"feats_{name}"]
    assert ours.shape == theirs.shape == (64, 2048)
    assert relative_error(ours, theirs).max() < 1e-3


@pytest.mark.parametrize("other,key", [("fmnist_b", "fid_fmnist_a_vs_b"), ("logos", "fid_fmnist_a_vs_logos")])
def test_fid_matches_the_reference_within_half_a_percent(embedded, reference, other, key):
    assert metrics.fid(embedded["fmnist_a"], embedded[other]) == pytest.approx(float(reference[key]), rel=0.005)


def test_fid_of_a_set_against_itself_is_zero(embedded, evaluator_a):
    assert abs(metrics.fid(embedded["logos"], embedded["logos"])) < 1e-6
    same = metrics.frechet_distance(evaluator_a.real_stats, metrics.GaussianStats.of(evaluator_a.real_features))
    assert abs(same) < 1e-6


def test_network_stays_float32_under_a_mixed_precision_policy(fid_assets, reference):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        network = build_inception(fid_assets["weights"])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    computing = [layer for layer in network.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert {layer.compute_dtype for layer in computing} == {"float32"}
    assert network.inputs[0].dtype == network.outputs[0].dtype == "float32"
    ours = InceptionEmbedder(fid_assets["weights"], progress=False)
    ours._models[(64, 64, 3)] = keras.Sequential([keras.Input((64, 64, 3)), ours._model_for((64, 64, 3)).layers[1], network])
    features = ours.embed(reference["logos"][:4])
    assert features.dtype == np.float32
    assert relative_error(features, reference["feats_logos"][:4]).max() < 1e-3


def test_jax_backend_gives_the_same_features(fid_assets, reference):
    """Keras picks its backend at import, so the JAX run is a separate process."""
    script = (
        "import json, sys, numpy as np, keras\n"
        "from evaluation.features import InceptionEmbedder\n"
        "images = np.load(sys.argv[2])['logos'][:2]\n"
        "features = InceptionEmbedder(sys.argv[1], progress=False).embed(images)\n"
        "print(json.dumps({'backend': keras.backend.backend(), 'features': features.tolist()}))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run([sys.executable, "-c", script, str(fid_assets["weights"]), str(fid_assets["reference"])],
                          capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax"
    assert relative_error(np.array(result["features"]), reference["feats_logos"][:2]).max() < 1e-3
