"""Which devices the chosen Keras backend sees and whether they compute right, in one line; else one line naming
the fix, exit status 2.

run-model.sh and infra/remote-install.sh call this before a GPU trains: when ``nvidia-smi`` lists a GPU but the
backend sees none (a CPU-only jaxlib or tensorflow, a CUDA wheel that does not load), training would go on, on
the CPU, for hours. Seeing the GPU is not enough: a folder on ``LD_LIBRARY_PATH`` holding a system CUDA's cuDNN or
cuBLAS (a Deep Learning image sets one) shadows the libraries the pip wheels bring, and the first step then fails
or runs slow. So the check also refuses such a folder, runs a small convolution, matrix product and sum on the
device, compares them with NumPy's on the CPU, and names the versions (and CUDA library files) it loaded. Only the
backend asked for is imported.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from infra import cli
from infra.errors import UserError
from infra.keras_backends import BACKENDS

HELP_EPILOG = """\
Prints, for example:
  Device: 1 GPU (NVIDIA H200) seen by jax; conv, matmul and sum match NumPy; jax 0.4.35, jaxlib 0.4.35, ...
  Device: CPU (no GPU) seen by tensorflow; conv, matmul and sum match NumPy; tensorflow 2.18.0, ...
and exits 0. Else one line on stderr naming the fix, exit status 2, when:
  - nvidia-smi lists a GPU that the backend does not see (install the CUDA builds:
    .venv/bin/python -m pip install -r requirements-gpu.txt);
  - a folder on LD_LIBRARY_PATH holds a CUDA library (libcudnn, libcublas, ...) that an installed nvidia-* wheel
    also brings, or the computation loaded one from outside the wheels (remove that folder from LD_LIBRARY_PATH);
  - the backend fails to load or to compute, or its results differ from NumPy's.

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


def device_name(backend: str) -> tuple[str, int]:
    """What ``backend`` computes on, e.g. 'NVIDIA H100 80GB HBM3' (its first GPU) or 'cpu (2 cores)', and how many
    GPUs it sees: the device named in the benches' output."""
    gpus = backend_gpus(backend)
    return (gpus[0] if gpus else f"cpu ({os.cpu_count()} cores)"), len(gpus)


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


# The CUDA libraries the nvidia-* pip wheels bring (site-packages/nvidia/<name>/lib), by file name prefix.
CUDA_LIBRARIES = ("libcudnn", "libcublas", "libcublasLt", "libcufft", "libcusparse", "libcusolver", "libcurand",
                  "libnccl", "libnvJitLink", "libcudart", "libcupti", "libnvrtc")
_LIBRARY = re.compile(r"(lib[A-Za-z]+)\.so(\.\d+)*$")
# Integer-valued inputs: every product and sum is exact in float32 and in the GPUs' TF32, so a difference is a bug.
TOLERANCE = 1e-3
UNSET = "unset LD_LIBRARY_PATH (or remove that folder from it)"


def wheel_library_folders(paths: Sequence[str] | None = None) -> dict[str, Path]:
    """The CUDA libraries installed by nvidia-* wheels: library name (``libcudnn``) -> its wheel's folder."""
    found = {}
    for entry in sys.path if paths is None else paths:
        for folder in sorted(Path(entry or ".").glob("nvidia/*/lib")):
            for library in folder.glob("lib*.so*"):
                match = _LIBRARY.match(library.name)
                if match and match.group(1) in CUDA_LIBRARIES:
                    found.setdefault(match.group(1), folder)
    return found


def shadowing_folders(ld_library_path: str, wheels: dict[str, Path]) -> list[tuple[Path, str]]:
    """(folder on ``ld_library_path``, library file) pairs that the dynamic loader would pick before a wheel's."""
    found = []
    for entry in filter(None, ld_library_path.split(":")):
        folder = Path(entry)
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            match = _LIBRARY.match(name)
            if match and match.group(1) in wheels and folder.resolve() != wheels[match.group(1)].resolve():
                found.append((folder, name))
    return found


def check_library_path(ld_library_path: str, wheels: dict[str, Path]) -> None:
    shadowing = shadowing_folders(ld_library_path, wheels)
    if shadowing:
        folder, name = shadowing[0]
        library = _LIBRARY.match(name).group(1)
        others = sorted({other for _, other in shadowing} - {name})
        raise UserError(
            f"LD_LIBRARY_PATH holds {folder}, whose {name}{' (and ' + ', '.join(others[:3]) + ')' if others else ''} "
            f"the loader would pick instead of the one the pip wheel installed in {wheels[library]}, so the GPU "
            f"would fail or run slow; {UNSET}, e.g. env -u LD_LIBRARY_PATH ./run-model.sh ...")


def loaded_cuda_libraries() -> list[str]:
    """The CUDA library files this process has loaded (from /proc/self/maps; empty where there is none)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    files = {line.split()[-1] for line in maps.splitlines() if "/" in line}
    return sorted(path for path in files if (m := _LIBRARY.match(Path(path).name)) and m.group(1) in CUDA_LIBRARIES)


def check_loaded_libraries(backend: str, loaded: list[str], wheels: dict[str, Path]) -> None:
    for path in loaded:
        library = _LIBRARY.match(Path(path).name).group(1)
        if library in wheels and Path(path).resolve().parent != wheels[library].resolve():
            raise UserError(f"{backend} loaded {path}, not the {library} the pip wheel installed in "
                            f"{wheels[library]}; {UNSET}, e.g. env -u LD_LIBRARY_PATH ./run-model.sh ...")


def reference_inputs() -> dict[str, np.ndarray]:
    """Small integer-valued inputs for the three checks."""
    rng = np.random.default_rng(0)
    return {"images": rng.integers(-2, 3, (2, 8, 8, 3)).astype(np.float32),
            "kernel": rng.integers(-2, 3, (3, 3, 3, 4)).astype(np.float32),
            "left": rng.integers(-2, 3, (64, 48)).astype(np.float32),
            "right": rng.integers(-2, 3, (48, 32)).astype(np.float32),
            "values": rng.integers(-2, 3, (4096,)).astype(np.float32)}


def numpy_results(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the device must compute: NumPy on the CPU, in float64."""
    images, kernel = inputs["images"].astype(np.float64), inputs["kernel"].astype(np.float64)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
    height, width = images.shape[1:3]
    conv = np.zeros((images.shape[0], height, width, kernel.shape[-1]))
    for row in range(3):
        for column in range(3):
            conv += np.einsum("bhwc,cd->bhwd", padded[:, row:row + height, column:column + width], kernel[row, column])
    return {"conv": conv, "matmul": inputs["left"].astype(np.float64) @ inputs["right"],
            "sum": np.asarray(inputs["values"].astype(np.float64).sum())}


def device_results(backend: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same three results computed by ``backend`` on its default device (the GPU when it sees one)."""
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        on_device = {name: jax.device_put(value) for name, value in inputs.items()}
        conv = jax.lax.conv_general_dilated(on_device["images"], on_device["kernel"], (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
        results = {"conv": conv, "matmul": on_device["left"] @ on_device["right"], "sum": jnp.sum(on_device["values"])}
        return {name: np.asarray(value) for name, value in results.items()}
    import tensorflow as tf

    device = "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"
    with tf.device(device):
        results = {"conv": tf.nn.conv2d(inputs["images"], inputs["kernel"], 1, "SAME"),
                   "matmul": tf.matmul(inputs["left"], inputs["right"]), "sum": tf.reduce_sum(inputs["values"])}
        return {name: value.numpy() for name, value in results.items()}


def compare(results: dict[str, np.ndarray], expected: dict[str, np.ndarray], backend: str, where: str) -> None:
    """A UserError naming the first result that differs from NumPy's."""
    for name, want in expected.items():
        got = np.asarray(results[name], np.float64)
        if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=TOLERANCE):
            difference = (f"shape {got.shape}, not {want.shape}" if got.shape != want.shape
                          else f"off by up to {np.abs(got - want).max():.3g}")
            raise UserError(f"{backend} computes a wrong {name} on {where} ({difference} against NumPy on the CPU): "
                            f"its CUDA libraries do not match its build; reinstall them (.venv/bin/python -m pip "
                            f"install --force-reinstall -r requirements-gpu.txt) and {UNSET}")


def versions(backend: str) -> str:
    """``jax 0.4.35, jaxlib 0.4.35, ...``: the installed distributions the backend loads, then the CUDA library
    files this process loaded."""
    names = (["jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda12-pjrt"] if backend == "jax" else ["tensorflow"])
    names += ["keras", "nvidia-cudnn-cu12", "nvidia-cublas-cu12"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    loaded = [Path(path).name for path in loaded_cuda_libraries()]
    return ", ".join(found + ([f"loaded {' '.join(loaded)}"] if loaded else []))


def compute_check(backend: str, seen: list[str]) -> str:
    """Run the three checks on the device; the summary for the device line, or a one-line UserError."""
    where = "the GPU" if seen else "the CPU"
    inputs = reference_inputs()
    try:
        with quiet_stderr():
            results = device_results(backend, inputs)
    except Exception as error:  # a library that does not load or a kernel that does not run: the runtime's words
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise UserError(f"{backend} failed to compute on {where} ({first}); reinstall its CUDA builds (.venv/bin/"
                        f"python -m pip install --force-reinstall -r requirements-gpu.txt) and {UNSET}") from None
    compare(results, numpy_results(inputs), backend, where)
    check_loaded_libraries(backend, loaded_cuda_libraries(), wheel_library_folders())
    return "conv, matmul and sum match NumPy"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.device_check",
        description="Print the devices a Keras backend sees, whether a convolution, a matrix product and a sum "
        "on them match NumPy's, and the versions loaded, in one line; exit 2 with one line naming the fix when "
        "nvidia-smi lists a GPU the backend does not see, LD_LIBRARY_PATH shadows the pip wheels' CUDA "
        "libraries, or the results differ.",
        epilog=HELP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--backend", choices=BACKENDS, required=True, help="the Keras backend to ask")
    args = parser.parse_args(argv)
    check_library_path(os.environ.get("LD_LIBRARY_PATH", ""), wheel_library_folders())
    try:
        seen = backend_gpus(args.backend)
    except ImportError as error:
        raise UserError(f"{args.backend} does not load ({str(error).splitlines()[0][:200]}); install it: "
                        f".venv/bin/python -m pip install -r requirements.txt") from None
    line = device_line(args.backend, nvidia_smi_gpus(), seen)
    print(f"{line}; {compute_check(args.backend, seen)}; {versions(args.backend)}")
    return 0


if __name__ == "__main__":
    cli.run(main)
