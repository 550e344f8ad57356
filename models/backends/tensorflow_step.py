"""TensorFlow: GradientTape, optimizers applied in place, the whole step compiled with tf.function."""
from __future__ import annotations

import tensorflow as tf

from models import losses


class TensorFlowTrainStep:
    def __init__(self, gan, generator_optimizer, discriminator_optimizer, generator_ema=None, training_state=None):
        self.gan = gan
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        self.generator_ema = generator_ema
        self.training_state = training_state or {}
        # One trace per value of the Python flag: the R1 step and the plain step compile separately.
        self._compiled_step = tf.function(self._train_step)

    def __call__(self, batch, regularize: bool = False) -> dict[str, float]:
        return {name: float(value) for name, value in self._compiled_step(batch, regularize).items()}

    def sync(self) -> None:
        """Training updates the Keras variables in place; nothing to copy."""

    def _train_step(self, batch, regularize):
        state = {name: variable.value for name, variable in self.training_state.items()}
        metrics, state = self.gan.train_step(batch, self, state, regularize)
        for name, variable in self.training_state.items():
            variable.assign(state[name])
        return metrics

    # The ``nets`` the GAN's losses call: the models themselves, in training mode.
    def generate(self, inputs):
        return self.gan.generator(inputs, training=True)

    def discriminate(self, inputs):
        return self.gan.discriminator(inputs, training=True)

    def input_gradients(self, images, labels):
        with tf.GradientTape() as tape:
            tape.watch(images)
            scores = self.discriminate(self.gan.discriminator_inputs(images, labels))
        return tape.gradient(scores, images)

    def _update(self, model, optimizer, loss_fn):
        with tf.GradientTape() as tape:
            loss, aux = loss_fn(self)
        gradients = tape.gradient(loss, model.trainable_variables)
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
