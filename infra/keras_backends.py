"""The Keras backends LogoGAN runs on, by the names KERAS_BACKEND takes.

Here, at the bottom layer, so that infra.device_check checks the same list that the config's schema, the
trainer's --backend and the benches offer (they read it through models.config.limits, which re-exports it).
"""
from __future__ import annotations

BACKENDS = ("tensorflow", "jax")
