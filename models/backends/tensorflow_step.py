"""TensorFlow: GradientTape, optimizers applied in place; a call's steps run in one compiled tf.while_loop.

This module is the TensorFlow :class:`models.backends.interface.Backend`: the step and the process's runtime,
which on TensorFlow is one device and one process.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from infra.errors import UserError
from models import losses
from models.backends.batch_norm import batch_norm_layers, momentum_replaced

INT32_SPAN = 2**31


class TensorFlowRandom:
    """Stateless randomness: a seed pair per (seed, purpose), folded with the step and with each draw's number."""

    @staticmethod
    def key(seed, purpose):
        # tf.random.stateless_* take two int32 words: the seed's low 31 bits, then its high bit and the purpose.
        return tf.constant([seed % INT32_SPAN, (seed // INT32_SPAN) * 1024 + purpose], tf.int32)

    @staticmethod
    def fold(key, value):
        return tf.random.experimental.stateless_fold_in(key, tf.cast(value, tf.int32))

    @staticmethod
    def normal(key, shape):
        return tf.random.stateless_normal(shape, key, dtype=tf.float32)

    @staticmethod
    def uniform(key, shape):
        return tf.random.stateless_uniform(shape, key, dtype=tf.float32)

    @staticmethod
    def integers(key, shape, high):
        return tf.random.stateless_uniform(shape, key, minval=0, maxval=high, dtype=tf.int32)


def device_memory_bytes() -> int | None:
    """TensorFlow does not report a GPU's total memory; None (the caller assumes a conservative size)."""
    return None


def seed_everything(seed: int, deterministic: bool) -> None:
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def keep_compiled_programs() -> None:
    """TensorFlow has no persistent cache of compiled graphs; each process traces and compiles its own."""


def accelerator_present() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def fused(function):
    # XLA only for this function, even in a step that is not XLA-compiled (on CPU XLA's convolutions are slower
    # than TensorFlow's, so the step stays uncompiled there). reduce_retracing: after a second batch size one
    # trace serves any (sampling class by class gives many sizes); XLA still compiles once per size.
    return tf.function(function, jit_compile=True, reduce_retracing=True)


def trains_statelessly() -> bool:
    return False  # the models are called as they are, on their variables


def compiled_inference(model):
    # A graph that captures the variables themselves, so each call reads their current values.
    compiled = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)
    return lambda inputs, training=False: compiled(inputs)


def compiled_batch_norm_update(model):
    # A graph that assigns the variables it captures, as the eager call does; the momentum is a float32 tensor
    # argument, so each value reuses the one trace.
    norms = batch_norm_layers(model)

    def update_state(inputs, momentum):
        with momentum_replaced(norms, momentum):
            model(inputs, training=True)

    compiled = tf.function(update_state, reduce_retracing=True)
    return lambda inputs, momentum: compiled(inputs, tf.constant(momentum, tf.float32))


def training_devices(requested):
    """TensorFlow trains on one device: asking for more is an error, never a silent fallback."""
    gpus = len(tf.config.list_logical_devices("GPU"))
    wanted = gpus if requested == "all" else requested
    if wanted > 1:
        raise UserError(f"devices = {requested!r}: the TensorFlow backend trains on one device"
                        + (f" and this machine has {gpus} GPUs" if gpus > 1 else "")
                        + "; use --backend jax to train on several, or set devices: 1")
    if requested != "all" and requested > max(gpus, 1):
        raise UserError(f"devices = {requested}: no such device here; allowed: all, or 1")
    return None


def local_device_names() -> list[str]:
    # One device: predict_on_batch has no data-parallel path short of a tf.distribute strategy around the whole
    # model, which would change how it is built.
    return []


def describe_devices(devices) -> str:
    return "1 device (gpu)" if accelerator_present() else "1 device (cpu)"


def start_distributed(coordinator: str, num_processes: int, process_id: int, heartbeat_seconds: int) -> None:
    raise UserError("--coordinator: several processes train together on the JAX backend only; add --backend jax")


def process_index() -> int:
    return 0


def process_count() -> int:
    return 1


def is_lost_process_error(error: Exception) -> bool:
    return False


def share_from_first_process(values: list):
    return values


class TensorFlowTrainStep:
    random = TensorFlowRandom

    def __init__(self, gan, generator_optimizer, discriminator_optimizer, generator_ema, training_state,
                 step_inputs, dataset, devices=None, jit_compile: bool | None = None):
        self.gan = gan
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        self.generator_ema = generator_ema
        self.training_state = training_state or {}
        self.step_inputs = step_inputs
        self.dataset = None if dataset is None else {name: tf.constant(array) for name, array in dataset.items()}
        self.jit_compile = accelerator_present() if jit_compile is None else jit_compile
        self._compiled_calls = {}

    def __call__(self, first_step: int, count: int, regularize_first: bool, per_step: dict) -> dict:
        """Train steps first_step .. first_step + count - 1; returns each metric's (count,) tensor."""
        # One compiled function per (count, regularize_first): the R1 call and the plain call compile separately.
        key = (count, regularize_first)
        if key not in self._compiled_calls:
            self._compiled_calls[key] = tf.function(
                lambda first, inputs: self._call(first, inputs, count, regularize_first), jit_compile=self.jit_compile)
        return self._compiled_calls[key](tf.constant(first_step, tf.int32), per_step)

    def sync(self) -> None:
        """Training updates the Keras variables in place; nothing to copy."""

    def _call(self, first_step, per_step, count, regularize_first):
        names = self.gan.metric_names()
        arrays = {name: tf.TensorArray(tf.float32, size=count) for name in names}
        start = 0
        if regularize_first:
            # Lazy R1 falls on the first step of a call only (the loop starts a call there).
            metrics = self._one_step(first_step, {name: value[0] for name, value in per_step.items()}, True)
            arrays = {name: arrays[name].write(0, metrics[name]) for name in names}
            start = 1

        def body(index, arrays):
            metrics = self._one_step(first_step + index, {name: value[index] for name, value in per_step.items()},
                                     False)
            return index + 1, {name: arrays[name].write(index, metrics[name]) for name in names}

        if count - start == 1:  # no loop for one step: a one-turn tf.while_loop still costs its loop on a CPU
            _, arrays = body(tf.constant(start), arrays)
        elif count > start:
            _, arrays = tf.while_loop(lambda index, arrays: index < count, body, (tf.constant(start), arrays))
        return {name: array.stack() for name, array in arrays.items()}

    def _one_step(self, step, step_inputs, regularize):
        images, labels = self.step_inputs.gather(self.dataset, step_inputs)
        batch = self.step_inputs.batch(self.random, step, images, labels)
        state = {name: variable.value for name, variable in self.training_state.items()}
        metrics, state = self.gan.train_step(batch, self, state, regularize)
        for name, variable in self.training_state.items():
            variable.assign(state[name])
        return {name: tf.cast(value, tf.float32) for name, value in metrics.items()}

    # The ``nets`` the GAN's losses call: the models themselves, in training mode.
    def generate(self, inputs):
        return self.gan.generator(inputs, training=True)

    def discriminate(self, inputs):
        return self.gan.discriminator(inputs, training=True)

    def input_gradients(self, images, labels):
        with tf.GradientTape() as tape:
            tape.watch(images)
            outputs = self.discriminate(self.gan.discriminator_inputs(images, labels))
            scores = tf.cast(self.gan.scores(outputs), tf.float32)
        return tape.gradient(scores, images)

    def _update(self, model, optimizer, loss_fn):
        with tf.GradientTape() as tape:
            loss, aux = loss_fn(self)
            # float16 training: differentiate the loss times the loss-scale optimizer's scale.
            scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
        gradients = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss, aux

    def update_discriminator(self, loss_fn):
        discriminator = self.gan.discriminator
        loss, aux = self._update(discriminator, self.discriminator_optimizer, loss_fn)
        if self.gan.clip_value:
            weights = discriminator.trainable_variables
            for weight, clipped in zip(weights, losses.clip_weights(weights, self.gan.clip_value)):
                weight.assign(clipped)
        return loss, aux

    def update_generator(self, loss_fn):
        return self._update(self.gan.generator, self.generator_optimizer, loss_fn)

    def update_generator_ema(self, beta):
        """Average the generator's weights into the EMA copy; its buffers (batch-norm statistics) are copied."""
        for kept, new in zip(self.generator_ema.trainable_variables, self.gan.generator.trainable_variables):
            kept.assign(beta * kept + (1.0 - beta) * tf.cast(new, kept.dtype))
        for kept, new in zip(self.generator_ema.non_trainable_variables, self.gan.generator.non_trainable_variables):
            kept.assign(new)


make_train_step = TensorFlowTrainStep
