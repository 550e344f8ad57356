"""The embedding's batches split over this process's devices, with Keras 3's ``keras.distribution``.

Where the backend can split a batch over this process's devices (``models.backends.local_device_names``: JAX
with more than one local device), the Inception weights are replicated on every device and each batch is split
along its first axis (``DataParallel`` over a 1-D mesh); the batch size stays the global one and is rounded up to
a multiple of the device count. The mesh holds only this process's devices, so in a run that spans several
processes each one embeds its own images. Elsewhere the embedding runs on one device.
"""
from __future__ import annotations

import contextlib

import keras


def local_data_parallel() -> keras.distribution.DataParallel | None:
    """DataParallel over this process's devices when the backend can split a batch over several; None means plain
    one-device calls."""
    from models.backends import local_device_names

    devices = local_device_names()
    return keras.distribution.DataParallel(devices=devices) if len(devices) > 1 else None


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
