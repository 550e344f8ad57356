"""Generator and discriminator builders: shapes, value ranges, conditioning and option checks."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers, ops

from infra.errors import UserError
from models.networks import NETWORK_CHOICES, is_conditional
from models.networks.discriminator import build_discriminator
from models.networks.generator import build_generator

SIZES = (28, 32, 56, 64, 112, 128)
LATENT = 16
CLASSES = 10


def forward(generator, discriminator, labels=(1, 2), seed=0):
    """One batch through G then D; returns (images, scores) as numpy arrays."""
    z = ops.convert_to_tensor(np.random.default_rng(seed).normal(size=(len(labels), LATENT)).astype("float32"))
    extra = [ops.convert_to_tensor(np.array(labels, dtype="int32"))]
    images = generator([z, *extra[: len(generator.inputs) - 1]])
    scores = discriminator([images, *extra[: len(discriminator.inputs) - 1]])
    return ops.convert_to_numpy(images), ops.convert_to_numpy(scores)


@pytest.mark.parametrize("channels", (1, 3))
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("choice", NETWORK_CHOICES)
def test_every_choice_builds_for_every_size(choice, size, channels):
    """Narrow layers keep this cheap; the layer plan (base size, upsamplings) is what depends on the size."""
    narrow = {"choice": choice, "width": 8, **({"widths": [32, 64]} if choice == "gan" else {})}
    options = {**narrow, "output_activation": "sigmoid" if channels == 1 else "tanh"}
    generator = build_generator(options, (size, size, channels), LATENT, CLASSES)
    discriminator = build_discriminator(narrow, (size, size, channels), CLASSES)
    images, scores = forward(generator, discriminator)
    assert images.shape == (2, size, size, channels)
    assert scores.shape == (2, 1)
    assert np.isfinite(scores).all()
    low = 0.0 if channels == 1 else -1.0
    assert low <= images.min() and images.max() <= 1.0
    if channels == 1:  # sigmoid of small pre-activations sits around 0.5, not around tanh's 0
        assert 0.4 < images.mean() < 0.6
    else:
        assert images.min() < 0 < images.max()


@pytest.mark.parametrize("generator_choice", NETWORK_CHOICES)
def test_any_generator_pairs_with_any_discriminator(generator_choice):
    generator = build_generator({"choice": generator_choice}, (32, 32, 3), LATENT, CLASSES)
    for discriminator_choice in NETWORK_CHOICES:
        discriminator = build_discriminator({"choice": discriminator_choice}, (32, 32, 3), CLASSES)
        _, scores = forward(generator, discriminator)
        assert scores.shape == (2, 1)


def test_discriminator_scores_are_raw_not_squashed():
    """The losses apply the sigmoid themselves, so D ends in a linear layer and its scores leave [0, 1]."""
    keras.utils.set_random_seed(1)
    discriminator = build_discriminator({"choice": "dcgan", "init_std": 1.0}, (32, 32, 3), None)
    images = ops.convert_to_tensor(np.random.default_rng(1).uniform(-1, 1, size=(8, 32, 32, 3)).astype("float32"))
    scores = ops.convert_to_numpy(discriminator(images))
    assert discriminator.layers[-1].activation is keras.activations.linear
    assert (np.abs(scores) > 1).any()


def test_conditional_networks_use_the_label():
    generator = build_generator({"choice": "cgan"}, (28, 28, 1), LATENT, CLASSES)
    discriminator = build_discriminator({"choice": "cgan"}, (28, 28, 1), CLASSES)
    assert [tensor.name for tensor in generator.inputs] == ["z", "labels"]
    same_noise = forward(generator, discriminator, labels=(3, 3))
    other_label = forward(generator, discriminator, labels=(3, 7))
    assert np.allclose(same_noise[0][0], other_label[0][0])
    assert np.abs(same_noise[0][1] - other_label[0][1]).max() > 1e-4
    images = ops.convert_to_tensor(same_noise[0])
    score_3 = discriminator([images, ops.convert_to_tensor(np.array([3, 3], "int32"))])
    score_7 = discriminator([images, ops.convert_to_tensor(np.array([7, 7], "int32"))])
    assert np.abs(ops.convert_to_numpy(score_3) - ops.convert_to_numpy(score_7)).max() > 1e-6


@pytest.mark.parametrize("architecture", ("mlp", "conv"))
def test_any_choice_can_be_made_conditional(architecture):
    options = {"choice": "dcgan", "architecture": architecture, "conditional": True}
    assert is_conditional(options) and is_conditional({"choice": "cgan"})
    assert not is_conditional({"choice": "cgan", "conditional": False})
    generator = build_generator(options, (28, 28, 1), LATENT, CLASSES)
    discriminator = build_discriminator(options, (28, 28, 1), CLASSES)
    assert len(generator.inputs) == len(discriminator.inputs) == 2
    assert forward(generator, discriminator)[1].shape == (2, 1)


def layer_types(model) -> set[str]:
    return {type(layer).__name__ for layer in model.layers}


def test_critics_have_no_batch_norm():
    wgan = build_discriminator({"choice": "wgan"}, (64, 64, 3), None)
    wgan_gp = build_discriminator({"choice": "wgan_gp"}, (64, 64, 3), None)
    dcgan = build_discriminator({"choice": "dcgan"}, (64, 64, 3), None)
    assert "BatchNormalization" not in layer_types(wgan) | layer_types(wgan_gp)
    assert "LayerNormalization" in layer_types(wgan_gp)
    assert "BatchNormalization" in layer_types(dcgan)


def test_upsampling_stack_follows_the_image_size():
    """The conv generator starts from 7 px for 56 px images (3 doublings) and 4 px for 64 px (4)."""
    for size, base, upsamplings in ((56, 7, 3), (64, 4, 4)):
        generator = build_generator({"choice": "dcgan"}, (size, size, 3), LATENT, None)
        reshape = next(layer for layer in generator.layers if isinstance(layer, layers.Reshape))
        assert reshape.target_shape[:2] == (base, base)
        transposed = [layer for layer in generator.layers if isinstance(layer, layers.Conv2DTranspose)]
        assert len(transposed) == upsamplings
        assert reshape.target_shape[2] == 64 * 2 ** (upsamplings - 1)


@pytest.mark.parametrize("upsampling, interpolation", (("upsample", "nearest"), ("bilinear", "bilinear")))
def test_upsampling_choice_sets_the_interpolation(upsampling, interpolation, tmp_path):
    """56 px from the 7 px base: three doublings, each by the chosen interpolation, and generator.keras keeps it."""
    options = {"choice": "dcgan", "width": 8, "upsampling": upsampling}
    generator = build_generator(options, (56, 56, 3), LATENT, None)
    resizes = [layer for layer in generator.layers if isinstance(layer, layers.UpSampling2D)]
    assert [layer.interpolation for layer in resizes] == [interpolation] * 3
    assert not [layer for layer in generator.layers if isinstance(layer, layers.Conv2DTranspose)]
    generator.save(tmp_path / "generator.keras")
    loaded = keras.saving.load_model(tmp_path / "generator.keras")
    z = np.random.default_rng(0).normal(size=(2, LATENT)).astype("float32")
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(z)), ops.convert_to_numpy(generator(z)), atol=1e-6)


def test_base_size_sets_the_number_of_upsamplings():
    generator = build_generator({"choice": "dcgan", "base_size": 14, "widths": [32]}, (56, 56, 3), LATENT, None)
    reshape = next(layer for layer in generator.layers if isinstance(layer, layers.Reshape))
    assert reshape.target_shape[:2] == (14, 14)
    assert len([layer for layer in generator.layers if isinstance(layer, layers.Conv2DTranspose)]) == 2
    assert generator.output_shape == (None, 56, 56, 3)


def test_weights_start_from_the_configured_normal():
    generator = build_generator({"choice": "dcgan", "width": 128}, (32, 32, 3), LATENT, None)
    kernel = ops.convert_to_numpy(generator.get_layer(index=1).kernel)
    assert abs(kernel.std() - 0.02) < 0.002 and abs(kernel.mean()) < 0.002
    glorot = build_generator({"choice": "gan", "widths": [8], "init_std": None}, (32, 32, 3), LATENT, None)
    glorot_std = np.sqrt(2 / (LATENT + 8))  # Glorot uniform: limit sqrt(6 / (fan_in + fan_out)), std limit / sqrt(3)
    assert abs(ops.convert_to_numpy(glorot.get_layer(index=1).kernel).std() - glorot_std) < 0.05


@pytest.mark.parametrize(
    "role, options, image_shape, classes, message",
    [
        ("generator", {"choice": "dcgan", "kernel_size": 0}, (32, 32, 3), None, "generator.kernel_size"),
        ("generator", {"choice": "dcgan", "widths": [32]}, (64, 64, 3), None, "needs 4 upsamplings"),
        ("generator", {"choice": "cgan"}, (32, 32, 3), None, "generator.conditional"),
        ("generator", {"choice": "dcgan", "base_size": 5}, (56, 56, 3), None, "generator.base_size: 5 does not"),
        ("generator", {"choice": "vae"}, (32, 32, 3), None, "generator.choice: 'vae' is not allowed"),
        ("discriminator", {"choice": "wgan_gp", "normalization": "batch"}, (32, 32, 3), None, "per sample"),
        ("discriminator", {"choice": "dcgan", "activation": "swish"}, (32, 32, 3), None,
         "discriminator.activation"),
        ("discriminator", {"choice": "dcgan", "widths": [8] * 4, "strides": 1, "padding": "valid",
                           "kernel_size": 9}, (28, 28, 1), None, "shrink 28x28 px images to nothing"),
    ],
)
def test_bad_options_are_one_line_errors(role, options, image_shape, classes, message):
    with pytest.raises(UserError) as raised:
        if role == "generator":
            build_generator(options, image_shape, LATENT, classes)
        else:
            build_discriminator(options, image_shape, classes)
    assert message in str(raised.value) and "\n" not in str(raised.value)
