"""Residual networks, spectral normalization, self-attention and projection / class-conditional batch norm."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from keras import layers, ops

from infra.errors import UserError
from models import train
from models.gan import GAN
from models.networks.discriminator import build_discriminator
from models.networks.generator import build_generator
from models.config import resolve_network
from models.networks.spectral import normalize_spectral_kernels
from tests.models.helpers import make_dataset, sample_in_plain_keras, tiny_config, write_config

LATENT = 8
CLASSES = 3
# Every hidden layer 4 channels wide: tiny, and on JAX few distinct kernel shapes, each compiled once.
TINY = {"width": 4, "max_width": 4}


def tensor(array, dtype="float32"):
    return ops.convert_to_tensor(np.asarray(array, dtype=dtype))


def noise(count: int, seed: int = 0):
    return tensor(np.random.default_rng(seed).normal(size=(count, LATENT)))


def layer_types(model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def top_singular_value(kernel) -> float:
    """As SpectralNormalization sees a kernel: a matrix with the output channels as columns."""
    matrix = ops.convert_to_numpy(kernel)
    return float(np.linalg.svd(matrix.reshape(-1, matrix.shape[-1]), compute_uv=False)[0])


def converge_power_iterations(model, normalize_kernels: bool = True) -> None:
    """Put every spectrally normalized layer where many training steps would: u the kernel's top right singular
    vector and (unless told not to) the kernel divided by its top singular value, so that further
    training-mode calls keep them as they are."""
    for layer in model.layers:
        if isinstance(layer, layers.SpectralNormalization):
            kernel = ops.convert_to_numpy(layer.kernel)
            _, singular_values, right = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]))
            layer.vector_u.assign(right[:1])
            if normalize_kernels:
                layer.kernel.assign(kernel / singular_values[0])


@pytest.mark.parametrize("size, channels", [(28, 1), (32, 3), (56, 3), (64, 1)])
def test_resnet_networks_build_for_every_size(size, channels):
    generator = build_generator({"choice": "dcgan", "architecture": "resnet", **TINY}, (size, size, channels),
                                LATENT, None)
    discriminator = build_discriminator({"choice": "dcgan", "architecture": "resnet", **TINY},
                                        (size, size, channels), None)
    images = generator(noise(2), training=True)
    scores = ops.convert_to_numpy(discriminator(images, training=True))
    assert tuple(images.shape) == (2, size, size, channels)
    assert scores.shape == (2, 1) and np.isfinite(scores).all()
    base = 7 if size % 7 == 0 else 4
    reshape = next(layer for layer in generator.layers if isinstance(layer, layers.Reshape))
    assert reshape.target_shape[:2] == (base, base)
    upsamplings = len([layer for layer in generator.layers if isinstance(layer, layers.UpSampling2D)])
    assert upsamplings == 2 * int(np.log2(size // base))  # one on the residual path, one on the shortcut
    blocks = [layer for layer in discriminator.layers if isinstance(layer, layers.Add)]
    assert [block.output.shape[1] for block in blocks] == [size // 2**depth for depth in range(1, len(blocks) + 1)]
    assert blocks[-1].output.shape[1] == base  # halved while the size stays even and >= 4
    assert discriminator.get_layer(index=-2).input.shape == (None, 4)  # Dense(1) reads the sum-pooled features


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="the layer plan is backend-independent")
def test_resnet_blocks_follow_explicit_widths_and_base_size():
    options = {"choice": "dcgan", "architecture": "resnet", "base_size": 8, "widths": [12, 6, 5], "base_width": 9}
    generator = build_generator(options, (32, 32, 3), LATENT, None)
    assert next(layer for layer in generator.layers if isinstance(layer, layers.Reshape)).target_shape == (8, 8, 9)
    adds = [layer.output.shape[1:] for layer in generator.layers if isinstance(layer, layers.Add)]
    assert adds == [(16, 16, 12), (32, 32, 6), (32, 32, 5)]  # two upsampling blocks, then one at full size
    discriminator = build_discriminator({**options, "widths": [3, 5, 7, 7]}, (28, 28, 1), None)
    adds = [layer.output.shape[1:] for layer in discriminator.layers if isinstance(layer, layers.Add)]
    assert adds == [(14, 14, 3), (7, 7, 5), (7, 7, 7), (7, 7, 7)]  # 7 is odd: the later blocks keep the size
    assert "BatchNormalization" not in layer_types(discriminator)  # resnet discriminators: no normalization
    assert "LayerNormalization" in layer_types(build_discriminator({**options, "normalization": "layer"},
                                                                   (28, 28, 1), None))


@pytest.mark.parametrize("architecture", ("mlp", "conv", "resnet"))
def test_spectral_norm_wraps_every_conv_and_dense(architecture):
    options = {"choice": "cgan", "architecture": architecture, "spectral_norm": True, **TINY,
               **({"widths": [8, 8]} if architecture == "mlp" else {})}
    generator = build_generator(options, (16, 16, 3), LATENT, CLASSES)
    discriminator = build_discriminator({**options, "conditioning": "projection"}, (16, 16, 3), CLASSES)
    for model in (generator, discriminator):
        wrapped = [layer for layer in model.layers if isinstance(layer, layers.SpectralNormalization)]
        bare = [layer for layer in model.layers if isinstance(layer, (layers.Dense, layers.Conv2D))]
        assert wrapped and not bare
        assert {type(layer.layer) for layer in wrapped} <= {layers.Dense, layers.Conv2D, layers.Conv2DTranspose}
    images = generator([noise(2), tensor([0, 2], "int32")], training=True)
    assert ops.convert_to_numpy(discriminator([images, tensor([0, 2], "int32")], training=True)).shape == (2, 1)


def test_spectral_norm_brings_the_largest_singular_value_to_one():
    keras.utils.set_random_seed(3)
    discriminator = build_discriminator({"choice": "wgan", "spectral_norm": True, **TINY}, (16, 16, 3), None)
    wrapped = [layer for layer in discriminator.layers if isinstance(layer, layers.SpectralNormalization)]
    assert len(wrapped) == 3 and top_singular_value(wrapped[0].kernel) < 0.5  # N(0, 0.02) kernels start low
    images = tensor(np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)))
    for _ in range(15):
        discriminator(images, training=True)
    for layer in wrapped:
        assert top_singular_value(layer.kernel) == pytest.approx(1.0, abs=0.05), layer.name


def test_stateless_calls_return_the_power_iteration_vector():
    """The JAX trainer threads non-trainable state through stateless_call: SpectralNormalization's u comes back
    one power iteration further, while the kernel passed in stays as it was (see normalize_spectral_kernels)."""
    keras.utils.set_random_seed(4)
    discriminator = build_discriminator({"choice": "wgan", "spectral_norm": True, **TINY}, (16, 16, 1), None)
    images = tensor(np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 1)))
    trainable = [variable.value for variable in discriminator.trainable_variables]
    non_trainable = [variable.value for variable in discriminator.non_trainable_variables]
    _, updated = discriminator.stateless_call(trainable, non_trainable, images, training=True)
    wrapped = [layer for layer in discriminator.layers if isinstance(layer, layers.SpectralNormalization)]
    paths = [variable.path for variable in discriminator.non_trainable_variables]
    assert sorted(paths) == sorted(layer.vector_u.path for layer in wrapped)
    for layer in wrapped:
        kernel = ops.convert_to_numpy(layer.kernel.value)
        matrix = kernel.reshape(-1, kernel.shape[-1])
        u = ops.convert_to_numpy(non_trainable[paths.index(layer.vector_u.path)])
        v = u @ matrix.T / np.linalg.norm(u @ matrix.T)
        expected = v @ matrix / np.linalg.norm(v @ matrix)
        np.testing.assert_allclose(ops.convert_to_numpy(updated[paths.index(layer.vector_u.path)]), expected,
                                   rtol=1e-4, atol=1e-6)
        assert top_singular_value(kernel) < 0.5  # the Keras variable was not normalized


def test_kernels_normalized_after_stateless_training_match_inference():
    """After stateless (JAX-style) training, inference uses the raw kernel until normalize_spectral_kernels."""
    keras.utils.set_random_seed(5)
    generator = build_generator({"choice": "dcgan", "spectral_norm": True, "normalization": "none",
                                 "init_std": None, **TINY}, (16, 16, 3), LATENT, None)
    converge_power_iterations(generator, normalize_kernels=False)  # as after many steps of JAX training
    z = noise(3)
    trainable = [variable.value for variable in generator.trainable_variables]
    non_trainable = [variable.value for variable in generator.non_trainable_variables]
    trained, non_trainable = generator.stateless_call(trainable, non_trainable, z, training=True)
    for variable, value in zip(generator.non_trainable_variables, non_trainable):
        variable.assign(value)
    assert np.abs(ops.convert_to_numpy(generator(z)) - ops.convert_to_numpy(trained)).max() > 1e-2
    assert normalize_spectral_kernels(generator) == len(generator.non_trainable_variables)
    np.testing.assert_allclose(ops.convert_to_numpy(generator(z)), ops.convert_to_numpy(trained), atol=1e-5)


def test_projection_discriminator_scores_depend_on_the_label():
    keras.utils.set_random_seed(6)
    discriminator = build_discriminator({"choice": "cgan", "architecture": "resnet", "conditioning": "projection",
                                         **TINY}, (16, 16, 3), CLASSES)
    assert "Concatenate" not in layer_types(discriminator)  # the label enters only through the projection
    images = tensor(np.random.default_rng(2).uniform(-1, 1, (1, 16, 16, 3)).repeat(3, axis=0))
    scores = ops.convert_to_numpy(discriminator([images, tensor([0, 1, 2], "int32")]))[:, 0]
    assert scores.dtype == np.float32 and len(set(np.round(scores, 6))) == 3
    class_vectors = discriminator.get_layer("class_projection").kernel
    class_vectors.assign(np.zeros(class_vectors.shape, "float32"))  # no projection: the label no longer matters
    scores = ops.convert_to_numpy(discriminator([images, tensor([0, 1, 2], "int32")]))[:, 0]
    np.testing.assert_allclose(scores, scores[0], rtol=1e-6)


@pytest.mark.parametrize("architecture", ("conv", "resnet"))
def test_class_conditional_batch_norm_generator_depends_on_the_label(architecture):
    keras.utils.set_random_seed(7)
    generator = build_generator({"choice": "cgan", "architecture": architecture, "conditioning": "batch_norm",
                                 **TINY}, (16, 16, 1), LATENT, CLASSES)
    norms = [layer for layer in generator.layers if isinstance(layer, layers.BatchNormalization)]
    assert norms and not any(layer.center or layer.scale for layer in norms)
    assert "Concatenate" not in layer_types(generator)  # z goes in alone; the label acts on every batch norm
    embeddings = [layer for layer in generator.layers if isinstance(layer, layers.Embedding)]
    assert len(embeddings) == 2 * len(norms)
    rng = np.random.default_rng(8)
    for layer in embeddings:  # gamma_y and beta_y start at the identity (1, 0); make them class-specific
        layer.embeddings.assign(layer.embeddings + tensor(rng.normal(0, 0.3, layer.embeddings.shape)))
    z = ops.concatenate([noise(1)] * 3)
    # Training mode: batch statistics bring the tiny N(0, 0.02)-initialised activations to unit scale.
    images = ops.convert_to_numpy(generator([z, tensor([0, 1, 1], "int32")], training=True))
    np.testing.assert_allclose(images[1], images[2], atol=1e-6)
    assert np.abs(images[0] - images[1]).max() > 1e-2


@pytest.mark.parametrize("role", ("generator", "discriminator"))
@pytest.mark.parametrize("architecture", ("conv", "resnet"))
def test_self_attention_goes_in_at_the_configured_height_and_starts_as_identity(role, architecture):
    options = {"choice": "dcgan", "architecture": architecture, "self_attention": 8, **TINY}
    if role == "generator":
        model = build_generator(options, (32, 32, 3), LATENT, None)
        inputs = noise(2)
    else:
        model = build_discriminator(options, (32, 32, 3), None)
        inputs = tensor(np.random.default_rng(3).uniform(-1, 1, (2, 32, 32, 3)))
    attention = [layer for layer in model.layers if isinstance(layer, layers.Attention)]
    assert len(attention) == 1
    gamma = model.get_layer("attention_gamma")
    assert gamma.output.shape[1] == 8 and not np.any(ops.convert_to_numpy(gamma.kernel))
    residual = next(layer for layer in model.layers
                    if isinstance(layer, layers.Add) and any(tensor is gamma.output for tensor in layer.input))
    block = keras.Model(model.inputs, [residual.input[0], residual.output])
    block_input, block_output = (ops.convert_to_numpy(value) for value in block(inputs, training=True))
    np.testing.assert_array_equal(block_output, block_input)  # the attention adds nothing until gamma moves
    gamma.kernel.assign(np.ones(gamma.kernel.shape, "float32"))
    block_input, block_output = (ops.convert_to_numpy(value) for value in block(inputs, training=True))
    assert np.abs(block_output - block_input).max() > 1e-5 * np.abs(block_input).max()  # N(0, 0.02) convs: small


@pytest.mark.parametrize("role, architecture, height, allowed", [
    ("generator", "conv", 12, "4, 8, 16"),
    ("generator", "resnet", 3, "4, 8, 16, 32"),
    ("discriminator", "resnet", 32, "4, 8, 16"),
])
def test_self_attention_at_a_height_the_network_never_has_is_one_line(role, architecture, height, allowed):
    options = {"choice": "dcgan", "architecture": architecture, "self_attention": height, **TINY}
    with pytest.raises(UserError) as raised:
        if role == "generator":
            build_generator(options, (32, 32, 3), LATENT, None)
        else:
            build_discriminator(options, (32, 32, 3), None)
    message = str(raised.value)
    assert message.startswith(f"{role}.self_attention: this {role} has no {height} px high feature map")
    assert f"allowed: {allowed} (or null)" in message and "\n" not in message


def test_new_keys_resolve_with_their_defaults():
    generator = resolve_network({"choice": "dcgan"}, "generator")
    assert (generator["spectral_norm"], generator["self_attention"], generator["conditioning"]) == (False, None,
                                                                                                    "concat")
    resnet_critic = resolve_network({"choice": "wgan_gp", "architecture": "resnet"}, "discriminator")
    assert (resnet_critic["normalization"], resnet_critic["activation"]) == ("none", "relu")
    layer_normed = resolve_network({"choice": "wgan_gp", "architecture": "resnet", "normalization": "layer",
                                    "activation": "elu"}, "discriminator")
    assert (layer_normed["normalization"], layer_normed["activation"]) == ("layer", "elu")
    assert resolve_network({"choice": "gan", "architecture": "resnet"}, "generator")["activation"] == "relu"
    assert resolve_network({"choice": "cgan", "conditioning": None}, "discriminator")["conditioning"] == "concat"


@pytest.mark.parametrize("role, options, message", [
    ("generator", {"conditioning": "projection"}, "generator.conditioning: 'projection' is not allowed for a "
                                                  "generator; allowed: concat, batch_norm"),
    ("discriminator", {"conditioning": "batch_norm"}, "allowed: concat, projection"),
    ("generator", {"conditioning": "batch_norm", "normalization": "layer"}, "set normalization to 'batch'"),
    ("generator", {"architecture": "mlp", "self_attention": 8}, "an mlp network has no feature maps"),
    ("discriminator", {"architecture": "densenet"}, "discriminator.architecture"),
    ("discriminator", {"spectral_norm": "yes"}, "discriminator.spectral_norm"),
    ("generator", {"architecture": "resnet", "widths": [8, 8]}, "gives 2 residual blocks but 32x32 px"),
])
def test_bad_combinations_are_one_line_errors(role, options, message):
    with pytest.raises(UserError) as raised:
        if role == "generator":
            build_generator({"choice": "cgan", **options}, (32, 32, 3), LATENT, CLASSES)
        else:
            build_discriminator({"choice": "cgan", **options}, (32, 32, 3), CLASSES)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def input_gradient_function(discriminator):
    """(images, labels) -> the discriminator's input gradients at its current weights, as the active backend's
    training step computes them (jitted on JAX, as there)."""
    gan = GAN(generator=None, discriminator=discriminator, latent_dim=LATENT, discriminator_conditional=True)
    if keras.backend.backend() == "jax":
        import jax

        from models.backends.jax_step import StatelessNets

        compute = jax.jit(lambda state, images, labels: StatelessNets(gan, state).input_gradients(images, labels))
        return lambda images, labels: np.asarray(compute(
            {"d_trainable": [variable.value for variable in discriminator.trainable_variables],
             "d_non_trainable": [variable.value for variable in discriminator.non_trainable_variables]},
            images, labels))
    import tensorflow as tf

    from models.backends.tensorflow_step import TensorFlowTrainStep

    step = TensorFlowTrainStep(gan, None, None, None, None, None, None)
    return lambda images, labels: step.input_gradients(tf.constant(images), tf.constant(labels)).numpy()


def penalty_weight_gradients(discriminator, images: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
    """Gradients of the R1 penalty sum(|d score / d image|^2) with respect to the weights (double backprop)."""
    if keras.backend.backend() == "jax":
        import jax
        import jax.numpy as jnp

        non_trainable = [variable.value for variable in discriminator.non_trainable_variables]

        def penalty(trainable):
            def total_score(candidates):
                scores, _ = discriminator.stateless_call(trainable, non_trainable, [candidates, labels],
                                                         training=True)
                return jnp.sum(scores)

            return jnp.sum(jax.grad(total_score)(images) ** 2)

        trainable = [variable.value for variable in discriminator.trainable_variables]
        return [np.asarray(gradient) for gradient in jax.jit(jax.grad(penalty))(trainable)]
    import tensorflow as tf

    images = tf.constant(images)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            inner.watch(images)
            scores = discriminator([images, tf.constant(labels)], training=True)
        penalty = tf.reduce_sum(inner.gradient(scores, images) ** 2)
    gradients = outer.gradient(penalty, discriminator.trainable_variables)
    return [np.zeros(variable.shape) if gradient is None else gradient.numpy()  # None: no path, e.g. a last bias
            for variable, gradient in zip(discriminator.trainable_variables, gradients)]


def test_input_gradients_flow_per_sample_through_every_new_layer():
    """Resnet + spectral norm + self-attention + projection: each image's gradient is its own (the same in a
    batch as alone), the attention and the label change it, and the R1 penalty's weight gradients exist."""
    keras.utils.set_random_seed(9)
    discriminator = build_discriminator({"choice": "cgan", "architecture": "resnet", "spectral_norm": True,
                                         "self_attention": 8, "conditioning": "projection", "init_std": None,
                                         **TINY}, (16, 16, 3), CLASSES)
    gamma = discriminator.get_layer("attention_gamma").kernel
    images = np.random.default_rng(4).uniform(-1, 1, (3, 16, 16, 3)).astype(np.float32)
    labels = np.array([0, 1, 2], dtype=np.int32)
    converge_power_iterations(discriminator)  # so that each training-mode call sees the same weights
    input_gradients = input_gradient_function(discriminator)
    without_attention = input_gradients(images, labels)
    gamma.assign(np.ones(gamma.shape, "float32"))
    batched = input_gradients(images, labels)
    assert np.isfinite(batched).all() and (np.abs(batched).reshape(3, -1).max(axis=1) > 0).all()
    assert np.abs(batched - without_attention).max() > 1e-6
    alone = input_gradients(images[1:2], labels[1:2])
    np.testing.assert_allclose(alone[0], batched[1], rtol=1e-4, atol=1e-6)
    other_labels = input_gradients(images, np.array([1, 2, 0], dtype=np.int32))
    assert np.abs(other_labels - batched).max() > 1e-6
    weight_gradients = penalty_weight_gradients(discriminator, images, labels)
    assert all(np.isfinite(gradient).all() for gradient in weight_gradients)
    paths = [variable.path for variable in discriminator.trainable_variables]
    reached = {path for path, gradient in zip(paths, weight_gradients) if np.abs(gradient).max() > 0}
    for name in ("attention_query", "attention_key", "attention_value", "attention_output", "attention_gamma",
                 "class_projection"):
        assert any(name in path.split("/") for path in reached), name


MODERN_GENERATOR = {"architecture": "resnet", "spectral_norm": True, "self_attention": 8,
                    "conditioning": "batch_norm", "conditional": True}
MODERN_DISCRIMINATOR = {"architecture": "resnet", "spectral_norm": True, "self_attention": 8,
                        "conditioning": "projection", "conditional": True}


def test_a_resnet_gan_trains_and_its_generator_loads_in_plain_keras(tmp_path):
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), loss="hinge", tensorboard=False)
    config["generator"].update(MODERN_GENERATOR)
    config["discriminator"].update(MODERN_DISCRIMINATOR)
    path = write_config(tmp_path / "c.json", config)
    assert train.main(["--config", str(path), "--steps", "2", "--name", "r", "--runs-dir", str(tmp_path),
                       "--no-progress"]) == 0
    run = tmp_path / "r"
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    resolved = json.loads((run / "config.json").read_text())
    assert resolved["generator"]["conditioning"] == "batch_norm"
    assert resolved["discriminator"]["spectral_norm"] is True
    output = sample_in_plain_keras(tmp_path, "r/generator.keras", "[np.zeros((2, 8), 'float32'), np.array([0, 2])]",
                                   "type(model.layers[-2]).__name__")
    assert output.endswith("(2, 16, 16, 3) True SpectralNormalization")
