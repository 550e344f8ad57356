"""TensorFlow: GradientTape, optimizers applied in place, the whole step compiled with tf.function."""
from __future__ import annotations

import tensorflow as tf

from models import losses


class TensorFlowTrainStep:
    def __init__(self, gan, generator_optimizer, discriminator_optimizer):
        self.gan = gan
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        self._compiled_step = tf.function(self._train_step)

    def __call__(self, batch) -> dict[str, float]:
        return {name: float(value) for name, value in self._compiled_step(batch).items()}

    def sync(self) -> None:
        """Training updates the Keras variables in place; nothing to copy."""

    def _train_step(self, batch):
        return self.gan.train_step(batch, self)

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
            loss = loss_fn(self)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    def update_discriminator(self, loss_fn):
        discriminator = self.gan.discriminator
        loss = self._update(discriminator, self.discriminator_optimizer, loss_fn)
        if self.gan.clip_value:
            weights = discriminator.trainable_variables
            for weight, clipped in zip(weights, losses.clip_weights(weights, self.gan.clip_value)):
                weight.assign(clipped)
        return loss

    def update_generator(self, loss_fn):
        return self._update(self.gan.generator, self.generator_optimizer, loss_fn)
