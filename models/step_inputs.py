"""What a training step reads besides the weights: its real images, noise, labels and augmentation draws.

Step ``s`` (counting from 0) draws everything random from the run's seed and ``s`` alone. Its real batches
come from the permutation of epoch ``e`` seeded by (seed, e): :class:`DataOrder`, on the host, turns a range
of steps into image indices (a few bytes per image). Everything else is made on the device inside the
compiled step by :class:`StepInputs`: the images are gathered from the dataset already there (or arrive
gathered, when the dataset stays on the host), scaled to the generator's range, and the noise, labels,
mixing weights and augmentation draws come from stateless randomness keyed by (seed, purpose, step). With
the networks' own random state inside the checkpoint, a resumed run repeats exactly the steps an
uninterrupted one would have taken, and nothing random crosses from the host per step.
"""
from __future__ import annotations

import math

import numpy as np
from keras import ops

from models import augment
from models.images import OUTPUT_RANGES

# Purposes of the random streams derived from the seed; distinct so no two streams coincide.
DATA_ORDER, STEP_NOISE, SAMPLE_NOISE, EVAL_NOISE, AUGMENT_NOISE, EMA_STATISTICS_NOISE = range(6)
# The draws of one step, each from its own sub-stream, so adding a draw never changes the others.
CRITIC_NOISE, CRITIC_LABELS, MIXING, GENERATOR_NOISE, GENERATOR_LABELS = range(5)
AUGMENT_REAL, AUGMENT_FAKE, AUGMENT_GENERATED = range(3)


class DataOrder:
    """The dataset indices of every discriminator batch: epoch ``e`` visits a permutation seeded by (seed, e)."""

    def __init__(self, image_count: int, batch_size: int, n_critic: int, seed: int):
        self.image_count, self.batch_size, self.n_critic, self.seed = image_count, batch_size, n_critic, seed
        self.batches_per_epoch = max(image_count // batch_size, 1)
        self._order_epoch, self._order = None, None

    def steps_for_epochs(self, epochs: int) -> int:
        return math.ceil(epochs * self.batches_per_epoch / self.n_critic)

    def _batch_indices(self, batch_number: int) -> np.ndarray:
        epoch, position = divmod(batch_number, self.batches_per_epoch)
        if epoch != self._order_epoch:
            order = np.random.default_rng([self.seed, DATA_ORDER, epoch]).permutation(self.image_count)
            # Fewer images than a batch: repeat the shuffled images to fill it.
            self._order = np.resize(order, max(len(order), self.batch_size))
            self._order_epoch = epoch
        return self._order[position * self.batch_size:(position + 1) * self.batch_size]

    def indices(self, first_step: int, count: int) -> np.ndarray:
        """(count, n_critic, batch_size) int32: the images of steps first_step .. first_step + count - 1."""
        first_batch = first_step * self.n_critic
        batches = [self._batch_indices(first_batch + number) for number in range(count * self.n_critic)]
        return np.stack(batches).astype(np.int32).reshape(count, self.n_critic, self.batch_size)


class StepInputs:
    """Builds a step's batch (the dict :meth:`models.gan.GAN.train_step` takes) on the device.

    ``random`` is the backend's stateless generator (see :mod:`models.backends`): ``key(seed, purpose)``,
    ``fold(key, value)``, ``normal``, ``uniform`` and ``integers``.
    """

    def __init__(self, config: dict, num_classes: int | None, output_activation: str):
        self.batch_size = config["batch_size"]
        self.n_critic = config["n_critic"]
        self.latent_dim = config["latent_dim"]
        self.seed = config["seed"]
        self.num_classes = num_classes or 1
        # Clusters found by the trainer (data_clusters) are unequal: the generator's labels follow their shares,
        # so it learns the data's mix of them, not an equal one. None: classes drawn uniformly.
        shares = config.get("class_shares")
        self.label_bounds = (np.cumsum(shares)[:-1] / np.sum(shares)).astype(np.float32) if shares else None
        self.augment_uniforms = augment.uniforms_per_image(config["augment"]["policy"])
        self.ema_kimg, self.ema_rampup = config["ema_kimg"], config["ema_rampup"]
        self.output_activation = output_activation

    @staticmethod
    def batch_axis(name: str) -> int | None:
        """The batch axis of a batch entry (what data-parallel training splits): 1 behind the n_critic axis,
        0 for the generator step's draws, None for the scalar EMA weight."""
        if name == "ema_beta":
            return None
        return 0 if name in ("random_latent_vectors", "fake_labels", "augment_generated") else 1

    def gather(self, dataset, step_inputs):
        """One step's real images (n, B, H, W, C) uint8 and labels (n, B): gathered on the device from the
        dataset by their indices, or as they came when the host gathered them."""
        if "indices" in step_inputs:
            indices = step_inputs["indices"]
            return ops.take(dataset["images"], indices, axis=0), ops.take(dataset["labels"], indices, axis=0)
        return step_inputs["images"], step_inputs["labels"]

    def real_images(self, images_uint8):
        """uint8 images -> float32 in the range the generator's last activation produces."""
        low, high = OUTPUT_RANGES[self.output_activation]
        return ops.cast(images_uint8, "float32") * ((high - low) / 255.0) + low

    def ema_beta(self, step):
        """How much of the EMA generator step ``step`` keeps: half of it every ema_kimg thousand images,
        the half-life ramped up with the images seen (StyleGAN2-ADA). Works on ints and on device scalars."""
        half_life_images = self.ema_kimg * 1000.0
        if self.ema_rampup is not None:
            seen = (ops.cast(step, "float32") + 1.0) * (self.batch_size * self.ema_rampup)
            half_life_images = ops.minimum(half_life_images, seen)
        return ops.power(0.5, self.batch_size / ops.maximum(half_life_images, 1e-8))

    def _fake_labels(self, random, key, shape):
        """The classes the generator draws: uniform, or in the clusters' shares (the bin a uniform falls in)."""
        if self.label_bounds is None:
            return random.integers(key, shape, self.num_classes)
        uniforms = random.uniform(key, shape)
        return ops.sum(ops.cast(ops.expand_dims(uniforms, -1) >= self.label_bounds, "int32"), axis=-1)

    def batch(self, random, step, real_images_uint8, real_labels) -> dict:
        """The batch of step ``step`` (a device scalar); real images (n, B, H, W, C) uint8, labels (n, B)."""
        critic, single = (self.n_critic, self.batch_size), (self.batch_size,)
        noise = random.fold(random.key(self.seed, STEP_NOISE), step)
        batch = {
            "real_images": self.real_images(real_images_uint8),
            "real_labels": ops.cast(real_labels, "int32"),
            "critic_latent_vectors": random.normal(random.fold(noise, CRITIC_NOISE), (*critic, self.latent_dim)),
            "critic_fake_labels": self._fake_labels(random, random.fold(noise, CRITIC_LABELS), critic),
            "mixing_weights": random.uniform(random.fold(noise, MIXING), (*critic, 1, 1, 1)),
            "random_latent_vectors": random.normal(random.fold(noise, GENERATOR_NOISE), (*single, self.latent_dim)),
            "fake_labels": self._fake_labels(random, random.fold(noise, GENERATOR_LABELS), single),
        }
        if self.augment_uniforms:
            # A stream of its own, so turning augmentation on leaves every other draw of the step unchanged.
            draws = random.fold(random.key(self.seed, AUGMENT_NOISE), step)
            per_image = (self.augment_uniforms,)
            batch["augment_real"] = random.uniform(random.fold(draws, AUGMENT_REAL), (*critic, *per_image))
            batch["augment_fake"] = random.uniform(random.fold(draws, AUGMENT_FAKE), (*critic, *per_image))
            batch["augment_generated"] = random.uniform(random.fold(draws, AUGMENT_GENERATED), (*single, *per_image))
        if self.ema_kimg is not None:
            batch["ema_beta"] = self.ema_beta(step)
        return batch
