"""The GAN: a generator, a discriminator and the losses that set them against each other.

Written once with keras.ops. How gradients are taken and weights updated is the one thing that differs
between backends; that lives in :mod:`models.backends`, which hands :meth:`GAN.train_step` a ``backend``
object with ``update_discriminator(loss_fn)``, ``update_generator(loss_fn)`` and
``update_generator_ema(beta)``. Each ``loss_fn(nets)`` returns ``(loss, aux)`` (``aux`` a dict of scalars)
and gets ``nets`` with ``generate(inputs)``, ``discriminate(inputs)`` and ``input_gradients(images, labels)``
(the gradient of the discriminator's scores with respect to its input images, for the gradient penalty and R1).
With an auxiliary classifier (``class_loss_weight``) the discriminator's output holds the score, then class
logits (one per class, or with ``class_loss_type`` "adc" one per class for real images then one per class
for generated ones), and with a self-supervised discriminator (``reconstruction_weight``) its redrawing of
the input image follows, flattened; :meth:`GAN.scores` is how a backend takes the score alone.

All randomness of a step arrives in its batch (made on the device from the run's seed and the step
number by :mod:`models.step_inputs`), so a step is a pure function of the weights, the training state and
the batch: that is what makes resume exact. A batch is a dict of arrays (``n`` = n_critic, ``B`` = batch
size, ``K`` = uniforms per image of the augmentation policy):

- ``real_images`` (n, B, H, W, C) in the generator's output range, ``real_labels`` (n, B) int32;
- ``critic_latent_vectors`` (n, B, latent_dim), ``critic_fake_labels`` (n, B), ``mixing_weights``
  (n, B, 1, 1, 1) U(0, 1) for the gradient penalty;
- ``random_latent_vectors`` (B, latent_dim) and ``fake_labels`` (B,) for the generator step;
- with augmentation: ``augment_real`` and ``augment_fake`` (n, B, K), ``augment_generated`` (B, K);
- with an EMA generator: ``ema_beta`` (), the weight the average keeps this step.

The training state (:meth:`GAN.initial_state`) holds what the step itself adapts: the adaptive
augmentation probability and LeCam's moving averages of the discriminator's scores. Labels are zeros and
ignored by a network that is not conditional.

Under mixed precision the networks compute in bfloat16 or float16; their images and scores are cast to
float32 here, so augmentation, losses and penalties are float32 arithmetic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

from keras import ops

from models import augment, losses


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
    batch_size: int = 64
    value_range: tuple = (-1.0, 1.0)
    augment_options: dict = field(default_factory=dict)
    r1_gamma: float = 0.0
    r1_interval: int = 1
    lecam_weight: float = 0.0
    lecam_decay: float = 0.99
    ema: bool = False
    class_loss_weight: float = 0.0
    class_loss_type: str = "ac"
    reconstruction_weight: float = 0.0
    reconstruction_shape: tuple | None = None
    top_k_fraction: float = 1.0

    # --- what the step adapts, and what the host reads of it ---

    @property
    def augment_policy(self) -> tuple:
        return tuple(self.augment_options.get("policy", ()))

    @property
    def adaptive_augment(self) -> bool:
        return bool(self.augment_policy) and bool(self.augment_options.get("adaptive"))

    def initial_state(self) -> dict[str, float]:
        """The training state's starting values (empty when nothing adapts; names are checkpoint keys)."""
        state = {}
        if self.adaptive_augment:
            state["augment_probability"] = float(self.augment_options["probability"])
        if self.lecam_weight:
            state.update(lecam_real=0.0, lecam_fake=0.0)
        return state

    def metric_names(self) -> list[str]:
        """The names of the metrics :meth:`train_step` returns, in order."""
        names = ["d_loss", "g_loss"]
        if self.adaptive_augment:
            names += ["augment_probability", "real_sign"]
        if self.reconstruction_weight:
            names.append("reconstruction")
        return names

    def generator_inputs(self, random_latent_vectors, labels):
        return [random_latent_vectors, labels] if self.generator_conditional else [random_latent_vectors]

    def discriminator_inputs(self, images, labels):
        return [images, labels] if self.discriminator_conditional else [images]

    def scores(self, outputs):
        """The discriminator's scores (B, 1) from its outputs (class logits and a reconstruction may follow)."""
        return outputs[:, :1] if self.class_loss_weight or self.reconstruction_weight else outputs

    def _augment(self, images, uniforms, probability):
        if not self.augment_policy:
            return images
        return augment.augment(images, uniforms, probability, self.augment_policy, self.augment_options,
                               self.value_range)

    def _probability(self, state):
        return state.get("augment_probability", self.augment_options.get("probability", 1.0))

    # --- losses ---

    @staticmethod
    def _generate(nets, inputs):
        return ops.cast(nets.generate(inputs), "float32")

    def _discriminate(self, nets, inputs):
        """(scores (B, 1), class logits (B, classes) or None without the auxiliary classifier, reconstructions
        (B, h, w, C) or None without the decoder), float32."""
        outputs = ops.cast(nets.discriminate(inputs), "float32")
        reconstructions = None
        if self.reconstruction_weight:
            pixel_values = math.prod(self.reconstruction_shape)
            reconstructions = ops.reshape(outputs[:, -pixel_values:], (-1, *self.reconstruction_shape))
            outputs = outputs[:, :-pixel_values]
        return self.scores(outputs), (outputs[:, 1:] if self.class_loss_weight else None), reconstructions

    def discriminator_loss(self, nets, state, regularize, real_images, real_labels, random_latent_vectors,
                           fake_labels, mixing_weights, augment_real=None, augment_fake=None):
        probability = self._probability(state)
        generated_images = self._generate(nets, self.generator_inputs(random_latent_vectors, fake_labels))
        # Everything the discriminator sees is augmented, real and generated alike, so nothing leaks.
        real_images = self._augment(real_images, augment_real, probability)
        generated_images = self._augment(generated_images, augment_fake, probability)
        real_scores, real_class_logits, reconstructions = self._discriminate(
            nets, self.discriminator_inputs(real_images, real_labels))
        fake_scores, fake_class_logits, _ = self._discriminate(nets, self.discriminator_inputs(generated_images,
                                                                                                fake_labels))
        d_loss = losses.discriminator_loss(self.loss, real_scores, fake_scores, self.label_smoothing)
        aux = {}
        if self.reconstruction_weight:
            # Real images only, as FastGAN: redrawing generated ones would teach the discriminator their features.
            aux["reconstruction"] = losses.reconstruction_loss(reconstructions, real_images)
            d_loss = d_loss + self.reconstruction_weight * aux["reconstruction"]
        if self.class_loss_weight:
            d_loss = d_loss + self.class_loss_weight * losses.discriminator_class_loss(
                self.class_loss_type, real_class_logits, real_labels, fake_class_logits, fake_labels)
        if self.lambda_gp:
            # Conditional critics see each mix with the real image's label: the mix is mostly that image.
            mixed_images = losses.interpolate(real_images, generated_images, mixing_weights)
            gradients = nets.input_gradients(mixed_images, real_labels)
            d_loss = d_loss + self.lambda_gp * losses.gradient_penalty(gradients)
        if self.lecam_weight:
            d_loss = d_loss + self.lecam_weight * losses.lecam_regularizer(
                real_scores, fake_scores, state["lecam_real"], state["lecam_fake"])
        if regularize and self.r1_gamma:
            # Lazy R1: every r1_interval-th step, weighted by the interval so its average strength is r1_gamma.
            gradients = nets.input_gradients(real_images, real_labels)
            d_loss = d_loss + (0.5 * self.r1_gamma * self.r1_interval) * losses.r1_penalty(gradients)
        aux.update(real_score=ops.mean(real_scores), fake_score=ops.mean(fake_scores),
                   real_sign=ops.mean(ops.sign(real_scores)))
        return d_loss, aux

    def generator_loss(self, nets, state, random_latent_vectors, fake_labels, augment_generated=None):
        generated_images = self._generate(nets, self.generator_inputs(random_latent_vectors, fake_labels))
        generated_images = self._augment(generated_images, augment_generated, self._probability(state))
        fake_scores, fake_class_logits, _ = self._discriminate(nets, self.discriminator_inputs(generated_images,
                                                                                                fake_labels))
        if self.top_k_fraction < 1.0:
            fake_scores = losses.top_k_scores(fake_scores, math.ceil(self.top_k_fraction * self.batch_size))
        g_loss = losses.generator_loss(self.loss, fake_scores)
        if self.class_loss_weight:
            g_loss = g_loss + self.class_loss_weight * losses.generator_class_loss(
                self.class_loss_type, fake_class_logits, fake_labels)
        return g_loss, {}

    # --- one step ---

    def train_step(self, batch, backend, state, regularize=False):
        """n_critic discriminator updates, one generator update, the EMA and the state; returns (metrics, state)."""
        critic_aux = []
        for critic_step in range(self.n_critic):
            d_loss, aux = backend.update_discriminator(partial(
                self.discriminator_loss,
                state=state,
                regularize=regularize and critic_step == 0,
                real_images=batch["real_images"][critic_step],
                real_labels=batch["real_labels"][critic_step],
                random_latent_vectors=batch["critic_latent_vectors"][critic_step],
                fake_labels=batch["critic_fake_labels"][critic_step],
                mixing_weights=batch["mixing_weights"][critic_step],
                **_augment_inputs(batch, ("augment_real", "augment_fake"), critic_step),
            ))
            critic_aux.append(aux)
        g_loss, _ = backend.update_generator(partial(
            self.generator_loss,
            state=state,
            random_latent_vectors=batch["random_latent_vectors"],
            fake_labels=batch["fake_labels"],
            **_augment_inputs(batch, ("augment_generated",)),
        ))
        if self.ema:
            backend.update_generator_ema(batch["ema_beta"])
        state, metrics = self._next_state(state, critic_aux), {"d_loss": d_loss, "g_loss": g_loss}
        if self.adaptive_augment:
            metrics.update(augment_probability=state["augment_probability"],
                           real_sign=_mean([aux["real_sign"] for aux in critic_aux]))
        if self.reconstruction_weight:
            metrics["reconstruction"] = _mean([aux["reconstruction"] for aux in critic_aux])
        return metrics, state

    def _next_state(self, state, critic_aux):
        state = dict(state)
        if self.adaptive_augment:
            state["augment_probability"] = augment.adjust_probability(
                state["augment_probability"], _mean([aux["real_sign"] for aux in critic_aux]),
                self.batch_size * self.n_critic, self.augment_options)
        if self.lecam_weight:
            for name, key in (("lecam_real", "real_score"), ("lecam_fake", "fake_score")):
                state[name] = (self.lecam_decay * state[name]
                               + (1.0 - self.lecam_decay) * _mean([aux[key] for aux in critic_aux]))
        return state


def _augment_inputs(batch, names, critic_step=None):
    return {name: batch[name] if critic_step is None else batch[name][critic_step]
            for name in names if name in batch}


def _mean(values):
    return values[0] if len(values) == 1 else ops.mean(ops.stack(values))
