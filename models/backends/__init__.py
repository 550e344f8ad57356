"""The only backend-specific code: the compiled training call for each Keras backend, and :func:`fused`.

``make_train_step(gan, generator_optimizer, discriminator_optimizer, generator_ema, training_state,
step_inputs, dataset)`` returns a callable ``step(first_step, count, regularize_first, per_step)`` that runs
``count`` consecutive steps of :meth:`models.gan.GAN.train_step` in one compiled call and returns each
metric as a (count,) array left on the device (reading it is the caller's choice, so nothing waits for
the device between calls). ``regularize_first`` adds the lazy R1 term to the call's first step.

- ``generator_ema``: the EMA copy of the generator, or None; ``training_state``: name -> Keras scalar
  variable that the step adapts.
- ``step_inputs``: a :class:`models.step_inputs.StepInputs`, which builds each step's batch on the device
  with the backend's stateless generator (``step.random``).
- ``dataset``: {"images": uint8 (N, H, W, C), "labels": int32 (N,)} to keep on the device, with
  ``per_step = {"indices": (count, n_critic, B)}``; or None, with ``per_step`` holding the gathered
  ``images`` (count, n_critic, B, H, W, C) and ``labels`` (count, n_critic, B).

``devices``: the devices to train on data-parallel (:func:`training_devices`), None for the default one.

``step.sync()`` writes the weights back into the Keras variables (a no-op where training updates them in
place) and must be called before saving or sampling.
"""
from __future__ import annotations

import keras


def _module():
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from models.backends import tensorflow_step as module
    elif backend == "jax":
        from models.backends import jax_step as module
    else:
        raise ValueError(f"Keras backend {backend!r} is not supported; use tensorflow or jax")
    return module


def make_train_step(gan, generator_optimizer, discriminator_optimizer, generator_ema, training_state,
                    step_inputs, dataset, devices=None):
    return _module().TrainStep(gan, generator_optimizer, discriminator_optimizer, generator_ema, training_state,
                               step_inputs, dataset, devices)


def fused(function):
    """``function`` (tensors in, tensors out) compiled into fused kernels where the backend would otherwise run
    each op on its own: a long elementwise chain over a large tensor then reads and writes memory once, not once
    per op. TensorFlow compiles it with XLA (on CPU too, where the training step itself is not); JAX's jit
    already fuses the whole step, so it comes back unchanged."""
    return _module().fused(function)


def compiled_inference(model):
    """``model`` in inference mode as one compiled call, ``call(inputs, training=False)``, reading the model's
    current weights at each call (no retrace when they change): for sample grids, whose op-by-op run would stop
    the training between calls for longer than the grid's compute."""
    return _module().compiled_inference(model)


def training_devices(requested):
    """The devices a run trains on for the config's ``devices`` ("all" or a count); a one-line UserError when
    they are not there (or, on TensorFlow, when more than one is asked for)."""
    return _module().training_devices(requested)


def describe_devices(devices) -> str:
    """E.g. "4 devices (cpu)", or "8 devices (gpu) in 2 processes"."""
    return _module().describe_devices(devices)


def start_distributed(coordinator: str, num_processes: int, process_id: int, heartbeat_seconds: int) -> None:
    """Join a run of several processes (several VMs); before any computation."""
    _module().start_distributed(coordinator, num_processes, process_id, heartbeat_seconds)


def process_index() -> int:
    return _module().process_index()


def process_count() -> int:
    return _module().process_count()


def is_lost_process_error(error: Exception) -> bool:
    """Whether ``error`` is the runtime's report that another process of the run has gone."""
    return _module().is_lost_process_error(error)


def share_from_first_process(values: list):
    """Every process gets process 0's ``values`` (a list of NumPy arrays), so all start from one checkpoint."""
    return _module().share_from_first_process(values)


def device_memory_bytes() -> int | None:
    """Memory of the device training runs on, where the backend reports it (None: unknown, or a CPU)."""
    return _module().device_memory_bytes()


def keep_compiled_programs() -> None:
    """Before the first compilation: on JAX, keep compiled programs on disk for the next run (see
    :func:`models.backends.jax_step.keep_compiled_programs`); nothing on TensorFlow."""
    _module().keep_compiled_programs()


def accelerator_present() -> bool:
    """Whether the backend trains on a GPU or TPU rather than the CPU."""
    return _module().accelerator_present()


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and Keras; on TensorFlow also ask for deterministic kernels."""
    _module().seed_everything(seed, deterministic)
