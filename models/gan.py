"""The GAN: a generator, a discriminator and the losses that set them against each other.

Written once with keras.ops. How gradients are taken and weights updated is the one thing that differs
between backends; that lives in :mod:`models.backends`, which hands :meth:`GAN.train_step` a ``backend``
object with ``update_discriminator(loss_fn)`` and ``update_generator(loss_fn)``. Each ``loss_fn(nets)``
gets ``nets`` with ``generate(inputs)``, ``discriminate(inputs)`` and ``input_gradients(images, labels)``
(the gradient of the discriminator's scores with respect to its input images, for the gradient penalty).

All randomness of a step arrives in its batch (drawn on the host from the run's seed and the step
number), so a step is a pure function of the weights and the batch: that is what makes resume exact.
A batch is a dict of arrays (``n`` = n_critic, ``B`` = batch size):

- ``real_images`` (n, B, H, W, C) in the generator's output range, ``real_labels`` (n, B) int32;
- ``critic_latent_vectors`` (n, B, latent_dim), ``critic_fake_labels`` (n, B), ``mixing_weights``
  (n, B, 1, 1, 1) U(0, 1) for the gradient penalty;
- ``random_latent_vectors`` (B, latent_dim) and ``fake_labels`` (B,) for the generator step.

Labels are zeros and ignored by a network that is not conditional.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from models import losses


@dataclass
class GAN:
    generator: object
    discriminator: object
    latent_dim: int
    generator_conditional: bool = False
    discriminator_conditional: bool = False
    loss: str = "bce"
    label_smoothing: float = 0.0
    n_critic: int = 1
    clip_value: float = 0.0
    lambda_gp: float = 0.0

    def generator_inputs(self, random_latent_vectors, labels):
        return [random_latent_vectors, labels] if self.generator_conditional else [random_latent_vectors]

    def discriminator_inputs(self, images, labels):
        return [images, labels] if self.discriminator_conditional else [images]

    def discriminator_loss(self, nets, real_images, real_labels, random_latent_vectors, fake_labels,
                           mixing_weights):
        generated_images = nets.generate(self.generator_inputs(random_latent_vectors, fake_labels))
        real_scores = nets.discriminate(self.discriminator_inputs(real_images, real_labels))
        fake_scores = nets.discriminate(self.discriminator_inputs(generated_images, fake_labels))
        d_loss = losses.discriminator_loss(self.loss, real_scores, fake_scores, self.label_smoothing)
        if self.lambda_gp:
            # Conditional critics see each mix with the real image's label: the mix is mostly that image.
            mixed_images = losses.interpolate(real_images, generated_images, mixing_weights)
            gradients = nets.input_gradients(mixed_images, real_labels)
            d_loss = d_loss + self.lambda_gp * losses.gradient_penalty(gradients)
        return d_loss

    def generator_loss(self, nets, random_latent_vectors, fake_labels):
        generated_images = nets.generate(self.generator_inputs(random_latent_vectors, fake_labels))
        fake_scores = nets.discriminate(self.discriminator_inputs(generated_images, fake_labels))
        return losses.generator_loss(self.loss, fake_scores)

    def train_step(self, batch, backend):
        for critic_step in range(self.n_critic):
            d_loss = backend.update_discriminator(partial(
                self.discriminator_loss,
                real_images=batch["real_images"][critic_step],
                real_labels=batch["real_labels"][critic_step],
                random_latent_vectors=batch["critic_latent_vectors"][critic_step],
                fake_labels=batch["critic_fake_labels"][critic_step],
                mixing_weights=batch["mixing_weights"][critic_step],
            ))
        g_loss = backend.update_generator(partial(
            self.generator_loss,
            random_latent_vectors=batch["random_latent_vectors"],
            fake_labels=batch["fake_labels"],
        ))
        return {"d_loss": d_loss, "g_loss": g_loss}
