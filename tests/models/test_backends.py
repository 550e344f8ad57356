"""The backend-specific gradient steps: TensorFlow here, JAX in a subprocess (Keras picks its backend once)."""
from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import generate, losses, train
from models.gan import GAN
from models.outputs import read_metrics
from tests.models.helpers import (PROJECT_ROOT, make_dataset, run_module, run_without_the_project, subprocess_env,
                                 tiny_config, write_config)


@pytest.fixture(scope="module")
def dataset_path(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "squares.npz")


def critic_input_gradients(gan: GAN, images: np.ndarray) -> np.ndarray:
    """The critic's input gradients as the active backend's training step computes them."""
    if keras.backend.backend() == "jax":
        from models.backends.jax_step import StatelessNets

        state = {"d_trainable": [variable.value for variable in gan.discriminator.trainable_variables],
                 "d_non_trainable": [variable.value for variable in gan.discriminator.non_trainable_variables]}
        return np.asarray(StatelessNets(gan, state).input_gradients(images, None))
    from models.backends.tensorflow_step import TensorFlowTrainStep

    return TensorFlowTrainStep(gan, None, None, None, None, None, None).input_gradients(tf.constant(images), None).numpy()


def test_input_gradients_are_taken_per_sample():
    kernel = np.random.default_rng(1).normal(size=(4 * 4 * 1, 1)).astype(np.float32)
    images_in = keras.Input((4, 4, 1))
    critic = keras.Model([images_in], keras.layers.Dense(1)(keras.layers.Flatten()(images_in)))
    critic.layers[-1].kernel.assign(kernel)
    images = np.random.default_rng(2).normal(size=(3, 4, 4, 1)).astype(np.float32)
    gradients = critic_input_gradients(GAN(generator=None, discriminator=critic, latent_dim=2), images)
    for sample_gradient in gradients:  # a linear critic's gradient is its kernel, for every sample alike
        np.testing.assert_allclose(sample_gradient.reshape(-1), kernel[:, 0], rtol=1e-5)
    expected_penalty = (np.linalg.norm(kernel) - 1) ** 2
    assert float(losses.gradient_penalty(gradients)) == pytest.approx(expected_penalty, rel=1e-4)


def test_input_gradients_differentiate_the_score_and_not_the_auxiliary_class_logits():
    """R1 and the gradient penalty regularise the score; the class logits beside it (AC-GAN) stay out."""
    rng = np.random.default_rng(3)
    images_in = keras.Input((4, 4, 1))
    features = keras.layers.Flatten()(images_in)
    score_layer, class_layer = keras.layers.Dense(1), keras.layers.Dense(3)
    critic = keras.Model([images_in], keras.layers.Concatenate()([score_layer(features), class_layer(features)]))
    score_kernel = rng.normal(size=(16, 1)).astype(np.float32)
    score_layer.kernel.assign(score_kernel)
    class_layer.kernel.assign(rng.normal(size=(16, 3)).astype(np.float32))
    gan = GAN(generator=None, discriminator=critic, latent_dim=2, class_loss_weight=1.0)
    gradients = critic_input_gradients(gan, rng.normal(size=(2, 4, 4, 1)).astype(np.float32))
    for sample_gradient in gradients:
        np.testing.assert_allclose(sample_gradient.reshape(-1), score_kernel[:, 0], rtol=1e-5)


def discriminator_arrays(run) -> list[np.ndarray]:
    with np.load(run / "checkpoints" / "last" / "variables.npz") as archive:
        return [archive[name] for name in archive.files if name.startswith("discriminator/")]


@pytest.mark.parametrize("generator, discriminator, extra", [
    ("gan", "wgan", {}),
    ("dcgan", "wgan_gp", {"n_critic": 2}),
    ("dcgan", "dcgan", {"loss": "hinge"}),
    ("gan", "gan", {"loss": "lsgan"}),
    ("cgan", "dcgan", {"loss": "hinge", "class_loss_weight": 1.0, "r1_gamma": 1.0, "r1_interval": 1}),
    ("cgan", "cgan", {"loss": "hinge", "class_loss_weight": 0.5, "class_loss_type": "adc"}),
    ("cgan", "cgan", {"loss": "hinge", "class_loss_weight": 0.5, "class_loss_type": "hinge"}),
])
def test_each_loss_trains(tmp_path, dataset_path, generator, discriminator, extra):
    config = write_config(tmp_path / "c.json", tiny_config(dataset_path, generator, discriminator, **extra))
    assert train.main(["--config", str(config), "--steps", "2", "--name", "r", "--runs-dir", str(tmp_path),
                       "--no-progress"]) == 0
    run = tmp_path / "r"
    resolved = json.loads((run / "config.json").read_text())
    assert all(np.isfinite(record["d_loss"]) for record in read_metrics(run))
    if discriminator == "wgan":
        assert resolved["clip_value"] == 0.01
        weights = [array for array in discriminator_arrays(run) if array.dtype.kind == "f"]
        assert max(np.abs(array).max() for array in weights) <= 0.01 + 1e-7


def test_jax_backend_trains_a_conditional_gradient_penalty_gan(tmp_path, dataset_path):
    config = tiny_config(dataset_path, "cgan", "wgan_gp", n_critic=2)
    config["discriminator"].update(conditional=True, dropout=0.2)
    config_path = write_config(tmp_path / "c.json", config)
    result = run_module("models.train", "--config", str(config_path), "--backend", "jax", "--steps", "4",
                        "--name", "jax", "--runs-dir", str(tmp_path), "--no-progress", timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "jax"
    resolved = json.loads((run / "config.json").read_text())
    assert resolved["backend"] == "jax" and resolved["lambda_gp"] == 10.0
    records = read_metrics(run)
    assert [record["step"] for record in records] == [2, 4]
    assert all(np.isfinite(record["d_loss"]) and np.isfinite(record["g_loss"]) for record in records)
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    # Weights trained on JAX load on TensorFlow, both as a checkpoint and as the exported .keras file.
    trained = generate.load_generator(run)
    exported = keras.saving.load_model(run / "generator.keras")
    noise = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    labels = np.array([0, 1, 2], dtype=np.int32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(exported([noise, labels])),
                               keras.ops.convert_to_numpy(trained.model([noise, labels])), atol=1e-5)
    assert trained.sample(3, seed=0, class_index="blue").shape == (3, 16, 16, 3)


def test_exported_generator_loads_in_plain_keras_without_the_project(tmp_path, dataset_path):
    config = write_config(tmp_path / "c.json", tiny_config(dataset_path, "cgan", "dcgan", tensorboard=False))
    assert train.main(["--config", str(config), "--steps", "1", "--name", "r", "--runs-dir", str(tmp_path),
                       "--no-progress"]) == 0
    script = ("import keras, numpy as np; model = keras.saving.load_model('r/generator.keras'); "
              "print(model([np.zeros((2, 8), 'float32'), np.array([0, 2])]).shape)")
    result = run_without_the_project(script, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("(2, 16, 16, 3)")


# The trainer's tests that exercise backend code (networks, losses, gradient steps, checkpoints, exact resume,
# the modern presets, generation), run again in a JAX process; sizes up to 56 px, as the layer plan for larger
# sizes is backend-independent. JAX compiles each new network for seconds on CPU, so what only repeats
# backend-independent logic stays on TensorFlow (the suite has to finish in 30 minutes on 2 cores):
# - of the presets, only the small-data ones train here: the classic presets' networks and losses are each
#   trained on JAX by test_networks.py and test_each_loss_trains, and what a preset adds is its config;
# - exact resume with one step per call: fused calls are proved equal to single steps on JAX by
#   test_fused_steps.py, and where a resume regroups them is the loop's work, the same on both backends.
# The selection comes in parts of a few minutes each, which the suite's workers (pytest-xdist, one per core)
# share out like the other work units (tests/conftest.py), instead of one worker running all of it.
JAX_TEST_SELECTION = {
    "layers-and-losses": [
        "tests/models/test_networks.py", "tests/models/test_losses.py",
        # Of the modern layers, what depends on the backend: stateless calls, gradients through them, a run.
        *(f"tests/models/test_networks_modern.py::{name}" for name in (
            "test_spectral_norm_brings_the_largest_singular_value_to_one",
            "test_stateless_calls_return_the_power_iteration_vector",
            "test_kernels_normalized_after_stateless_training_match_inference",
            "test_projection_discriminator_scores_depend_on_the_label",
            "test_input_gradients_flow_per_sample_through_every_new_layer",
            "test_a_resnet_gan_trains_and_its_generator_loads_in_plain_keras",
        )),
        "tests/models/test_shapes.py",
        *(f"tests/models/test_vector.py::{name}" for name in (
            "test_a_closed_path_started_as_a_circle_fills_the_circle_with_anti_aliased_edges",
            "test_parts_paint_in_order_and_painting_the_background_carves",
            "test_a_vector_run_writes_svgs_that_match_its_pngs",
        )),
        *(f"tests/models/test_fastgan.py::{name}" for name in (
            "test_the_coarsest_map_gates_the_one_four_times_higher_per_channel",
            "test_the_discriminator_loss_adds_the_weighted_error_on_real_images_only",
            "test_a_fastgan_run_learns_to_redraw_and_its_generator_loads_in_plain_keras",
        )),
        "tests/models/test_augment.py",
        "tests/models/test_backends.py::test_input_gradients_are_taken_per_sample",
        "tests/models/test_backends.py::test_input_gradients_differentiate_the_score_and_not_the_auxiliary_class_logits",
        "tests/models/test_backends.py::test_each_loss_trains",
    ],
    "training-resume-and-fused-steps": [
        "tests/models/test_train.py", "tests/models/test_checkpoints.py",
        "tests/models/test_resume.py::test_ctrl_c_then_sigkill_then_resume_matches_an_uninterrupted_run[1]",
        "tests/models/test_resume.py::test_stops_that_arrive_during_the_checkpoint_do_not_cut_it",
        "tests/models/test_fused_steps.py",
    ],
    "presets-and-generation": [
        "tests/models/test_presets.py::test_every_preset_trains[logos_small_data]",
        "tests/models/test_presets.py::test_every_preset_trains[logos_shapes]",
        "tests/models/test_presets.py::test_every_preset_trains[logos_vector]",
        "tests/models/test_presets.py::test_every_preset_trains[fashion_small_data]",
        "tests/serve/test_generate.py",
        *(f"tests/models/test_small_data_training.py::{name}" for name in (
            "test_every_option_trains_and_a_stopped_run_resumes_to_the_same_weights_and_state",
            "test_the_exported_generator_and_generate_use_the_ema_weights_and_the_raw_ones_stay_in_the_checkpoint",
            "test_a_spectrally_normalized_generator_is_sampled_and_exported_with_normalized_kernels",
        )),
    ],
}  # fmt: skip
# The re-run's programs are small and each runs a few steps, so its time goes into compiling them: without LLVM's
# costly passes it takes a third less (measured over the three parts, 1,110 s to 753 s of a 2-core suite). Only
# here: a test that trains for hundreds of steps (test_background_auto.py) runs three times slower without them.
COMPILE_FAST_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
JAX_PYTEST = """
import sys
import keras
import pytest
assert keras.backend.backend() == "jax", keras.backend.backend()
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:], "-k", "not 64 and not 112 and not 128"]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("part", JAX_TEST_SELECTION)
def test_trainer_tests_pass_on_jax(part):
    """Keras fixes its backend at import, so the backend-sensitive tests run again in a JAX process."""
    result = subprocess.run(
        [sys.executable, "-c", JAX_PYTEST, *JAX_TEST_SELECTION[part]],
        env=subprocess_env(KERAS_BACKEND="jax", XLA_FLAGS=COMPILE_FAST_XLA_FLAGS),
        cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=1800,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary
