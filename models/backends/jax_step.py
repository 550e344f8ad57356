"""JAX: stateless_call + jax.value_and_grad + optimizer.stateless_apply, the whole step jitted.

The weights live in ``self.state`` (lists of arrays) between steps; ``sync()`` copies them into the
Keras variables. While a step is traced, ``self._state`` holds the traced values that each update
replaces, so :meth:`models.gan.GAN.train_step` reads the same on both backends.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from models import losses


def _values(variables):
    return [variable.value for variable in variables]


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
            return jnp.sum(scores)

        return jax.grad(total_score)(images)


class JaxTrainStep:
    def __init__(self, gan, generator_optimizer, discriminator_optimizer, generator_ema=None, training_state=None):
        self.gan = gan
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
        self.state["training"] = {name: variable.value for name, variable in self.training_state.items()}
        self._state = None
        self._compiled_step = jax.jit(self._train_step, static_argnames="regularize")

    def __call__(self, batch, regularize: bool = False) -> dict[str, float]:
        self.state, metrics = self._compiled_step(self.state, batch, regularize=regularize)
        return {name: float(value) for name, value in metrics.items()}

    def sync(self) -> None:
        for key, model in self.models.items():
            pairs = [(model.trainable_variables, self.state[f"{key}_trainable"]),
                     (model.non_trainable_variables, self.state[f"{key}_non_trainable"])]
            if key in self.optimizers:
                pairs.append((self.optimizers[key].variables, self.state[f"{key}_optimizer"]))
            for variables, values in pairs:
                for variable, value in zip(variables, values):
                    variable.assign(value)
        for name, variable in self.training_state.items():
            variable.assign(self.state["training"][name])

    def _train_step(self, state, batch, regularize):
        self._state = state
        metrics, self._state["training"] = self.gan.train_step(batch, self, state["training"], regularize)
        state, self._state = self._state, None
        return state, metrics

    def _update(self, key, loss_fn):
        def loss_and_state(trainable, state):
            nets = StatelessNets(self.gan, {**state, f"{key}_trainable": trainable})
            loss, aux = loss_fn(nets)
            return loss, (nets.state, aux)

        (loss, (state, aux)), gradients = jax.value_and_grad(loss_and_state, has_aux=True)(
            self._state[f"{key}_trainable"], self._state)
        trainable, optimizer_state = self.optimizers[key].stateless_apply(
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
