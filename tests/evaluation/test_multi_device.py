"""On JAX with several local devices the Inception embedding splits each batch over all of them and gives
the one-device features. Devices are virtual CPUs (XLA_FLAGS), fixed at JAX's start, so each count runs in
its own process."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Records what each batch handed to the network looks like, then embeds 10 images (an odd count, so the
# last batch is padded) with batch_size 6, which 4 devices round up to 8.
SCRIPT = """
import json, sys, numpy as np, keras, jax
from evaluation.features import InceptionEmbedder

seen = []
original = keras.Model.predict_on_batch
def recording(self, x):
    sharding = getattr(x, "sharding", None)  # a one-device batch stays a NumPy array
    seen.append({"shape": list(x.shape), "devices": len(sharding.device_set) if sharding else 1,
                 "slice": list(sharding.shard_shape(x.shape) if sharding else x.shape)})
    return original(self, x)
keras.Model.predict_on_batch = recording

images = np.load(sys.argv[2])["logos"][:10]
embedder = InceptionEmbedder(sys.argv[1], batch_size=6, progress=False)
features = embedder.embed(images)
weights = embedder._models[images.shape[1:]].weights[0].value
print(json.dumps({"backend": keras.backend.backend(), "local_devices": jax.local_device_count(),
                  "device_count": embedder.device_count, "batches": seen,
                  "weight_devices": len(weights.sharding.device_set), "features": features.tolist()}))
"""


def embed_on(device_count: int, fid_assets) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={device_count}", "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(fid_assets["weights"]), str(fid_assets["reference"])],
                          capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_four_devices_split_each_batch_and_give_the_one_device_features(fid_assets, reference):
    one, four = embed_on(1, fid_assets), embed_on(4, fid_assets)
    assert one["backend"] == four["backend"] == "jax"
    assert (one["local_devices"], one["device_count"]) == (1, 1)
    assert one["batches"] == [{"shape": [6, 64, 64, 3], "devices": 1, "slice": [6, 64, 64, 3]}] * 2
    assert (four["local_devices"], four["device_count"], four["weight_devices"]) == (4, 4, 4)
    assert four["batches"] == [{"shape": [8, 64, 64, 3], "devices": 4, "slice": [2, 64, 64, 3]}] * 2

    features_one, features_four = np.array(one["features"]), np.array(four["features"])
    assert features_one.shape == features_four.shape == (10, 2048)
    np.testing.assert_allclose(features_four, features_one, rtol=1e-4, atol=1e-5)
    # Neither run is a stand-in: both are the canonical network's features of these images.
    error = np.linalg.norm(features_four - reference["feats_logos"][:10], axis=1)
    assert (error / np.linalg.norm(reference["feats_logos"][:10], axis=1)).max() < 1e-3
