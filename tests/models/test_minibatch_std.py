"""ProGAN's minibatch standard deviation: the layer against a numpy reference, and the discriminator option."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from infra.errors import UserError
from models.networks.discriminator import build_discriminator
from models.networks.minibatch import MinibatchStd, group_size_for

RNG = np.random.default_rng(0)


def reference(x: np.ndarray, group: int) -> np.ndarray:
    """The extra channel: image i belongs to group i mod (B / group); its value is the mean over features and
    pixels of the standard deviation across that group."""
    members = x.shape[0] // group
    out = np.empty(x.shape[:3] + (1,), dtype=np.float64)
    for index in range(x.shape[0]):
        group_values = x[index % members::members].astype(np.float64)
        out[index] = np.sqrt(group_values.var(axis=0) + 1e-8).mean()
    return out


@pytest.mark.parametrize("batch, group", [(8, 4), (6, 4), (5, 4), (4, 1)])
def test_the_extra_channel_matches_the_reference_and_the_features_pass_unchanged(batch, group):
    x = (RNG.normal(size=(batch, 3, 5, 2)) * RNG.uniform(0.5, 3, size=(batch, 1, 1, 1))).astype(np.float32)
    out = ops.convert_to_numpy(MinibatchStd(group)(ops.convert_to_tensor(x)))
    assert out.shape == (batch, 3, 5, 3)
    np.testing.assert_array_equal(out[..., :2], x)
    np.testing.assert_allclose(out[..., 2:], reference(x, group_size_for(batch, group)), rtol=1e-5, atol=1e-6)


def test_group_size_is_the_largest_divisor_of_the_batch_up_to_the_asked_size():
    assert [group_size_for(batch, 4) for batch in (32, 8, 6, 5, 3, 1)] == [4, 4, 3, 1, 3, 1]


def test_identical_images_read_as_no_variety_and_varied_ones_as_some():
    same = np.repeat(RNG.normal(size=(1, 4, 4, 3)).astype(np.float32), 8, axis=0)
    varied = RNG.normal(size=(8, 4, 4, 3)).astype(np.float32)
    layer = MinibatchStd(4)
    assert ops.convert_to_numpy(layer(ops.convert_to_tensor(same)))[..., 3].max() < 1e-3
    assert ops.convert_to_numpy(layer(ops.convert_to_tensor(varied)))[..., 3].min() > 0.5


def test_a_discriminator_with_it_scores_by_the_variety_of_the_batch_and_saves_and_loads(tmp_path):
    options = {"choice": "dcgan", "width": 8, "minibatch_std": 4}
    discriminator = build_discriminator(options, (16, 16, 3), None)
    assert discriminator.get_layer("minibatch_std").group_size == 4
    image = RNG.uniform(-1, 1, size=(1, 16, 16, 3)).astype(np.float32)
    others = RNG.uniform(-1, 1, size=(3, 16, 16, 3)).astype(np.float32)
    # The same first image scores differently beside copies of itself than beside other images.
    alone = ops.convert_to_numpy(discriminator(np.concatenate([image] * 4), training=False))[0]
    mixed = ops.convert_to_numpy(discriminator(np.concatenate([image, others]), training=False))[0]
    assert abs(float(alone[0] - mixed[0])) > 1e-6
    path = tmp_path / "discriminator.keras"
    discriminator.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(np.concatenate([image, others]), training=False))[0],
                               mixed, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("role, options", [
    ("generator", {"choice": "dcgan", "minibatch_std": 4}),
    ("discriminator", {"choice": "gan", "minibatch_std": 4}),
])
def test_it_is_refused_where_there_is_no_discriminator_feature_map(role, options):
    from models.networks.generator import build_generator

    with pytest.raises(UserError) as raised:
        if role == "generator":
            build_generator(options, (16, 16, 3), 8, None)
        else:
            build_discriminator(options, (16, 16, 3), None)
    assert f"{role}.minibatch_std: 4 needs a conv or resnet discriminator" in str(raised.value)
    assert "\n" not in str(raised.value)
