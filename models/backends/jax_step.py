"""JAX: stateless_call + jax.value_and_grad + optimizer.stateless_apply; a call's steps run in one jit.

This module is the JAX :class:`models.backends.interface.Backend`: the step is here, the process's runtime
(devices, several processes, the compilation cache, seeding) in models.backends.jax_runtime, imported below.

The weights live in ``self.state`` (lists of arrays) between calls; ``sync()`` copies them into the
Keras variables. While a step is traced, ``self._state`` holds the traced values that each update
replaces, so :meth:`models.gan.GAN.train_step` reads the same on both backends. The state buffers are
donated to each call, so the device holds one copy of the weights, not two.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import keras
import numpy as np
from keras import StatelessScope

from models import losses
from models.backends.batch_norm import batch_norm_layers, momentum_replaced
from models.backends.jax_runtime import (  # noqa: F401  (the Backend interface's runtime members)
    accelerator_present, describe_devices, device_memory_bytes, is_lost_process_error, keep_compiled_programs,
    local_device_names, process_count, process_index, seed_everything, share_from_first_process, start_distributed, training_devices)


class DataParallel:
    """keras.distribution.DataParallel over ``devices``: the weights and the dataset replicated on every device,
    each batch split along its batch axis. The step stays one jitted program (XLA's SPMD partitioner adds the
    gradient all-reduce), and batch norm's mean and variance, taken over the batch axis, are those of the
    global batch. With several processes (jax.distributed), every process holds the same host values (same
    seed, same checkpoint, same step indices) and supplies the parts for its own devices."""

    def __init__(self, devices):
        self.distribution = keras.distribution.DataParallel(devices=devices)

    def sharding(self, ndim: int, batch_axis: int | None = None):
        axes = [None] * ndim
        if batch_axis is not None:
            axes[batch_axis] = self.distribution.batch_dim_name
        return keras.distribution.TensorLayout(axes, self.distribution.device_mesh).backend_layout

    def replicate(self, value):
        return _global_array(np.asarray(value), self.sharding(np.ndim(value)))

    def split(self, value, batch_axis: int):
        return _global_array(np.asarray(value), self.sharding(np.ndim(value), batch_axis))

    def constrain(self, value, batch_axis: int | None):
        return jax.lax.with_sharding_constraint(value, self.sharding(value.ndim, batch_axis))


class OneDevice:
    """The default device; copies, because the state is donated to every call and the Keras variables must
    outlive that."""

    @staticmethod
    def replicate(value):
        return jnp.array(value, copy=True)

    @staticmethod
    def split(value, batch_axis):
        return value

    @staticmethod
    def constrain(value, batch_axis):
        return value


def _global_array(host_value: np.ndarray, sharding):
    return jax.make_array_from_callback(host_value.shape, sharding, lambda index: host_value[index])


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


def fused(function):
    return function  # the jitted step fuses it


def trains_statelessly() -> bool:
    return True  # stateless_call: the weights live in the step's state, not in the Keras variables


def compiled_inference(model):
    # The weights are arguments, read from the Keras variables at each call, so a sync between calls is seen.
    compiled = jax.jit(lambda trainable, non_trainable, inputs: model.stateless_call(
        trainable, non_trainable, inputs, training=False)[0])

    def call(inputs, training=False):
        return compiled([v.value for v in model.trainable_variables],
                        [v.value for v in model.non_trainable_variables], inputs)

    return call


def compiled_batch_norm_update(model):
    # The weights and the momentum are arguments; the new non-trainable values come back and are assigned, as
    # the eager call would have.
    norms = batch_norm_layers(model)

    def new_state(trainable, non_trainable, inputs, momentum):
        with momentum_replaced(norms, momentum):
            return model.stateless_call(trainable, non_trainable, inputs, training=True)[1]

    compiled = jax.jit(new_state)

    def update(inputs, momentum):
        values = compiled([v.value for v in model.trainable_variables],
                          [v.value for v in model.non_trainable_variables], inputs, jnp.float32(momentum))
        for variable, value in zip(model.non_trainable_variables, values):
            variable.assign(value)

    return update


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
            outputs, _ = self.gan.discriminator.stateless_call(
                self.state["d_trainable"], self.state["d_non_trainable"],
                self.gan.discriminator_inputs(candidate_images, labels), training=True)
            return jnp.sum(self.gan.scores(outputs).astype(jnp.float32))

        return jax.grad(total_score)(images)


class JaxTrainStep:
    random = JaxRandom

    def __init__(self, gan, generator_optimizer, discriminator_optimizer, generator_ema, training_state,
                 step_inputs, dataset, devices=None):
        self.gan = gan
        self.placement = DataParallel(devices) if devices is not None and len(devices) > 1 else OneDevice()
        self.step_inputs = step_inputs
        self.optimizers = {"g": generator_optimizer, "d": discriminator_optimizer}
        self.models = {"g": gan.generator, "d": gan.discriminator}
        if generator_ema is not None:
            self.models["g_ema"] = generator_ema
        self.training_state = training_state or {}
        replicate = self.placement.replicate
        self.state = {}
        for key, model in self.models.items():
            self.state[f"{key}_trainable"] = [replicate(v.value) for v in model.trainable_variables]
            self.state[f"{key}_non_trainable"] = [replicate(v.value) for v in model.non_trainable_variables]
            if key in self.optimizers:
                self.state[f"{key}_optimizer"] = [replicate(v.value) for v in self.optimizers[key].variables]
        self.state["training"] = {name: replicate(variable.value) for name, variable in self.training_state.items()}
        self.dataset = None if dataset is None else {name: replicate(array) for name, array in dataset.items()}
        self._state = None
        self._compiled_call = jax.jit(self._call, static_argnames=("count", "regularize_first"), donate_argnums=0)

    def __call__(self, first_step: int, count: int, regularize_first: bool, per_step: dict) -> dict:
        """Train steps first_step .. first_step + count - 1; returns each metric's (count,) device array."""
        per_step = {name: self.placement.split(value, batch_axis=2) for name, value in per_step.items()}
        first_step = self.placement.replicate(np.int32(first_step))
        self.state, metrics = self._compiled_call(self.state, self.dataset, first_step, per_step,
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
                    variable.assign(_local_copy(value))
        for name, variable in self.training_state.items():
            variable.assign(_local_copy(self.state["training"][name]))

    def _call(self, state, dataset, first_step, per_step, count, regularize_first):
        steps = first_step + jnp.arange(count, dtype=jnp.int32)
        parts = []
        if regularize_first:
            # Lazy R1 falls on the first step of a call only (the loop starts a call there), so the scan
            # below needs no branch.
            state, metrics = self._one_step(state, dataset, steps[0], _take(per_step, 0), regularize=True)
            parts.append(jax.tree_util.tree_map(lambda value: value[None], metrics))
            steps, per_step = steps[1:], jax.tree_util.tree_map(lambda value: value[1:], per_step)
        if len(steps) and not accelerator_present():
            # Steps one after another in the program: XLA:CPU runs the same step many times slower inside
            # lax.scan, even unrolled (docs/speed.md, "Figures quoted from code comments").
            for index in range(len(steps)):
                state, metrics = self._one_step(state, dataset, steps[index], _take(per_step, index), regularize=False)
                parts.append(jax.tree_util.tree_map(lambda value: value[None], metrics))
        elif len(steps):
            # On a GPU one loop keeps the step's kernels queued back to back, with no launch from Python between.
            state, metrics = jax.lax.scan(
                lambda carry, inputs: self._one_step(carry, dataset, inputs[0], inputs[1], regularize=False),
                state, (steps, per_step))
            parts.append(metrics)
        return state, jax.tree_util.tree_map(lambda *values: jnp.concatenate(values), *parts)

    def _one_step(self, state, dataset, step, step_inputs, regularize):
        images, labels = self.step_inputs.gather(dataset, step_inputs)
        batch = self.step_inputs.batch(self.random, step, images, labels)
        batch = {name: self.placement.constrain(value, self.step_inputs.batch_axis(name))
                 for name, value in batch.items()}
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


def _local_copy(value):
    """A copy on one local device (the next call donates ``value``; with several devices, the Keras variables
    that sampling and saving read stay on one)."""
    return jnp.array(value.addressable_data(0), copy=True)


def _take(tree, index):
    return jax.tree_util.tree_map(lambda value: value[index], tree)


make_train_step = JaxTrainStep
