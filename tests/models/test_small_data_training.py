"""Small-data training: augmentation of what the discriminator sees, the EMA generator, R1 and LeCam."""
from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from models import losses, train
from models.gan import GAN
from models.networks.discriminator import build_discriminator
from models.networks.generator import build_generator
from models.generate import load_generator
from models.step_inputs import StepInputs
from preprocessing.dataset import save_dataset
from tests.models.helpers import EagerNets, make_dataset, tiny_config, write_config
from tests.models.test_resume import checkpoint_step, interrupt_this_process_after

MODERN = {
    "augment": {"policy": ["color", "translation", "cutout"], "adaptive": True, "probability": 0.3,
                "adjust_kimg": 0.5},
    "ema_kimg": 0.2, "r1_gamma": 0.5, "r1_interval": 3, "lecam_weight": 0.1, "loss": "hinge",
    "reconstruction_weight": 0.5, "top_k_fraction": 0.75,
}
# FastGAN's gates: from a 2 px base the 16 px generator passes 2, 4 and 8 px maps, and 2 px gates 8 px.
MODERN_GENERATOR = {"base_size": 2, "skip_excitation": True}


def checkpoint_arrays(run: Path, slot: str = "last") -> dict[str, np.ndarray]:
    with np.load(run / "checkpoints" / slot / "variables.npz") as archive:
        return {name: archive[name] for name in archive.files}


def test_every_option_trains_and_a_stopped_run_resumes_to_the_same_weights_and_state(tmp_path):
    data = make_dataset(tmp_path / "squares.npz")
    config = tiny_config(data, "cgan", "cgan", checkpoint_interval=4, log_interval=4, sample_interval=20,
                         tensorboard=False, **MODERN)
    config["generator"].update(MODERN_GENERATOR)
    config_path = write_config(tmp_path / "c.json", config)
    common = ["--runs-dir", str(tmp_path), "--steps", "16", "--no-progress"]
    run = tmp_path / "stopped"

    watcher = interrupt_this_process_after(run, 4)
    assert train.main(["--config", str(config_path), "--name", "stopped", *common]) == 130
    watcher.join(timeout=10)
    assert 4 <= checkpoint_step(run) < 16
    assert train.main(["--resume", str(run), "--no-progress"]) == 0
    assert train.main(["--config", str(config_path), "--name", "straight", *common]) == 0

    resumed, straight = checkpoint_arrays(run), checkpoint_arrays(tmp_path / "straight")
    assert resumed.keys() == straight.keys()
    assert any(name.startswith("generator_ema/") for name in straight)
    assert sorted(name for name in straight if name.startswith("training_state/")) == [
        "training_state/0000", "training_state/0001", "training_state/0002"]
    for name in straight:
        np.testing.assert_allclose(resumed[name], straight[name], atol=1e-5, rtol=0, err_msg=name)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(0.0 <= record["augment_probability"] <= 1.0 and -1 <= record["real_sign"] <= 1 for record in records)
    assert all(record["reconstruction"] > 0 for record in records)
    # The adaptive probability moved from where it started.
    assert records[-1]["augment_probability"] != pytest.approx(0.3, abs=1e-6)


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ema")
    config = tiny_config(make_dataset(folder / "squares.npz"), ema_kimg=0.05, tensorboard=False)
    assert train.main(["--config", str(write_config(folder / "c.json", config)), "--steps", "8", "--name", "ema",
                       "--runs-dir", str(folder), "--no-progress"]) == 0
    return folder / "ema"


def test_the_exported_generator_and_generate_use_the_ema_weights_and_the_raw_ones_stay_in_the_checkpoint(ema_run):
    arrays = checkpoint_arrays(ema_run)
    raw = [arrays[name] for name in sorted(arrays) if name.startswith("generator/")]
    average = [arrays[name] for name in sorted(arrays) if name.startswith("generator_ema/")]
    assert len(raw) == len(average) > 0
    assert any(not np.allclose(a, b) for a, b in zip(raw, average))
    exported = keras.saving.load_model(ema_run / "generator.keras")
    for variable, value in zip(exported.variables, average):
        np.testing.assert_allclose(variable.numpy(), value, atol=1e-6)
    from_checkpoint = load_generator(ema_run).sample(4, seed=3)
    noise = np.random.default_rng(3).standard_normal((4, 8), dtype=np.float32)
    from_export = ops.convert_to_numpy(exported([noise], training=False))
    np.testing.assert_allclose(from_checkpoint, np.round((from_export + 1) * 127.5).clip(0, 255), atol=1)


def test_the_ema_half_life_is_stated_in_images_and_ramps_up():
    config = {"batch_size": 100, "n_critic": 1, "latent_dim": 4, "seed": 0, "augment": {"policy": []},
              "ema_kimg": 10, "ema_rampup": 0.05}
    inputs = StepInputs(config, None, "tanh")
    # Far into training the half-life is 10,000 images: 100 steps of 100 images halve the old weights.
    assert float(inputs.ema_beta(10**6)) ** 100 == pytest.approx(0.5, rel=1e-4)
    # Early on it is 5% of the images seen: after step 0 (100 images), a half-life of 5 images.
    assert float(inputs.ema_beta(0)) == pytest.approx(0.5 ** (100 / 5))
    inputs.ema_rampup = None
    assert float(inputs.ema_beta(0)) == pytest.approx(0.5 ** (100 / 10_000))


def test_r1_and_lecam_values():
    gradients = np.array([[[[3.0]], [[4.0]]], [[[0.0]], [[1.0]]]], np.float32)  # per-sample squared norms 25 and 1
    assert float(losses.r1_penalty(gradients)) == pytest.approx(13.0)
    real, fake = np.array([2.0, -1.0], np.float32), np.array([0.5, -3.0], np.float32)
    # relu(real - 1)^2 -> [1, 0]; relu(0 - fake)^2 -> [0, 9]
    assert float(losses.lecam_regularizer(real, fake, 0.0, 1.0)) == pytest.approx(0.5 + 4.5)


def test_top_k_training_takes_the_generator_loss_over_the_images_scored_most_real():
    keras.utils.set_random_seed(3)
    options = {"choice": "dcgan", "width": 4, "max_width": 4}
    generator = build_generator(options, (16, 16, 3), 8, None)
    discriminator = build_discriminator(options, (16, 16, 3), None)

    latent_vectors = ops.convert_to_tensor(np.random.default_rng(4).normal(size=(8, 8)).astype("float32"))
    arguments = dict(state={}, random_latent_vectors=latent_vectors, fake_labels=ops.zeros((8,), "int32"))
    scores = ops.convert_to_numpy(discriminator([generator([latent_vectors], training=True)], training=True)).ravel()
    for fraction, kept in ((0.75, 6), (0.3, 3), (1.0, 8)):
        gan = GAN(generator, discriminator, 8, batch_size=8, top_k_fraction=fraction)
        loss, _ = gan.generator_loss(EagerNets(generator, discriminator), **arguments)
        highest = np.sort(scores)[-kept:]
        assert float(ops.convert_to_numpy(loss)) == pytest.approx(float(np.mean(np.log1p(np.exp(-highest)))),
                                                                  rel=1e-4), fraction


def test_the_adaptive_probability_rises_when_the_discriminator_is_sure_of_the_reals_and_falls_otherwise():
    gan = GAN(None, None, 4, batch_size=64,
              augment_options={"policy": ["translation"], "adaptive": True, "probability": 0.5, "target": 0.6,
                               "adjust_kimg": 1.0})
    state = gan.initial_state()
    sure = gan._next_state(state, [{"real_sign": 1.0}])
    unsure = gan._next_state(state, [{"real_sign": 0.0}])
    assert float(sure["augment_probability"]) == pytest.approx(0.5 + 0.064)
    assert float(unsure["augment_probability"]) == pytest.approx(0.5 - 0.064)


def test_augmentation_does_not_leak_into_the_generated_images(tmp_path):
    """On one solid colour, a generator that learnt the augmentations would draw cut-out holes and shifted
    borders in the fill colour (mid-grey, 87 away from the colour); augmenting reals and fakes alike, it cannot."""
    colour = np.array([200, 40, 40])
    data = save_dataset(tmp_path / "solid.npz", np.broadcast_to(colour, (64, 16, 16, 3)).astype(np.uint8))
    config = tiny_config(data, augment={"policy": ["translation", "cutout"], "probability": 1.0}, batch_size=16,
                         tensorboard=False, sample_interval=1000, checkpoint_interval=1000, log_interval=100)
    assert train.main(["--config", str(write_config(tmp_path / "c.json", config)), "--steps", "300", "--name", "solid",
                       "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    images = load_generator(tmp_path / "solid").sample(64, seed=0).astype(float)
    distance = np.abs(images - colour).max(axis=-1)
    # Measured: the largest distance is ~50 after 300 steps; a generator trained on augmented reals only
    # draws 25% of its pixels more than 60 away.
    assert distance.max() < 70, np.sort(distance.ravel())[-20:]


def test_a_time_limit_ends_the_run_as_a_finished_one(tmp_path):
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), time_limit_minutes=1e-4, tensorboard=False)
    assert train.main(["--config", str(write_config(tmp_path / "c.json", config)), "--steps", "1000",
                       "--name", "timed", "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    status = json.loads((tmp_path / "timed" / "status.json").read_text())
    assert status["state"] == "finished" and 1 <= status["step"] < 1000
    assert status["training_seconds"] >= 60 * 1e-4  # the loop ran at least its limit, and says how long
    assert checkpoint_step(tmp_path / "timed") == status["step"]
    assert (tmp_path / "timed" / "generator.keras").is_file()


def test_standing_statistics_are_the_average_of_the_generators_own_batches():
    from models.sampling import StandingStatistics

    inputs = keras.Input((4,))
    dense = keras.layers.Dense(8)
    norm = keras.layers.BatchNormalization(momentum=0.9)
    model = keras.Model([inputs], norm(dense(inputs)))  # as the generators: a list of inputs
    noise = np.random.default_rng(0).standard_normal((256, 4)).astype("float32")
    assert StandingStatistics(model).recompute(noise, None, batches=4) == 1
    chunks = np.array_split(noise @ dense.kernel.numpy() + dense.bias.numpy(), 4)
    np.testing.assert_allclose(norm.moving_mean.numpy(), np.mean([c.mean(0) for c in chunks], 0), atol=1e-5)
    np.testing.assert_allclose(norm.moving_variance.numpy(), np.mean([c.var(0) for c in chunks], 0), atol=1e-4)
    assert norm.momentum == 0.9


def test_a_spectrally_normalized_generator_is_sampled_and_exported_with_normalized_kernels(tmp_path):
    """JAX trains the raw kernels of spectral normalization; what is sampled and exported must be normalized."""
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), tensorboard=False)
    config["generator"].update(spectral_norm=True, normalization="none", init_std=None)
    assert train.main(["--config", str(write_config(tmp_path / "c.json", config)), "--steps", "3", "--name", "sn",
                       "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    exported = keras.saving.load_model(tmp_path / "sn" / "generator.keras")
    kernels = [layer.kernel.numpy() for layer in exported.layers
               if isinstance(layer, keras.layers.SpectralNormalization)]
    assert kernels
    for kernel in kernels:
        top = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        assert top == pytest.approx(1.0, abs=0.05)
    noise = np.random.default_rng(3).standard_normal((4, 8), dtype=np.float32)
    from_export = ops.convert_to_numpy(exported([noise], training=False))
    np.testing.assert_allclose(load_generator(tmp_path / "sn").sample(4, seed=3),
                               np.round((from_export + 1) * 127.5).clip(0, 255), atol=2)
