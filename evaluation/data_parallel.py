"""The embedding's batches split over this process's devices, with Keras 3's ``keras.distribution``.

With the JAX backend and more than one local device, the Inception weights are replicated on every
device and each batch is split along its first axis (``DataParallel`` over a 1-D mesh); the batch
size stays the global one and is rounded up to a multiple of the device count. The mesh holds only
``jax.local_devices()``, so in a run that spans several processes each one embeds its own images.
The TensorFlow backend runs the embedding on one device: its ``predict_on_batch`` has no data-parallel
path short of a ``tf.distribute`` strategy around the whole model, which would change how it is built.
"""
from __future__ import annotations

import contextlib

import keras


def local_data_parallel() -> keras.distribution.DataParallel | None:
    """DataParallel over the local devices on JAX when there are several; None means plain one-device calls."""
    if keras.backend.backend() != "jax":
        return None
    import jax

    devices = jax.local_devices()
    if len(devices) < 2:
        return None
    # Keras names devices "platform:id"; passing names keeps the mesh to this process's own devices.
    return keras.distribution.DataParallel(devices=[f"{device.platform}:{device.id}" for device in devices])


def device_count(distribution: keras.distribution.DataParallel | None) -> int:
    return 1 if distribution is None else int(distribution.device_mesh.devices.size)


def scope(distribution: keras.distribution.DataParallel | None):
    """The distribution's scope, so variables built and batches run inside it use its mesh; else nothing."""
    return contextlib.nullcontext() if distribution is None else distribution.scope()


def split_batch(batch, distribution: keras.distribution.DataParallel | None):
    """The batch placed one slice per device along its first axis (its length a multiple of the count)."""
    if distribution is None:
        return batch
    return keras.distribution.distribute_tensor(batch, distribution.get_data_layout(batch.shape))
