"""The training bench's bare steps: the same networks, optimizers, loss and data as the trainer, stepped by hand
with no training loop around them, written once per backend, so that bench/train_speed.py can tell what the
trainer's loop costs.

Each step gathers a random batch from uint8 images put on the device once and draws its noise on the device, in
one compiled call per ``per_call`` steps (JAX: ``stateless_call`` + ``value_and_grad`` + ``stateless_apply`` in
one ``jax.jit`` with donated state, ``lax.scan`` for several steps; TensorFlow: ``tf.function`` with GradientTape
and a ``tf.while_loop`` for several steps). It does the config's loss, n_critic, gradient penalty and weight
clipping; the discriminator scores real and generated batches separately and the generator step draws fresh
noise, as the trainer's step does. It is written apart from models.backends on purpose: a reference the
project's step is measured against cannot be that step. The backends are imported when a step is built, after
bench/train_speed.py has chosen one.
"""
from __future__ import annotations

import math
import time


def bare_step_leaves_out(config: dict) -> list[str]:
    """The config's training features the bare step does not compute."""
    features = {"augmentation": bool(config["augment"].get("policy")), "R1": bool(config["r1_gamma"]),
                "LeCam": bool(config["lecam_weight"]), "the EMA generator": config["ema_kimg"] is not None,
                "top-k training": config.get("top_k_fraction", 1.0) < 1.0}
    return [name for name, used in features.items() if used]


def bare_images_per_second(config: dict, dataset, warmup: int, steps: int, per_call: int = 1) -> float:
    """The bare step's img/s, ``per_call`` steps to a compiled call (whole calls: ``steps`` and ``warmup`` are
    rounded up); on TensorFlow the faster of its XLA and its plain-graph compilation (XLA is slower on a CPU),
    so the ratio is against the best a bare step does on this machine."""
    import keras

    from models import builders

    variants = [{}] if keras.backend.backend() == "jax" else [{"jit_compile": True}, {"jit_compile": False}]
    warmup_calls, calls = math.ceil(warmup / per_call), math.ceil(steps / per_call)
    best = 0.0
    for options in variants:
        gan, generator_optimizer, discriminator_optimizer = builders.build_gan(config)
        step = {"jax": BareJaxStep, "tensorflow": BareTensorFlowStep}[keras.backend.backend()](
            gan, generator_optimizer, discriminator_optimizer, config, dataset, per_call=per_call, **options)
        step.run(warmup_calls)
        start = time.perf_counter()
        step.run(calls)
        best = max(best, calls * per_call * config["batch_size"] / (time.perf_counter() - start))
        keras.backend.clear_session()
    return best


class BareStep:
    """What both backends share: the step's sizes and losses, from the config and the GAN it built."""

    def __init__(self, gan, generator_optimizer, discriminator_optimizer, config: dict, dataset, per_call: int = 1):
        from models import builders, networks
        from models.images import OUTPUT_RANGES

        self.gan, self.generator_optimizer, self.discriminator_optimizer = (
            gan, generator_optimizer, discriminator_optimizer)
        self.batch_size, self.latent_dim, self.n_critic = config["batch_size"], config["latent_dim"], config["n_critic"]
        self.num_classes = builders.num_classes(config) or 1
        self.low, self.high = OUTPUT_RANGES[builders.output_activation(config)]
        self.images = dataset.x
        self.labels = dataset.y if networks.needs_labels(config) else None
        self.seed = config["seed"]
        self.per_call = per_call  # steps in one compiled call; more than 1 loops on the device

    def to_model_range(self, images):
        from keras import ops

        return ops.cast(images, "float32") * ((self.high - self.low) / 255.0) + self.low

    def discriminator_loss(self, real_scores, fake_scores, gradients=None):
        from models import losses

        loss = losses.discriminator_loss(self.gan.loss, real_scores, fake_scores, self.gan.label_smoothing)
        if gradients is not None:
            loss = loss + self.gan.lambda_gp * losses.gradient_penalty(gradients)
        return loss

    def generator_loss(self, fake_scores):
        from models import losses

        return losses.generator_loss(self.gan.loss, fake_scores)


def loss_scale_position(optimizer) -> int | None:
    """Where a float16 LossScaleOptimizer keeps its dynamic scale among its variables (None: no loss scaling)."""
    scale = getattr(optimizer, "dynamic_scale", None)
    if scale is None:
        return None
    return next(position for position, variable in enumerate(optimizer.variables) if variable is scale)


class BareJaxStep(BareStep):
    def __init__(self, *args, per_call: int = 1):
        super().__init__(*args, per_call=per_call)
        import jax

        generator, discriminator = self.gan.generator, self.gan.discriminator
        self.state = {
            "g_trainable": [v.value for v in generator.trainable_variables],
            "g_non_trainable": [v.value for v in generator.non_trainable_variables],
            "d_trainable": [v.value for v in discriminator.trainable_variables],
            "d_non_trainable": [v.value for v in discriminator.non_trainable_variables],
            "g_optimizer": [v.value for v in self.generator_optimizer.variables],
            "d_optimizer": [v.value for v in self.discriminator_optimizer.variables],
            "key": jax.random.PRNGKey(self.seed),
        }
        self.data = (jax.device_put(self.images),
                     jax.device_put(self.labels.astype("int32")) if self.labels is not None else None)
        self.compiled = jax.jit(self.step if per_call == 1 else self.steps, donate_argnums=0)
        self.scale_positions = {"g": loss_scale_position(self.generator_optimizer),
                                "d": loss_scale_position(self.discriminator_optimizer)}

    def scaled(self, loss, state, key: str):
        """The loss float16's loss scaling differentiates (its scale read from the traced optimizer state)."""
        position = self.scale_positions[key]
        return loss if position is None else loss * state[f"{key}_optimizer"][position]

    def run(self, calls: int) -> None:
        losses = None
        for _ in range(calls):
            self.state, losses = self.compiled(self.state, self.data)
        losses[0].block_until_ready()
        losses[1].block_until_ready()

    def steps(self, state, data):
        """``per_call`` steps in one ``lax.scan``; the losses of each."""
        import jax

        return jax.lax.scan(lambda carry, _: self.step(carry, data), state, None, length=self.per_call)

    def step(self, state, data):
        import jax
        import jax.numpy as jnp

        from models import losses

        gan, batch = self.gan, self.batch_size
        images, labels = data
        state = dict(state)

        def generate(g_trainable, g_non_trainable, z, y):
            return gan.generator.stateless_call(g_trainable, g_non_trainable, gan.generator_inputs(z, y),
                                                training=True)

        def discriminate(d_trainable, d_non_trainable, x, y):
            return gan.discriminator.stateless_call(d_trainable, d_non_trainable, gan.discriminator_inputs(x, y),
                                                    training=True)

        for _ in range(self.n_critic):
            state["key"], index_key, noise_key, label_key, mix_key = jax.random.split(state["key"], 5)
            index = jax.random.randint(index_key, (batch,), 0, images.shape[0])
            real = self.to_model_range(jnp.take(images, index, axis=0))
            real_labels = jnp.take(labels, index) if labels is not None else jnp.zeros((batch,), jnp.int32)
            z = jax.random.normal(noise_key, (batch, self.latent_dim))
            fake_labels = jax.random.randint(label_key, (batch,), 0, self.num_classes)

            def d_loss(d_trainable, g_non_trainable, d_non_trainable):
                fake, g_non_trainable = generate(state["g_trainable"], g_non_trainable, z, fake_labels)
                real_scores, d_non_trainable = discriminate(d_trainable, d_non_trainable, real, real_labels)
                fake_scores, d_non_trainable = discriminate(d_trainable, d_non_trainable, fake, fake_labels)
                gradients = None
                if gan.lambda_gp:
                    mixed = losses.interpolate(real, fake, jax.random.uniform(mix_key, (batch, 1, 1, 1)))
                    gradients = jax.grad(lambda x: jnp.sum(
                        discriminate(d_trainable, d_non_trainable, x, real_labels)[0]))(mixed)
                loss = self.discriminator_loss(real_scores, fake_scores, gradients)
                return self.scaled(loss, state, "d"), (g_non_trainable, d_non_trainable, loss)

            (_, (state["g_non_trainable"], state["d_non_trainable"], d_value)), gradients = jax.value_and_grad(
                d_loss, has_aux=True)(state["d_trainable"], state["g_non_trainable"], state["d_non_trainable"])
            state["d_trainable"], state["d_optimizer"] = self.discriminator_optimizer.stateless_apply(
                state["d_optimizer"], gradients, state["d_trainable"])
            if gan.clip_value:
                state["d_trainable"] = losses.clip_weights(state["d_trainable"], gan.clip_value)

        state["key"], noise_key, label_key = jax.random.split(state["key"], 3)
        z = jax.random.normal(noise_key, (batch, self.latent_dim))
        fake_labels = jax.random.randint(label_key, (batch,), 0, self.num_classes)

        def g_loss(g_trainable, g_non_trainable, d_non_trainable):
            fake, g_non_trainable = generate(g_trainable, g_non_trainable, z, fake_labels)
            fake_scores, d_non_trainable = discriminate(state["d_trainable"], d_non_trainable, fake, fake_labels)
            loss = self.generator_loss(fake_scores)
            return self.scaled(loss, state, "g"), (g_non_trainable, d_non_trainable, loss)

        (_, (state["g_non_trainable"], state["d_non_trainable"], g_value)), gradients = jax.value_and_grad(
            g_loss, has_aux=True)(state["g_trainable"], state["g_non_trainable"], state["d_non_trainable"])
        state["g_trainable"], state["g_optimizer"] = self.generator_optimizer.stateless_apply(
            state["g_optimizer"], gradients, state["g_trainable"])
        return state, (d_value, g_value)


class BareTensorFlowStep(BareStep):
    def __init__(self, *args, per_call: int = 1, jit_compile: bool = True):
        super().__init__(*args, per_call=per_call)
        import tensorflow as tf

        self.tf = tf
        # Eager tensors on the device, captured by the compiled function as inputs (not baked-in constants).
        self.data_images = tf.constant(self.images)
        self.data_labels = tf.constant(self.labels.astype("int32")) if self.labels is not None else None
        self.random = tf.random.Generator.from_seed(self.seed)
        self.compiled = tf.function(self.step if per_call == 1 else self.steps, jit_compile=jit_compile)

    def run(self, calls: int) -> None:
        losses = None
        for _ in range(calls):
            losses = self.compiled()
        float(losses[0]), float(losses[1])  # a read waits for every queued step

    def steps(self):
        """``per_call`` steps in one ``tf.while_loop`` (autograph turns the loop over ``tf.range`` into one); the
        last step's losses."""
        tf = self.tf
        d_value, g_value = tf.constant(0.0), tf.constant(0.0)
        for _ in tf.range(self.per_call):
            d_value, g_value = self.step()
            d_value, g_value = tf.cast(d_value, tf.float32), tf.cast(g_value, tf.float32)
        return d_value, g_value

    def step(self):
        tf, gan, batch = self.tf, self.gan, self.batch_size
        from models import losses

        generator, discriminator = gan.generator, gan.discriminator
        count = tf.shape(self.data_images, out_type=tf.int32)[0]
        d_value = None
        for _ in range(self.n_critic):
            index = self.random.uniform((batch,), 0, count, dtype=tf.int32)
            real = self.to_model_range(tf.gather(self.data_images, index))
            real_labels = (tf.gather(self.data_labels, index) if self.data_labels is not None
                           else tf.zeros((batch,), tf.int32))
            z = self.random.normal((batch, self.latent_dim))
            fake_labels = self.random.uniform((batch,), 0, self.num_classes, dtype=tf.int32)
            weights = self.random.uniform((batch, 1, 1, 1))
            with tf.GradientTape() as tape:
                fake = generator(gan.generator_inputs(z, fake_labels), training=True)
                real_scores = discriminator(gan.discriminator_inputs(real, real_labels), training=True)
                fake_scores = discriminator(gan.discriminator_inputs(fake, fake_labels), training=True)
                gradients = None
                if gan.lambda_gp:
                    mixed = losses.interpolate(real, fake, weights)
                    with tf.GradientTape() as inner:
                        inner.watch(mixed)
                        scores = discriminator(gan.discriminator_inputs(mixed, real_labels), training=True)
                    gradients = inner.gradient(scores, mixed)
                d_value = self.discriminator_loss(real_scores, fake_scores, gradients)
                scaled = self.discriminator_optimizer.scale_loss(d_value)  # float16: the dynamic loss scale
            variables = discriminator.trainable_variables
            self.discriminator_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
            if gan.clip_value:
                for weight, clipped in zip(variables, losses.clip_weights(variables, gan.clip_value)):
                    weight.assign(clipped)
        z = self.random.normal((batch, self.latent_dim))
        fake_labels = self.random.uniform((batch,), 0, self.num_classes, dtype=tf.int32)
        with tf.GradientTape() as tape:
            fake = generator(gan.generator_inputs(z, fake_labels), training=True)
            g_value = self.generator_loss(discriminator(gan.discriminator_inputs(fake, fake_labels), training=True))
            scaled = self.generator_optimizer.scale_loss(g_value)
        variables = generator.trainable_variables
        self.generator_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return d_value, g_value
