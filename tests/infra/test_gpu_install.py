"""The GPU install: requirements-gpu.txt agrees with requirements.txt, infra/remote-install.sh installs it once on
a machine whose nvidia-smi lists a GPU (a stand-in nvidia-smi and a .venv whose python records pip calls), and
infra.device_check stops, for real, when the backend does not see the GPU that nvidia-smi lists (this machine
has no GPU and no CUDA build, which is exactly that case)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.device_check import describe, device_line
from infra.errors import UserError
from tests.infra.cli_stub import PROJECT_ROOT

INSTALL_FILES = ["infra/setup.sh", "infra/remote-install.sh", "requirements.txt", "requirements-gpu.txt"]
# Answers `nvidia-smi -L` and `nvidia-smi --query-gpu=name --format=csv,noheader` as a one-GPU machine does.
GPU_NVIDIA_SMI = """#!/bin/sh
case "$*" in
  -L) echo "GPU 0: NVIDIA H200 (UUID: GPU-5e1c0f7a-0000-0000-0000-000000000000)" ;;
  *) echo "NVIDIA H200" ;;
esac
"""
# A machine whose driver does not answer (or that has no NVIDIA card at all).
BROKEN_NVIDIA_SMI = "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'\nexit 9\n"


def write_executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def stub_bin(tmp_path: Path, nvidia_smi: str) -> Path:
    """A folder for the front of PATH: nvidia-smi as given, lspci listing no NVIDIA card, and a sudo that
    records instead of installing system packages."""
    bin_dir = tmp_path / "bin"
    write_executable(bin_dir / "nvidia-smi", nvidia_smi)
    write_executable(bin_dir / "lspci", "#!/bin/sh\necho '00:00.0 Host bridge: Intel Corporation 440FX'\n")
    write_executable(bin_dir / "sudo", f"#!/bin/sh\necho \"$*\" >> {tmp_path / 'sudo.log'}\n")
    return bin_dir


def recording_venv(venv: Path, log: Path, modules: tuple[str, ...] = ("pip",)) -> None:
    """A .venv whose python records each `python -m MODULE ARGS...` of ``modules`` as a JSON line [MODULE, *ARGS]
    instead of running it, and runs everything else with the project's Python (so ensure_venv finds it working
    and keeps it)."""
    write_executable(
        venv / "bin" / "python",
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "args = sys.argv[1:]\n"
        f"if args[:1] == ['-m'] and len(args) > 1 and args[1] in {list(modules)!r}:\n"
        f"    with open({str(log)!r}, 'a') as out:\n"
        "        out.write(json.dumps(args[1:]) + '\\n')\n"
        "    sys.exit(0)\n"
        f"os.execv({sys.executable!r}, [{sys.executable!r}, *args])\n",
    )


def recorded(log: Path, module: str = "pip") -> list[list[str]]:
    """The arguments of each recorded `python -m MODULE` call, in order."""
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [call[1:] for call in calls if call[0] == module]


@pytest.fixture
def install_copy(tmp_path) -> dict:
    """The install scripts and requirements files in a folder of their own, with a pip-recording .venv."""
    root = tmp_path / "project"
    for name in INSTALL_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, root / name)
    log = tmp_path / "pip.jsonl"
    recording_venv(root / ".venv", log, modules=("pip", "infra.device_check"))
    return {"root": root, "log": log}


def remote_install(root: Path, bin_dir: Path) -> subprocess.CompletedProcess:
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(root.parent), "LANG": "C.UTF-8"}
    return subprocess.run([str(root / "infra" / "remote-install.sh")], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def pinned(path: Path) -> dict[str, str]:
    """name (with its extras) -> version, for each `name==version` line."""
    pins = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==(\S+)", line.strip())
        if match:
            pins[match[1].lower()] = match[2]
    return pins


def test_gpu_requirements_add_the_cuda_builds_at_the_versions_requirements_txt_pins():
    base = pinned(PROJECT_ROOT / "requirements.txt")
    gpu_text = (PROJECT_ROOT / "requirements-gpu.txt").read_text()
    gpu = pinned(PROJECT_ROOT / "requirements-gpu.txt")
    assert "-r requirements.txt" in gpu_text.splitlines()
    assert gpu["tensorflow[and-cuda]"] == base["tensorflow"]
    assert gpu["jax[cuda12]"] == base["jax"] == base["jaxlib"]
    # Only CUDA wheels are added; nothing of requirements.txt is pinned a second time, perhaps differently.
    added = set(gpu) - {"tensorflow[and-cuda]", "jax[cuda12]"}
    assert added and all(name.startswith("nvidia-") and name.endswith("-cu12") for name in added)


def test_remote_install_on_a_gpu_machine_installs_the_cuda_builds_once(install_copy, tmp_path):
    root, log = install_copy["root"], install_copy["log"]
    bin_dir = stub_bin(tmp_path, GPU_NVIDIA_SMI)

    first = remote_install(root, bin_dir)
    assert first.returncode == 0, first.stderr
    assert "==> Install the CUDA builds of TensorFlow and JAX (requirements-gpu.txt)" in first.stdout
    installs = [call for call in recorded(log) if call[0] == "install"]
    assert [call[-2:] for call in installs] == [["--upgrade", "pip"], ["-r", "requirements.txt"],
                                                ["-r", "requirements-gpu.txt"]]  # fmt: skip

    # Then each backend is checked on the GPU: seen, computing as NumPy does, its CUDA libraries not shadowed.
    assert recorded(log, "infra.device_check") == [["--backend", "jax"], ["--backend", "tensorflow"]]
    assert "==> Check that jax computes on the GPU (infra.device_check)" in first.stdout

    again = remote_install(root, bin_dir)
    assert again.returncode == 0, again.stderr
    assert len(recorded(log)) == len(installs)  # the stamps hold: nothing installed twice

    # A changed GPU file is installed again, once; requirements.txt, unchanged, is not.
    gpu_file = root / "requirements-gpu.txt"
    gpu_file.write_text(gpu_file.read_text() + "# changed\n")
    assert remote_install(root, bin_dir).returncode == 0
    assert recorded(log)[len(installs):] == [["install", "--quiet", "-r", "requirements-gpu.txt"]]


def test_remote_install_without_a_working_gpu_installs_no_cuda_build(install_copy, tmp_path):
    result = remote_install(install_copy["root"], stub_bin(tmp_path, BROKEN_NVIDIA_SMI))
    assert result.returncode == 0, result.stderr
    assert "CUDA" not in result.stdout
    assert recorded(install_copy["log"], "infra.device_check") == []  # no GPU to check
    assert [call[-2:] for call in recorded(install_copy["log"]) if call[0] == "install"] == [
        ["--upgrade", "pip"], ["-r", "requirements.txt"]]  # fmt: skip


def device_check(backend: str, bin_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TF_CPP_MIN_LOG_LEVEL": "0"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return subprocess.run([sys.executable, "-m", "infra.device_check", "--backend", backend], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_device_check_stops_in_one_line_when_the_backend_misses_the_gpu_nvidia_smi_lists(backend, tmp_path):
    result = device_check(backend, stub_bin(tmp_path, GPU_NVIDIA_SMI))
    assert result.returncode == 2 and result.stdout == ""
    # One line, even with TensorFlow's full C++ logging on and JAX's "no CUDA-enabled jaxlib" warning.
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(
        f"infra.device_check: error: nvidia-smi lists 1 GPU (NVIDIA H200) but {backend} sees no GPU"
    )
    assert "pip install -r requirements-gpu.txt" in result.stderr


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_device_check_without_a_gpu_names_the_cpu(backend, tmp_path):
    result = device_check(backend, stub_bin(tmp_path, BROKEN_NVIDIA_SMI))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith(f"Device: CPU (no GPU) seen by {backend}; conv, matmul and sum match NumPy; ")
    assert result.stdout.count("\n") == 1 and "keras 3." in result.stdout


def test_device_check_for_jax_never_imports_tensorflow():
    # (The other way round cannot be checked: `import tensorflow` itself loads Keras, and Keras loads jax.)
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from infra import device_check; device_check.backend_gpus('jax'); "
         "print('jax' in sys.modules, 'tensorflow' in sys.modules)"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert probe.stdout.split() == ["True", "False"], probe.stderr


def test_device_line_names_the_gpus_the_backend_sees():
    assert device_line("jax", ["NVIDIA H200"], ["NVIDIA H200"]) == "Device: 1 GPU (NVIDIA H200) seen by jax"
    assert describe(["NVIDIA A10G"] * 4) == "4 GPUs (4x NVIDIA A10G)"
    assert describe(["NVIDIA A100", "NVIDIA T4"]) == "2 GPUs (NVIDIA A100, NVIDIA T4)"
    with pytest.raises(UserError, match=r"nvidia-smi lists 2 GPUs \(2x NVIDIA L4\) but tensorflow sees no GPU"):
        device_line("tensorflow", ["NVIDIA L4", "NVIDIA L4"], [])
