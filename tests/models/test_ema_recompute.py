"""The EMA generator's batch-norm recompute as compiled calls: the same statistics as running the generator op by
op, one trace for all its batches. TensorFlow here; the same tests again in a JAX process."""
from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest

from models import builders
from models.config import load_config, resolve
from models.sampling import StandingStatistics, latent_vectors
from tests.models.helpers import PROJECT_ROOT, subprocess_env

BATCHES = 4
BATCH_SIZE = 8


def logos_dcgan_generator(conditional: bool = False) -> keras.Model:
    """configs/logos_dcgan.json's generator (batch norm after each upsampling) at 32x32, small enough for a CPU."""
    path = PROJECT_ROOT / "configs" / "logos_dcgan.json"
    raw = load_config(path)
    raw["generator"]["conditional"] = conditional
    config = resolve(raw, str(path))
    config["image_shape"] = [32, 32, 3]
    config["class_names"] = ["a", "b", "c"] if conditional else None
    return builders.build_generator(config)


def op_by_op_statistics(generator, noise, labels, batches):
    """The recompute as it was: the generator called eagerly per batch, momentum index / (index + 1)."""
    norms = [layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for index, (chunk, rows) in enumerate(zip(np.array_split(noise, batches),
                                              np.array_split(np.arange(len(noise)), batches))):
        for layer in norms:
            layer.momentum = index / (index + 1)
        generator([chunk] if labels is None else [chunk, labels[rows].astype(np.int32)], training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
    return statistics(generator)


def statistics(generator) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(variable.value).copy() for variable in generator.non_trainable_variables]


def count_traces(layer) -> list[int]:
    """Python runs ``layer.call`` only while a compiled call is traced (or on each eager call): count its runs."""
    runs = [0]
    call = layer.call

    def counted(*args, **kwargs):
        runs[0] += 1
        return call(*args, **kwargs)

    layer.call = counted
    return runs


@pytest.mark.parametrize("conditional", [False, True])
def test_the_compiled_recompute_gives_the_op_by_op_statistics(conditional):
    generator = logos_dcgan_generator(conditional)
    norms = [layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) >= 2
    rng = np.random.default_rng(3)
    starting = statistics(generator)
    noise = latent_vectors(rng, BATCHES * BATCH_SIZE, generator.inputs[0].shape[-1])
    labels = rng.integers(0, 3, len(noise)) if conditional else None

    expected = op_by_op_statistics(generator, noise, labels, BATCHES)
    for variable, value in zip(generator.non_trainable_variables, starting):
        variable.assign(value)
    runs = count_traces(norms[0])
    standing = StandingStatistics(generator)
    assert standing.recompute(noise, labels, batches=BATCHES) == len(norms)

    assert runs[0] == 1  # one trace for the four batches: the momentum is an argument, not a constant
    assert all(not np.allclose(before, after) for before, after in zip(starting, expected))
    for got, want in zip(statistics(generator), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert [layer.momentum for layer in norms] == [0.9] * len(norms)  # logos_dcgan's batch_norm_momentum

    # The next recompute reads the weights as they are now and compiles nothing.
    generator.trainable_variables[0].assign(generator.trainable_variables[0] * 0.5)
    expected = op_by_op_statistics(generator, noise[::-1].copy(), labels, BATCHES)
    standing.recompute(noise[::-1].copy(), labels, batches=BATCHES)
    assert runs[0] == 1 + BATCHES  # the op-by-op reference's own eager calls only
    for got, want in zip(statistics(generator), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_generator_without_batch_norm_is_left_alone():
    inputs = keras.Input((4,))
    model = keras.Model([inputs], keras.layers.Dense(3)(inputs))
    assert StandingStatistics(model).recompute(np.ones((8, 4), np.float32), None, batches=2) == 0


JAX_PYTEST = """
import sys
import keras
import pytest
assert keras.backend.backend() == "jax", keras.backend.backend()
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-k", "not jax", sys.argv[1]]))
"""


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="this is the JAX re-run itself")
def test_the_same_on_jax():
    result = subprocess.run([sys.executable, "-c", JAX_PYTEST, __file__], env=subprocess_env(KERAS_BACKEND="jax"),
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 passed" in summary and "failed" not in summary, summary
