"""FastGAN's two parts: skip-layer excitation in the generator, and the self-supervised (reconstructing)
discriminator."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from keras import layers, ops

from infra.errors import UserError
from models import config as configs
from models import losses, train
from models.gan import GAN
from models.networks.discriminator import build_discriminator, reconstruction_shape
from models.networks.generator import build_generator
from tests.models.helpers import (EagerNets, make_dataset, run_module, sample_in_plain_keras, tiny_config,
                                  write_config)

LATENT = 8
TINY = {"width": 4, "max_width": 4}
LOGO_GENERATOR = {"choice": "dcgan", "width": 4, "upsampling": "upsample", "kernel_size": 3, "palette": 2,
                  "palette_scale": 2, "skip_excitation": True}


def noise(count: int, seed: int = 0):
    return ops.convert_to_tensor(np.random.default_rng(seed).normal(size=(count, LATENT)).astype("float32"))


def gates(model) -> list:
    return [layer for layer in model.layers if isinstance(layer, layers.Multiply)]


def test_the_coarsest_map_gates_the_one_four_times_higher_per_channel():
    """56 px logos with palette_scale 2: maps of 7, 14 and 28 px; the 7 px map gates the 28 px one's channels."""
    generator = build_generator(LOGO_GENERATOR, (56, 56, 3), LATENT, None)
    [gate_layer] = gates(generator)
    gated, channel_gates = gate_layer.input
    assert tuple(gated.shape[1:3]) == (28, 28) and tuple(channel_gates.shape[1:]) == (1, 1, gated.shape[-1])
    probe = keras.Model(generator.inputs, [gated, channel_gates, gate_layer.output])
    inputs, gate_values, outputs = (ops.convert_to_numpy(value) for value in probe(noise(4), training=True))
    np.testing.assert_allclose(outputs, inputs * gate_values, rtol=1e-6)
    assert ((gate_values > 0) & (gate_values < 1)).all()
    # The gate follows the latent vector, through the coarse map.
    assert np.abs(gate_values[0] - gate_values[1]).max() > 1e-4
    without = build_generator({**LOGO_GENERATOR, "skip_excitation": False}, (56, 56, 3), LATENT, None)
    assert gates(without) == [] and generator.count_params() > without.count_params()


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="the layer plan is backend-independent")
def test_a_resnet_generator_links_every_pair_four_times_apart():
    generator = build_generator({"choice": "dcgan", "architecture": "resnet", "skip_excitation": True, **TINY},
                                (64, 64, 3), LATENT, None)
    gated_heights = [layer.input[0].shape[1] for layer in gates(generator)]
    pooled_heights = [layer.input.shape[1] for layer in generator.layers
                      if isinstance(layer, layers.AveragePooling2D)]
    flattened = [tuple(layer.input.shape[1:3]) for layer in generator.layers if isinstance(layer, layers.Flatten)]
    # The 4 px base gates 16 px as it is; the 8 and 16 px maps are pooled to 4x4 first.
    assert gated_heights == [16, 32, 64] and pooled_heights == [8, 16] and flattened == [(4, 4)] * 3


@pytest.mark.parametrize("role, options, shape, message", [
    ("generator", {"choice": "dcgan", "skip_excitation": True}, (28, 28, 1),
     "generator.skip_excitation: this generator's feature maps (7, 14 px high) have no pair 4 times apart"),
    ("generator", {"choice": "gan", "skip_excitation": True}, (28, 28, 1),
     "generator.skip_excitation: only a conv or resnet generator gates its feature maps"),
    ("discriminator", {"choice": "dcgan", "skip_excitation": True}, (28, 28, 1),
     "discriminator.skip_excitation: only a conv or resnet generator"),
])
def test_excitation_where_it_cannot_go_is_one_line(role, options, shape, message):
    with pytest.raises(UserError) as raised:
        if role == "generator":
            build_generator({**options, **TINY}, shape, LATENT, None)
        else:
            build_discriminator({**options, **TINY}, shape, None)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


@pytest.mark.parametrize("architecture, size, classes, scale, expected, upsamplings", [
    ("conv", 56, None, 2, (28, 28, 3), 2),     # 7 px map, two doublings: half the image
    ("conv", 56, None, 4, (14, 14, 3), 1),
    ("conv", 56, None, 8, (7, 7, 3), 0),       # the map itself, through the output conv
    ("resnet", 32, None, 2, (16, 16, 3), 2),   # 4 px map
    ("conv", 32, 3, 1, (32, 32, 3), 3),        # after the score and the auxiliary classifier's logits
    ("conv", 8, None, 2, (4, 4, 3), 0),        # one halving: the map itself is half the image
])
def test_the_decoder_redraws_the_image_scaled_down_after_the_other_outputs(architecture, size, classes, scale,
                                                                          expected, upsamplings):
    discriminator = build_discriminator({"choice": "dcgan", "architecture": architecture, **TINY},
                                        (size, size, 3), None, classes, reconstruction_scale=scale)
    assert reconstruction_shape(discriminator) == expected
    decoder_upsamplings = [layer for layer in discriminator.layers if isinstance(layer, layers.UpSampling2D)]
    assert len(decoder_upsamplings) == upsamplings
    images = np.random.default_rng(1).uniform(-1, 1, (2, size, size, 3)).astype("float32")
    outputs = ops.convert_to_numpy(discriminator([images], training=True))
    assert outputs.shape == (2, 1 + (classes or 0) + int(np.prod(expected)))
    assert np.isfinite(outputs).all()
    plain = build_discriminator({"choice": "dcgan", "architecture": architecture, **TINY}, (size, size, 3), None,
                                classes)
    assert reconstruction_shape(plain) is None


@pytest.mark.parametrize("options, scale, message", [
    ({"choice": "gan"}, 2, "reconstruction_weight: an mlp discriminator has no feature map to decode"),
    ({"choice": "dcgan", "padding": "valid", "kernel_size": 3}, 2,
     "reconstruction_weight: the discriminator's last feature map (3x3) does not double up to 32x32 px"),
    ({"choice": "dcgan"}, 16, "reconstruction_scale: 16 asks for 2 px redrawings, smaller than the "
                              "discriminator's last feature map (4 px); allowed: up to 8"),
])
def test_a_decoder_the_discriminator_cannot_have_is_one_line(options, scale, message):
    with pytest.raises(UserError) as raised:
        build_discriminator({**options, **TINY}, (32, 32, 3), None, reconstruction_scale=scale)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_reconstruction_loss_is_the_mean_squared_error_against_the_pooled_images():
    rng = np.random.default_rng(2)
    images = rng.uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    reconstructions = rng.uniform(-1, 1, (2, 4, 4, 3)).astype("float32")
    pooled = images.reshape(2, 4, 2, 4, 2, 3).mean(axis=(2, 4))
    loss = float(ops.convert_to_numpy(losses.reconstruction_loss(ops.convert_to_tensor(reconstructions),
                                                                 ops.convert_to_tensor(images))))
    assert loss == pytest.approx(float(np.mean((reconstructions - pooled) ** 2)), rel=1e-5)
    same_size = float(ops.convert_to_numpy(losses.reconstruction_loss(ops.convert_to_tensor(images),
                                                                      ops.convert_to_tensor(images))))
    assert same_size == 0.0


def test_the_discriminator_loss_adds_the_weighted_error_on_real_images_only():
    keras.utils.set_random_seed(5)
    generator = build_generator({"choice": "dcgan", **TINY}, (16, 16, 3), LATENT, None)
    discriminator = build_discriminator({"choice": "dcgan", **TINY}, (16, 16, 3), None, reconstruction_scale=2)
    shape = reconstruction_shape(discriminator)
    real = np.random.default_rng(6).uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
    arguments = dict(state={}, regularize=False, real_images=ops.convert_to_tensor(real),
                     real_labels=ops.zeros((4,), "int32"), random_latent_vectors=noise(4),
                     fake_labels=ops.zeros((4,), "int32"), mixing_weights=None)
    nets = EagerNets(generator, discriminator)
    weighted = GAN(generator, discriminator, LATENT, reconstruction_weight=2.0, reconstruction_shape=shape)
    loss, aux = weighted.discriminator_loss(nets, **arguments)
    outputs = ops.convert_to_numpy(discriminator([real], training=True))
    redrawn = outputs[:, 1:].reshape(4, *shape)
    expected_error = np.mean((redrawn - real.reshape(4, 8, 2, 8, 2, 3).mean(axis=(2, 4))) ** 2)
    assert float(ops.convert_to_numpy(aux["reconstruction"])) == pytest.approx(expected_error, rel=1e-4)
    # The rest of the loss is the plain GAN loss on the score column alone.
    generated = ops.convert_to_numpy(generator([noise(4)], training=True))
    fake_scores = ops.convert_to_numpy(discriminator([generated], training=True))[:, :1]
    plain = losses.discriminator_loss("bce", ops.convert_to_tensor(outputs[:, :1]),
                                      ops.convert_to_tensor(fake_scores))
    assert float(ops.convert_to_numpy(loss)) == pytest.approx(
        float(ops.convert_to_numpy(plain)) + 2.0 * expected_error, rel=1e-4)
    assert weighted.metric_names()[-1] == "reconstruction"


def test_a_fastgan_run_learns_to_redraw_and_its_generator_loads_in_plain_keras(tmp_path):
    """Both parts together, with R1 reading the score column: the discriminator's redrawing of the real
    images gets better as it trains, and generator.keras (with its gates) loads without the project."""
    config = tiny_config(make_dataset(tmp_path / "squares.npz", count=64, size=32), tensorboard=False,
                         reconstruction_weight=1.0, r1_gamma=0.1, r1_interval=4, log_interval=1,
                         sample_interval=40, checkpoint_interval=40)
    config["generator"].update(skip_excitation=True)
    path = write_config(tmp_path / "c.json", config)
    assert train.main(["--config", str(path), "--steps", "40", "--name", "f", "--runs-dir", str(tmp_path),
                       "--no-progress"]) == 0
    run = tmp_path / "f"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    errors = [record["reconstruction"] for record in records if "reconstruction" in record]
    assert len(errors) == 40 and all(np.isfinite(errors))
    assert np.mean(errors[-10:]) < 0.7 * np.mean(errors[:5])
    resolved = json.loads((run / "config.json").read_text())
    assert resolved["reconstruction_weight"] == 1.0 and resolved["generator"]["skip_excitation"] is True
    output = sample_in_plain_keras(tmp_path, "f/generator.keras", "np.zeros((2, 8), 'float32')",
                                   "sum(type(layer).__name__ == 'Multiply' for layer in model.layers)")
    assert output == "(2, 32, 32, 3) True 1"


def test_a_reconstruction_scale_without_a_weight_is_refused_in_one_line(tmp_path):
    config = tiny_config(make_dataset(tmp_path / "squares.npz"))
    path = write_config(tmp_path / "c.json", config)
    result = run_module("models.train", "--config", str(path), "--set", "reconstruction_scale=4", "--steps", "1",
                        "--runs-dir", str(tmp_path), timeout=120)
    assert result.returncode == 2
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["c.json", "squares.npz"]  # no run folder
    assert result.stderr.strip().splitlines() == [
        f"models.train: error: {path}: reconstruction_scale = 4 has no effect while reconstruction_weight is 0; "
        "give reconstruction_weight a weight (e.g. 1) or drop reconstruction_scale"]
    # A run folder's resolved config keeps the default scale beside a zero weight, and resolves again.
    resolved = configs.resolve(config, "c.json")
    assert resolved["reconstruction_scale"] == 2 and configs.resolve(resolved, "c.json")["reconstruction_weight"] == 0
    assert configs.resolve({**config, "reconstruction_weight": 1, "reconstruction_scale": 4})["reconstruction_scale"] == 4
