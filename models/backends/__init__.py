"""The only backend-specific code: one gradient step for each Keras backend.

``make_train_step(gan, generator_optimizer, discriminator_optimizer, generator_ema, training_state)``
returns a callable that runs :meth:`models.gan.GAN.train_step` on one batch (``regularize=True`` adds the
lazy R1 term), compiled for the active backend, and returns its metrics as floats. ``generator_ema`` is
the EMA copy of the generator (or None), ``training_state`` a dict of name -> Keras scalar variable that the
step adapts. Its ``sync()`` writes the weights back into the Keras variables (a no-op where training
updates them in place) and must be called before saving or sampling.
"""
from __future__ import annotations

import keras


def make_train_step(gan, generator_optimizer, discriminator_optimizer, generator_ema=None, training_state=None):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from models.backends.tensorflow_step import TensorFlowTrainStep as TrainStep
    elif backend == "jax":
        from models.backends.jax_step import JaxTrainStep as TrainStep
    else:
        raise ValueError(f"Keras backend {backend!r} is not supported; use tensorflow or jax")
    return TrainStep(gan, generator_optimizer, discriminator_optimizer, generator_ema, training_state)
