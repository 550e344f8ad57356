"""JAX's process runtime, apart from the training step: the devices a run trains on, a run of several processes
(jax.distributed), the persistent compilation cache and seeding. models.backends.jax_step takes these into the
:class:`models.backends.interface.Backend` it is."""
from __future__ import annotations

import os
import sys

import jax
import keras
import numpy as np

from infra.errors import UserError
from infra.user_cache import user_cache_dir

# --- devices ---


def training_devices(requested):
    # Every process's devices: in a run of several processes the mesh spans them all.
    available = jax.devices()
    if requested == "all":
        return available
    if requested > len(available) or jax.process_count() > 1:
        where = f"{len(available)} device(s) ({jax.default_backend()})"
        raise UserError(f"devices = {requested}: this run sees {where}; allowed: all"
                        + ("" if jax.process_count() > 1 else f", or 1 to {len(available)}"))
    return available[:requested]


def local_device_names() -> list[str]:
    # Local, not jax.devices(): in a run of several processes each one embeds its own images.
    return [f"{device.platform}:{device.id}" for device in jax.local_devices()]


def describe_devices(devices) -> str:
    if devices is None:
        devices = jax.devices()[:1]
    text = f"{len(devices)} device{'s' if len(devices) != 1 else ''} ({devices[0].platform})"
    return text + (f" in {jax.process_count()} processes" if jax.process_count() > 1 else "")


def accelerator_present() -> bool:
    return jax.default_backend() != "cpu"


def device_memory_bytes() -> int | None:
    """The memory of the first local device, or None where JAX does not say (a CPU: the host's memory)."""
    stats = jax.local_devices()[0].memory_stats()
    return stats.get("bytes_limit") if stats else None


# --- several processes ---


def start_distributed(coordinator: str, num_processes: int, process_id: int, heartbeat_seconds: int) -> None:
    # jax.distributed directly, not keras.distribution.initialize (which calls it), for its heartbeat timeout:
    # a process that dies is noticed by the others within that time instead of never. Nothing may ask JAX for
    # its devices before this, so the CPU collectives (over TCP, for CPU-only runs) are chosen blind; GPUs use
    # NCCL whatever this says.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes, process_id,
                               heartbeat_timeout_seconds=heartbeat_seconds,
                               initialization_timeout=max(heartbeat_seconds, 60))


def process_index() -> int:
    return jax.process_index()


def process_count() -> int:
    return jax.process_count()


def is_lost_process_error(error: Exception) -> bool:
    return isinstance(error, jax.errors.JaxRuntimeError)


def share_from_first_process(values: list) -> list:
    if jax.process_count() == 1:
        return values
    from jax.experimental import multihost_utils

    return [np.asarray(value) for value in multihost_utils.broadcast_one_to_all(values)]


# --- the compilation cache ---


def _compilation_cache_settings() -> dict[str, tuple[str, object]]:
    """JAX's own settings for its persistent compilation cache, with LogoGAN's values."""
    return {
        "JAX_COMPILATION_CACHE_DIR": ("jax_compilation_cache_dir", str(user_cache_dir("jax"))),
        "JAX_COMPILATION_CACHE_MAX_SIZE": ("jax_compilation_cache_max_size", 2 << 30),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": ("jax_persistent_cache_min_compile_time_secs", 0.0),
    }


def keep_compiled_programs() -> None:
    """Keep compiled programs in JAX's persistent compilation cache, jax in the user cache folder
    (infra.user_cache: ~/.cache/logogan/jax) unless $JAX_COMPILATION_CACHE_DIR names another folder (empty: no
    cache). A --resume, or a new run of the same networks and batch size, then loads its programs instead of
    compiling them again (docs/speed.md, "JAX's compilation cache"). Every program is kept, not only those over
    JAX's default second of compilation: the many small ones add up to most of the time saved. The cache is
    bounded (2 GiB, least recently used out first), and a bounded cache is one JAX locks while it reads or
    writes, so runs side by side share it safely."""
    for setting, (option, value) in _compilation_cache_settings().items():
        if setting not in os.environ:  # where the user set one, it wins
            jax.config.update(option, value)


# --- seeding ---


def seed_everything(seed: int, deterministic: bool) -> None:
    """JAX is deterministic by construction (explicit keys), so ``deterministic`` changes nothing here.

    keras.utils.set_random_seed also seeds TensorFlow when it can import it, and Keras's saving imports it again
    to recognise TensorFlow objects (when generator.keras is written); a JAX run has none, and the import takes
    seconds and a share of the GPU's memory. Keras offers no public switch for this: it asks its lazy
    ``module_utils.tensorflow`` whether TensorFlow is importable and caches the answer in ``_available``, so that
    answer is set to False here. The public ways around it do worse: seeding Python and NumPy by hand would skip
    what only set_random_seed does (record Keras's global seed, which keras.distribution reads, and reset the
    global SeedGenerator that keras.random draws from when given no seed), and hiding the module
    (sys.modules["tensorflow"] = None) would also break whatever imports TensorFlow later in the process."""
    if "tensorflow" not in sys.modules:
        from keras.src.utils import module_utils

        module_utils.tensorflow._available = False
    keras.utils.set_random_seed(seed)
