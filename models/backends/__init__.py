"""The only backend-specific code: each Keras backend's module, and the running one's members by name.

The interface is declared in :mod:`models.backends.interface`: :class:`~models.backends.interface.Backend`
(the compiled training call and the process's runtime), which models.backends.tensorflow_step and
models.backends.jax_step implement, and :class:`~models.backends.interface.TrainStep`, what their
``make_train_step`` returns. ``from models.backends import make_train_step`` (or any other member of Backend)
gives the member of the backend this process runs on; Keras picks that backend once per process.
"""
from __future__ import annotations

from models.backends.interface import BACKEND_MEMBERS, Backend


def backend() -> Backend:
    """The module of the Keras backend this process runs on."""
    import keras

    name = keras.backend.backend()
    if name == "tensorflow":
        from models.backends import tensorflow_step as module
    elif name == "jax":
        from models.backends import jax_step as module
    else:
        raise ValueError(f"Keras backend {name!r} is not supported; use tensorflow or jax")
    return module


def __getattr__(name: str):
    if name in BACKEND_MEMBERS:
        return getattr(backend(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *BACKEND_MEMBERS})
