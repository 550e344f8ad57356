"""Which devices the chosen Keras backend sees, in one line; a GPU it cannot see stops the run.

run-model.sh calls this before it trains the GPU schedule: when ``nvidia-smi`` lists a GPU but the backend
sees none (a CPU-only jaxlib or tensorflow, a CUDA wheel that does not load), training would go on, on
the CPU, for hours. Exit status 2 and one line say so instead. Only the backend asked for is imported.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections import Counter
from typing import Iterator, Sequence

from infra import cli
from infra.errors import UserError

BACKENDS = ("tensorflow", "jax")

HELP_EPILOG = """\
Prints, for example:
  Device: 1 GPU (NVIDIA H200) seen by jax
  Device: CPU (no GPU) seen by tensorflow
and exits 0. When nvidia-smi lists a GPU that the backend does not see, it prints one line naming both on
stderr and exits 2 (install the CUDA builds: .venv/bin/python -m pip install -r requirements-gpu.txt).

Example:
  python -m infra.device_check --backend jax
"""


def nvidia_smi_gpus() -> list[str]:
    """The names of the GPUs the NVIDIA driver lists; empty without a working nvidia-smi."""
    try:
        listed = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return []
    if listed.returncode != 0:
        return []
    return [line.strip() for line in listed.stdout.splitlines() if line.strip()]


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silences what the backend's C++ and Python loggers write while it looks for devices (JAX's "a CUDA-enabled
    jaxlib is not installed", TensorFlow's cuDNN and XLA start-up lines), so this command's output stays one
    line; the error line says how to see the backend's own reasons."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def backend_gpus(backend: str) -> list[str]:
    """The names of the GPUs ``backend`` can run on."""
    with quiet_stderr():
        if backend == "jax":
            import jax

            try:
                return [device.device_kind for device in jax.devices("gpu")]
            except RuntimeError:  # no GPU platform: jaxlib without its CUDA plugin, or a plugin that failed
                return []
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]


def describe(names: list[str]) -> str:
    """``1 GPU (NVIDIA H200)``, ``4 GPUs (4x NVIDIA A10G)``."""
    counts = Counter(names)
    kinds = ", ".join(name if count == 1 else f"{count}x {name}" for name, count in counts.items())
    return f"{len(names)} GPU{'s' if len(names) != 1 else ''} ({kinds})"


def device_line(backend: str, listed_by_driver: list[str], seen: list[str]) -> str:
    """The line to print; a UserError when the driver lists GPUs that the backend does not see."""
    if seen:
        return f"Device: {describe(seen)} seen by {backend}"
    if listed_by_driver:
        probe = "import jax; print(jax.devices())" if backend == "jax" else (
            "import tensorflow as tf; print(tf.config.list_physical_devices())")
        raise UserError(
            f"nvidia-smi lists {describe(listed_by_driver)} but {backend} sees no GPU, so training would run on the "
            f"CPU; install the CUDA builds (.venv/bin/python -m pip install -r requirements-gpu.txt) or see "
            f"{backend}'s reason with: .venv/bin/python -c '{probe}'"
        )
    return f"Device: CPU (no GPU) seen by {backend}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.device_check",
        description="Print the devices a Keras backend sees in one line; exit 2 when nvidia-smi lists a GPU "
        "that the backend does not see.",
        epilog=HELP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--backend", choices=BACKENDS, required=True, help="the Keras backend to ask")
    args = parser.parse_args(argv)
    print(device_line(args.backend, nvidia_smi_gpus(), backend_gpus(args.backend)))
    return 0


if __name__ == "__main__":
    cli.run(main)
