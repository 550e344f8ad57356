"""infra.device_check computes: a convolution, a matrix product and a sum checked against NumPy, and CUDA libraries
on LD_LIBRARY_PATH that shadow the pip wheels' refused in one line (a fake wheel and a fake system CUDA folder)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from infra import device_check
from infra.errors import UserError
from tests.infra.cli_stub import PROJECT_ROOT


def fake_libraries(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"\x7fELF")
    return folder


def test_numpy_reference_is_the_convolution_matrix_product_and_sum():
    inputs = device_check.reference_inputs()
    expected = device_check.numpy_results(inputs)
    # One output pixel by hand: the 3x3 window around (row 3, column 4) of image 1, channel 2 of the kernel.
    window = inputs["images"][1, 2:5, 3:6, :].astype(np.float64)
    assert expected["conv"][1, 3, 4, 2] == pytest.approx(np.sum(window * inputs["kernel"][:, :, :, 2]))
    assert expected["conv"].shape == (2, 8, 8, 4) and expected["matmul"].shape == (64, 32)
    assert expected["sum"] == inputs["values"].sum()


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_the_backend_computes_what_numpy_does_and_a_wrong_result_is_one_line(backend):
    inputs = device_check.reference_inputs()
    expected = device_check.numpy_results(inputs)
    results = device_check.device_results(backend, inputs)
    device_check.compare(results, expected, backend, "the CPU")  # equal: no error
    results["matmul"] = results["matmul"].copy()
    results["matmul"][3, 5] += 0.5  # what a mismatched cuBLAS might return
    with pytest.raises(UserError) as raised:
        device_check.compare(results, expected, backend, "the GPU")
    message = str(raised.value)
    assert message.startswith(f"{backend} computes a wrong matmul on the GPU (off by up to 0.5 against NumPy")
    assert "pip install --force-reinstall -r requirements-gpu.txt" in message and "\n" not in message


def test_a_system_cuda_folder_on_ld_library_path_shadows_the_wheels_libraries(tmp_path):
    site = tmp_path / "site"
    wheel = fake_libraries(site / "nvidia" / "cudnn" / "lib", "libcudnn.so.9", "libcudnn_ops.so.9")
    fake_libraries(site / "nvidia" / "cublas" / "lib", "libcublas.so.12", "libcublasLt.so.12")
    system = fake_libraries(tmp_path / "cuda" / "lib64", "libcudnn.so.9", "libcublas.so.12", "libcurand.so.10")
    wheels = device_check.wheel_library_folders([str(site)])
    assert wheels == {"libcudnn": wheel, "libcublas": site / "nvidia" / "cublas" / "lib",
                      "libcublasLt": site / "nvidia" / "cublas" / "lib"}
    # libcurand has no wheel here, so only cuDNN and cuBLAS are shadowed; the wheels' own folder never is.
    path = f"{tmp_path / 'absent'}:{system}:{wheel}"
    assert device_check.shadowing_folders(path, wheels) == [(system, "libcublas.so.12"), (system, "libcudnn.so.9")]
    device_check.check_library_path(str(wheel), wheels)
    device_check.check_library_path(str(system), {})  # no wheel installed: the system CUDA is the one to use


def test_the_cli_refuses_a_shadowing_folder_in_one_line_before_loading_the_backend(tmp_path):
    site = tmp_path / "site"
    fake_libraries(site / "nvidia" / "cudnn" / "lib", "libcudnn.so.9")
    system = fake_libraries(tmp_path / "cuda" / "lib64", "libcudnn.so.9")
    env = {**os.environ, "PYTHONPATH": f"{PROJECT_ROOT}:{site}", "LD_LIBRARY_PATH": str(system)}
    result = subprocess.run([sys.executable, "-m", "infra.device_check", "--backend", "jax"], cwd=PROJECT_ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"infra.device_check: error: LD_LIBRARY_PATH holds {system}, whose libcudnn.so.9 the "
                           f"loader would pick instead of the one the pip wheel installed in "
                           f"{site / 'nvidia' / 'cudnn' / 'lib'}")
    assert "unset LD_LIBRARY_PATH (or remove that folder from it)" in line


def test_a_cuda_library_loaded_from_outside_the_wheels_is_named(tmp_path):
    wheel = fake_libraries(tmp_path / "site" / "nvidia" / "cudnn" / "lib", "libcudnn.so.9")
    wheels = {"libcudnn": wheel}
    device_check.check_loaded_libraries("jax", [str(wheel / "libcudnn.so.9")], wheels)
    with pytest.raises(UserError, match=r"^jax loaded /usr/local/cuda/lib64/libcudnn\.so\.9, not the libcudnn the "
                                        r"pip wheel installed in .*; unset LD_LIBRARY_PATH"):
        device_check.check_loaded_libraries("jax", ["/usr/local/cuda/lib64/libcudnn.so.9"], wheels)


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_the_device_name_the_benches_print_is_the_first_gpu_or_the_cpu(backend, monkeypatch):
    monkeypatch.setattr(device_check, "backend_gpus", lambda name: ["NVIDIA H200", "NVIDIA H200"] if name == backend
                        else [])
    assert device_check.device_name(backend) == ("NVIDIA H200", 2)
    other = next(name for name in device_check.BACKENDS if name != backend)
    assert device_check.device_name(other) == (f"cpu ({os.cpu_count()} cores)", 0)


def test_the_backends_are_named_once_below_models():
    from infra import keras_backends
    from models.config import limits

    assert device_check.BACKENDS is keras_backends.BACKENDS is limits.BACKENDS
    assert keras_backends.BACKENDS == ("tensorflow", "jax")
