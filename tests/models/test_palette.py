"""The palette generator: flat-colour images drawn as per-pixel mixes of a few colours chosen per image."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from keras import ops

from infra.errors import UserError
from models import train
from models.networks.discriminator import build_discriminator
from models.networks.generator import build_generator
from tests.models.helpers import make_dataset, sample_in_plain_keras, tiny_config, write_config

LATENT = 8
TINY = {"width": 4, "max_width": 4}


def generate(generator, count: int = 3, labels=None) -> np.ndarray:
    z = np.random.default_rng(0).normal(size=(count, LATENT)).astype("float32")
    inputs = [z] if labels is None else [z, np.asarray(labels, dtype="int32")]
    return ops.convert_to_numpy(generator(inputs, training=False))


def singular_values_per_image(images: np.ndarray) -> np.ndarray:
    """(B, H, W, C) -> (B, C) singular values of each image's centred pixel colours, largest first."""
    pixels = images.reshape(images.shape[0], -1, images.shape[-1])
    return np.stack([np.linalg.svd(p - p.mean(axis=0), compute_uv=False) for p in pixels])


@pytest.mark.parametrize("architecture, conditioning", [("conv", "concat"), ("resnet", "batch_norm"),
                                                        ("mlp", "concat")])
def test_a_two_colour_palette_puts_every_pixel_between_the_images_two_colours(architecture, conditioning):
    options = {"choice": "cgan", "architecture": architecture, "conditioning": conditioning, "palette": 2,
               "init_std": 0.5, **TINY}  # wide kernels, so that the logits vary over the image
    images = generate(build_generator(options, (16, 16, 3), LATENT, 3), labels=[0, 1, 2])
    assert images.shape == (3, 16, 16, 3) and np.all(np.abs(images) <= 1)
    singular = singular_values_per_image(images)
    # The pixels of each image lie on one line in RGB (the segment between its colours): one direction of spread.
    assert np.all(singular[:, 0] > 1e-4)
    assert np.all(singular[:, 1] < 1e-4 * singular[:, 0] + 1e-6)


def test_more_entries_allow_more_colours_and_sigmoid_keeps_the_zero_one_range():
    options = {"choice": "dcgan", "palette": 4, "output_activation": "sigmoid", "init_std": 0.5, **TINY}
    images = generate(build_generator(options, (16, 16, 3), LATENT, None))
    assert np.all((images > 0) & (images < 1))
    singular = singular_values_per_image(images)
    assert np.all(singular[:, 2] > 1e-3 * singular[:, 0])  # four colours span all three RGB directions


def test_the_palette_starts_with_distinct_entries_dark_to_light():
    """Equal entries would make every pixel the same colour whatever the logits say, leaving them no gradient."""
    generator = build_generator({"choice": "dcgan", "palette": 2, **TINY}, (16, 16, 1), LATENT, None)
    logits_conv = [layer for layer in generator.layers if "Conv2D" in type(layer).__name__][-1]
    means = []
    for bias in ([8.0, -8.0], [-8.0, 8.0]):  # every pixel on entry 0, then every pixel on entry 1
        logits_conv.bias.assign(np.asarray(bias, dtype="float32"))
        means.append(generate(generator).mean())
    assert means[0] < -0.8 and means[1] > 0.8


def set_every_pixel_to_entry(generator, entry: int, entries: int = 2) -> None:
    logits_conv = [layer for layer in generator.layers if "Conv2D" in type(layer).__name__][-1]
    logits_conv.bias.assign(np.asarray([50.0 if index == entry else -50.0 for index in range(entries)], "float32"))


@pytest.mark.parametrize("channels, activation, expected", [
    (3, "tanh", [1.0, 2 * 0x80 / 255 - 1, -1.0]),  # '#ff8000' in [-1, 1]
    (3, "sigmoid", [1.0, 0x80 / 255, 0.0]),
    (1, "sigmoid", [0.299 + 0.587 * 0x80 / 255]),  # a grey dataset: the colour's luma
])
def test_a_palette_background_is_entry_zero_whatever_the_input(channels, activation, expected):
    options = {"choice": "dcgan", "palette": 3, "palette_background": "#ff8000", "output_activation": activation,
               "init_std": 0.5, **TINY}
    generator = build_generator(options, (16, 16, channels), LATENT, None)
    set_every_pixel_to_entry(generator, 0, entries=3)
    images = generate(generator, count=4)
    np.testing.assert_allclose(images.reshape(-1, channels), np.tile(expected, (4 * 16 * 16, 1)), atol=1e-5)
    set_every_pixel_to_entry(generator, 2, entries=3)  # a chosen entry: it follows the latent vector
    chosen = generate(generator, count=4)
    assert np.abs(chosen - np.asarray(expected)).max() > 0.05
    assert chosen.std(axis=(1, 2)).max() < 1e-5 < chosen.mean(axis=(1, 2)).std(axis=0).max()  # flat, per image
    background = generator.get_layer("palette_background")
    trainable_paths = {weight.path for weight in generator.trainable_weights}
    assert not background.trainable and not trainable_paths & {weight.path for weight in background.weights}


@pytest.mark.parametrize("background, chosen_is_dark", [("#ffffff", True), ("#000000", False)])
def test_a_two_colour_palette_with_a_background_starts_its_mark_far_from_it(background, chosen_is_dark):
    """The chosen entry starts as the grey at the other end of the range, so mark and background differ."""
    options = {"choice": "dcgan", "palette": 2, "palette_background": background, **TINY}
    generator = build_generator(options, (16, 16, 3), LATENT, None)
    set_every_pixel_to_entry(generator, 1)
    assert (generate(generator).mean() < -0.5) == chosen_is_dark and abs(generate(generator).mean()) > 0.5


def test_a_palette_background_trains_and_stays_in_the_generator_plain_keras_loads(tmp_path):
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), tensorboard=False)
    config["generator"].update(palette=2, palette_background="#ffffff")
    config["ema_kimg"] = 0.01
    path = write_config(tmp_path / "c.json", config)
    assert train.main(["--config", str(path), "--steps", "3", "--name", "p", "--runs-dir", str(tmp_path),
                       "--no-progress"]) == 0
    # The EMA generator is the one saved; its fixed entry is still exactly white.
    output = sample_in_plain_keras(
        tmp_path, "p/generator.keras", "np.zeros((2, 8), 'float32')",
        "model.get_layer('palette_background').get_weights()[1].tolist() == [1.0, 1.0, 1.0]")
    assert output.endswith("(2, 16, 16, 3) True True")


@pytest.mark.parametrize("role, options, message", [
    ("discriminator", {"choice": "dcgan", "palette": 2}, "discriminator.palette: only a generator draws"),
    ("generator", {"choice": "dcgan", "palette": 1}, "generator.palette"),
    ("generator", {"choice": "dcgan", "palette": "two"}, "generator.palette"),
    ("generator", {"choice": "dcgan", "palette_scale": 2}, "generator.palette_scale: 2 needs a generator with a "
                                                           "palette"),
    ("generator", {"choice": "dcgan", "architecture": "mlp", "palette": 2, "palette_scale": 2},
     "generator.palette_scale: 2 needs a generator with a palette and architecture conv, resnet, shapes or vector"),
    ("generator", {"choice": "dcgan", "architecture": "resnet", "palette": 2, "palette_scale": 4,
                   "base_size": 8}, "generator.palette_scale: 4 leaves out more doublings than the 1"),
    ("generator", {"choice": "dcgan", "architecture": "resnet", "palette": 2, "palette_scale": 2,
                   "base_size": 2, "widths": [4]},
     "generator.widths: [4] gives 1 residual blocks but 16x16 px from the 2x2 base needs 2 upsamplings"),
    ("generator", {"choice": "dcgan", "palette": 2, "palette_scale": 3}, "generator.palette_scale"),
    ("generator", {"choice": "dcgan", "palette": 2, "palette_scale": 4, "base_size": 8},
     "generator.palette_scale: 4 leaves out more doublings than the 1"),
    ("discriminator", {"choice": "dcgan", "palette_scale": 2}, "discriminator.palette_scale"),
    ("generator", {"choice": "dcgan", "palette": 2, "palette_background": "white"},
     "generator.palette_background: 'white' does not match"),
    ("generator", {"choice": "dcgan", "palette_background": "#ffffff"},
     "generator.palette_background: '#ffffff' needs a generator with a palette"),
    ("discriminator", {"choice": "dcgan", "palette_background": "#ffffff"}, "discriminator.palette_background"),
])
def test_bad_palettes_are_one_line_errors(role, options, message):
    with pytest.raises(UserError) as raised:
        if role == "generator":
            build_generator(options, (16, 16, 3), LATENT, None)
        else:
            build_discriminator(options, (16, 16, 3), None)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def last_conv_output_shape(generator) -> tuple:
    return tuple([layer for layer in generator.layers if "Conv2D" in type(layer).__name__][-1].output.shape[1:])


def mean_step_between_neighbours(images: np.ndarray) -> float:
    return float(np.abs(np.diff(images, axis=1)).mean() + np.abs(np.diff(images, axis=2)).mean())


def test_a_palette_scale_draws_the_logits_smaller_and_enlarges_them_smoothly():
    keras.utils.set_random_seed(0)
    options = {"choice": "dcgan", "palette": 2, "init_std": 0.5, **TINY}  # wide kernels: noisy logits
    full = build_generator(options, (32, 32, 3), LATENT, None)
    keras.utils.set_random_seed(0)
    halved = build_generator({**options, "palette_scale": 2}, (32, 32, 3), LATENT, None)
    assert last_conv_output_shape(full) == (32, 32, 2) and last_conv_output_shape(halved) == (16, 16, 2)
    assert len(halved.trainable_weights) == len(full.trainable_weights)  # the same layers, the last one smaller
    images = generate(halved, count=4)
    assert images.shape == (4, 32, 32, 3) and np.all(np.abs(images) <= 1)
    singular = singular_values_per_image(images)
    assert np.all(singular[:, 1] < 1e-4 * singular[:, 0] + 1e-6)  # still two colours per image
    # Neighbouring pixels differ far less: no pixel-level speckle.
    assert mean_step_between_neighbours(images) < 0.75 * mean_step_between_neighbours(generate(full, count=4))


def test_a_resnet_palette_scale_leaves_out_the_last_doubling_and_its_block():
    keras.utils.set_random_seed(0)
    options = {"choice": "dcgan", "architecture": "resnet", "palette": 2, "init_std": 0.5, **TINY}
    full = build_generator(options, (32, 32, 3), LATENT, None)
    halved = build_generator({**options, "palette_scale": 2}, (32, 32, 3), LATENT, None)
    assert last_conv_output_shape(full) == (32, 32, 2) and last_conv_output_shape(halved) == (16, 16, 2)
    # Blocks at 8, 16 and 32 px against 8 and 16: one block of two 3x3 convs and a 1x1 shortcut fewer.
    conv_count = [sum("Conv2D" in type(layer).__name__ for layer in model.layers) for model in (full, halved)]
    assert conv_count[0] - conv_count[1] == 3
    images = generate(halved, count=4)
    assert images.shape == (4, 32, 32, 3) and np.all(np.abs(images) <= 1)
    singular = singular_values_per_image(images)
    assert np.all(singular[:, 1] < 1e-4 * singular[:, 0] + 1e-6)  # still two colours per image


def test_a_palette_gan_trains_and_its_generator_loads_in_plain_keras(tmp_path):
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), tensorboard=False)
    config["generator"].update(palette=3, palette_scale=2)
    path = write_config(tmp_path / "c.json", config)
    assert train.main(["--config", str(path), "--steps", "2", "--name", "p", "--runs-dir", str(tmp_path),
                       "--no-progress"]) == 0
    assert json.loads((tmp_path / "p" / "config.json").read_text())["generator"]["palette_scale"] == 2
    output = sample_in_plain_keras(tmp_path, "p/generator.keras", "np.zeros((2, 8), 'float32')",
                                   "float(np.abs(images).max()) <= 1")
    assert output.endswith("(2, 16, 16, 3) True True")
