"""JAX: stateless_call + jax.value_and_grad + optimizer.stateless_apply; a call's steps run in one jit.

The weights live in ``self.state`` (lists of arrays) between calls; ``sync()`` copies them into the
Keras variables. While a step is traced, ``self._state`` holds the traced values that each update
replaces, so :meth:`models.gan.GAN.train_step` reads the same on both backends. The state buffers are
donated to each call, so the device holds one copy of the weights, not two.
"""
from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import keras
import numpy as np
from keras import StatelessScope

from models import losses


def _values(variables):
    # Copies: the state is donated to every call, and the Keras variables must outlive that.
    return [jnp.array(variable.value, copy=True) for variable in variables]


class JaxRandom:
    """Stateless randomness: a key per (seed, purpose), folded with the step and with each draw's number."""

    @staticmethod
    def key(seed, purpose):
        return jax.random.fold_in(jax.random.key(seed), purpose)

    @staticmethod
    def fold(key, value):
        return jax.random.fold_in(key, value)

    @staticmethod
    def normal(key, shape):
        return jax.random.normal(key, shape, jnp.float32)

    @staticmethod
    def uniform(key, shape):
        return jax.random.uniform(key, shape, jnp.float32)

    @staticmethod
    def integers(key, shape, high):
        return jax.random.randint(key, shape, 0, high, jnp.int32)


def device_memory_bytes() -> int | None:
    """The memory of the first local device, or None where JAX does not say (a CPU: the host's memory)."""
    stats = jax.local_devices()[0].memory_stats()
    return stats.get("bytes_limit") if stats else None


def seed_everything(seed: int, deterministic: bool) -> None:
    """JAX is deterministic by construction (explicit keys). Keras would import TensorFlow here, and again to
    save generator.keras, only to seed and recognise TensorFlow objects that a JAX run has none of; that
    import takes seconds and a share of the GPU's memory, so Keras is told TensorFlow is absent."""
    if "tensorflow" not in sys.modules:
        from keras.src.utils import module_utils

        module_utils.tensorflow._available = False  # private, but the only switch Keras has
    keras.utils.set_random_seed(seed)


def accelerator_present() -> bool:
    return jax.default_backend() != "cpu"


class StatelessNets:
    """The ``nets`` a loss function calls: the models run statelessly on the weights in ``state``."""

    def __init__(self, gan, state):
        self.gan = gan
        self.state = dict(state)

    def generate(self, inputs):
        images, self.state["g_non_trainable"] = self.gan.generator.stateless_call(
            self.state["g_trainable"], self.state["g_non_trainable"], inputs, training=True)
        return images

    def discriminate(self, inputs):
        scores, self.state["d_non_trainable"] = self.gan.discriminator.stateless_call(
            self.state["d_trainable"], self.state["d_non_trainable"], inputs, training=True)
        return scores

    def input_gradients(self, images, labels):
        def total_score(candidate_images):
            scores, _ = self.gan.discriminator.stateless_call(
                self.state["d_trainable"], self.state["d_non_trainable"],
                self.gan.discriminator_inputs(candidate_images, labels), training=True)
            return jnp.sum(scores.astype(jnp.float32))

        return jax.grad(total_score)(images)


class JaxTrainStep:
    random = JaxRandom

    def __init__(self, gan, generator_optimizer, discriminator_optimizer, generator_ema, training_state,
                 step_inputs, dataset):
        self.gan = gan
        self.step_inputs = step_inputs
        self.optimizers = {"g": generator_optimizer, "d": discriminator_optimizer}
        self.models = {"g": gan.generator, "d": gan.discriminator}
        if generator_ema is not None:
            self.models["g_ema"] = generator_ema
        self.training_state = training_state or {}
        self.state = {}
        for key, model in self.models.items():
            self.state[f"{key}_trainable"] = _values(model.trainable_variables)
            self.state[f"{key}_non_trainable"] = _values(model.non_trainable_variables)
            if key in self.optimizers:
                self.state[f"{key}_optimizer"] = _values(self.optimizers[key].variables)
        self.state["training"] = {name: jnp.array(variable.value, copy=True)
                                  for name, variable in self.training_state.items()}
        self.dataset = None if dataset is None else {name: jax.device_put(array) for name, array in dataset.items()}
        self._state = None
        self._compiled_call = jax.jit(self._call, static_argnames=("count", "regularize_first"), donate_argnums=0)

    def __call__(self, first_step: int, count: int, regularize_first: bool, per_step: dict) -> dict:
        """Train steps first_step .. first_step + count - 1; returns each metric's (count,) device array."""
        self.state, metrics = self._compiled_call(self.state, self.dataset, np.int32(first_step), per_step,
                                                  count=count, regularize_first=regularize_first)
        return metrics

    def sync(self) -> None:
        for key, model in self.models.items():
            pairs = [(model.trainable_variables, self.state[f"{key}_trainable"]),
                     (model.non_trainable_variables, self.state[f"{key}_non_trainable"])]
            if key in self.optimizers:
                pairs.append((self.optimizers[key].variables, self.state[f"{key}_optimizer"]))
            for variables, values in pairs:
                for variable, value in zip(variables, values):
                    variable.assign(jnp.array(value, copy=True))  # the next call donates ``value``
        for name, variable in self.training_state.items():
            variable.assign(jnp.array(self.state["training"][name], copy=True))

    def _call(self, state, dataset, first_step, per_step, count, regularize_first):
        steps = first_step + jnp.arange(count, dtype=jnp.int32)
        parts = []
        if regularize_first:
            # Lazy R1 falls on the first step of a call only (the loop starts a call there), so the scan
            # below needs no branch.
            state, metrics = self._one_step(state, dataset, steps[0], _take(per_step, 0), regularize=True)
            parts.append(jax.tree_util.tree_map(lambda value: value[None], metrics))
            steps, per_step = steps[1:], jax.tree_util.tree_map(lambda value: value[1:], per_step)
        if len(steps):
            state, metrics = jax.lax.scan(
                lambda carry, inputs: self._one_step(carry, dataset, inputs[0], inputs[1], regularize=False),
                state, (steps, per_step))
            parts.append(metrics)
        return state, jax.tree_util.tree_map(lambda *values: jnp.concatenate(values), *parts)

    def _one_step(self, state, dataset, step, step_inputs, regularize):
        images, labels = self.step_inputs.gather(dataset, step_inputs)
        batch = self.step_inputs.batch(self.random, step, images, labels)
        self._state = dict(state)
        metrics, self._state["training"] = self.gan.train_step(batch, self, state["training"], regularize)
        state, self._state = self._state, None
        return state, metrics

    def _update(self, key, loss_fn):
        optimizer = self.optimizers[key]

        def loss_and_state(trainable, state):
            nets = StatelessNets(self.gan, {**state, f"{key}_trainable": trainable})
            loss, aux = loss_fn(nets)
            return _scaled(optimizer, state[f"{key}_optimizer"], loss), (nets.state, aux, loss)

        (_, (state, aux, loss)), gradients = jax.value_and_grad(loss_and_state, has_aux=True)(
            self._state[f"{key}_trainable"], self._state)
        trainable, optimizer_state = optimizer.stateless_apply(
            self._state[f"{key}_optimizer"], gradients, self._state[f"{key}_trainable"])
        if key == "d" and self.gan.clip_value:
            trainable = losses.clip_weights(trainable, self.gan.clip_value)
        self._state = {**state, f"{key}_trainable": trainable, f"{key}_optimizer": optimizer_state}
        return loss, aux

    def update_discriminator(self, loss_fn):
        return self._update("d", loss_fn)

    def update_generator(self, loss_fn):
        return self._update("g", loss_fn)

    def update_generator_ema(self, beta):
        """Average the generator's weights into the EMA copy; its buffers (batch-norm statistics) are copied."""
        average = self._state["g_ema_trainable"]
        self._state["g_ema_trainable"] = [beta * kept + (1.0 - beta) * new.astype(kept.dtype)
                                          for kept, new in zip(average, self._state["g_trainable"])]
        self._state["g_ema_non_trainable"] = list(self._state["g_non_trainable"])


def _scaled(optimizer, optimizer_state, loss):
    """float16 training: the loss times the loss-scale optimizer's current scale (read from ``optimizer_state``)."""
    if not hasattr(optimizer, "scale_loss"):
        return loss
    with StatelessScope(state_mapping=list(zip(optimizer.variables, optimizer_state))):
        return optimizer.scale_loss(loss)


def _take(tree, index):
    return jax.tree_util.tree_map(lambda value: value[index], tree)


TrainStep = JaxTrainStep
