"""Data-parallel training on JAX: several devices of one machine, and several processes, as one run.

The devices are CPU devices that XLA splits the host into (``--xla_force_host_platform_device_count``); the
processes talk over 127.0.0.1 with JAX's distributed runtime and Gloo collectives."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from infra import cli
from models import builders, train
from tests.models.helpers import PROJECT_ROOT, make_dataset, run_module, subprocess_env, tiny_config, write_config
from tests.models.test_resume import checkpoint_step, start_and_signal
from tests.models.test_small_data_training import checkpoint_arrays

pytestmark = pytest.mark.slow
STEPS = 6


def devices_env(count: int) -> dict:
    return {"KERAS_BACKEND": "jax", "XLA_FLAGS": f"--xla_force_host_platform_device_count={count}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_process(config: Path, runs: Path, name: str, process_id: int, port: int, steps: int) -> subprocess.Popen:
    argv = ["--config", str(config), "--name", name, "--runs-dir", str(runs), "--steps", str(steps),
            "--no-progress", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
            "--process-id", str(process_id), "--heartbeat-seconds", "10"]
    # A session of its own, so that killing it kills the training child of models.train's supervisor too.
    return subprocess.Popen([sys.executable, "-m", "models.train", *argv], cwd=PROJECT_ROOT,
                            env=subprocess_env(**devices_env(2)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line.lower() and not line.startswith("[Gloo]")]


def assert_same_weights(first: Path, second: Path, tolerance: float = 2e-4) -> None:
    expected, actual = checkpoint_arrays(first), checkpoint_arrays(second)
    assert expected.keys() == actual.keys()
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], atol=tolerance, rtol=0, err_msg=name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same run on one device and on four: checkpoint every 3 steps, batch 8 (2 images per device)."""
    folder = tmp_path_factory.mktemp("devices")
    config = tiny_config(make_dataset(folder / "squares.npz"), checkpoint_interval=3, tensorboard=False)
    config["discriminator"]["dropout"] = 0.3  # per-layer seeded randomness must not depend on the split
    config_path = write_config(folder / "c.json", config)
    results = {}
    for name, devices in (("one", "1"), ("four", "all")):
        results[name] = run_module("models.train", "--config", str(config_path), "--name", name, "--runs-dir",
                                   str(folder), "--steps", str(STEPS), "--no-progress", "--set", f"devices={devices}",
                                   **devices_env(4))
        assert results[name].returncode == 0, results[name].stderr[-3000:]
    return folder, config_path, results


def test_four_devices_train_the_weights_of_one_and_say_so(runs):
    folder, config_path, results = runs
    config = json.loads((folder / "four" / "config.json").read_text())
    assert config["trained_on"] == "4 devices (cpu)" and "training on 4 devices (cpu), jax" in results["four"].stderr
    assert json.loads((folder / "one" / "config.json").read_text())["trained_on"] == "1 device (cpu)"
    # Batch norm's statistics are those of the global batch of 8: per-device statistics of 2 images each
    # would move the moving means and variances (part of the checkpoint) far from the one-device run's.
    generator = builders.build_generator(config)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in generator.layers)
    assert_same_weights(folder / "one", folder / "four")


def test_a_four_device_run_killed_and_resumed_matches_the_uninterrupted_one(runs):
    folder, config_path, _ = runs
    run = folder / "killed"
    argv = ["--config", str(config_path), "--name", "killed", "--runs-dir", str(folder), "--steps", str(STEPS)]
    killed = start_and_signal(argv, run, 3, signal.SIGKILL, **devices_env(4))
    assert killed.returncode == -signal.SIGKILL and checkpoint_step(run) < STEPS
    resumed = run_module("models.train", "--resume", str(run), "--no-progress", **devices_env(4))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert checkpoint_step(run) == STEPS
    assert_same_weights(folder / "four", run, tolerance=1e-5)


def test_two_processes_of_two_devices_train_one_run(runs):
    folder, config_path, _ = runs
    port = free_port()
    processes = [start_process(config_path, folder, "together", process_id, port, STEPS) for process_id in (0, 1)]
    outcomes = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outcomes[0][1][-2000:] + outcomes[1][1][-2000:]
    assert all("training on 4 devices (cpu) in 2 processes, jax" in stderr for _, stderr in outcomes)
    # Process 0 wrote the run folder; its weights are those of one process with four devices.
    assert json.loads((folder / "together" / "status.json").read_text())["state"] == "finished"
    assert_same_weights(folder / "four", folder / "together")


@pytest.mark.parametrize("killed", [1, 0])
def test_a_killed_process_ends_the_other_with_one_line_and_the_run_resumes(runs, killed):
    folder, config_path, _ = runs
    run = folder / f"together_killed_{killed}"
    port = free_port()
    processes = [start_process(config_path, folder, run.name, process_id, port, 100_000) for process_id in (0, 1)]
    deadline = time.monotonic() + 240
    while checkpoint_step(run) < 3:
        assert processes[0].poll() is None, processes[0].communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the two processes never checkpointed"
        time.sleep(0.1)
    os.killpg(processes[killed].pid, signal.SIGKILL)
    started = time.monotonic()
    survivor = processes[1 - killed]
    _, stderr = survivor.communicate(timeout=60)
    processes[killed].wait()
    # Measured: at once when the next all-reduce fails, else after the heartbeat timeout (10 s here).
    assert time.monotonic() - started < 25
    assert survivor.returncode == 1
    lines = error_lines(stderr)
    assert len(lines) == 1 and "another process of this run stopped" in lines[0], stderr[-2000:]
    assert "Traceback" not in stderr and "Check failure" not in stderr
    # One process with four devices carries on from the last checkpoint.
    last = checkpoint_step(run)
    resumed = run_module("models.train", "--resume", str(run), "--steps", str(last + 2), "--no-progress",
                         **devices_env(4))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert checkpoint_step(run) == last + 2


def run_cli(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        cli.run(train.main, argv)
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--coordinator", "127.0.0.1:1234"], "go together"),
    (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"], "allowed: HOST:PORT"),
    (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"], "allowed: 0 to 1"),
    (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "0", "--name", "x", "--backend", "tensorflow"],
     "JAX backend only"),
    (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "0"], "same --name"),
])
def test_bad_process_flags_get_one_line(tmp_path, capsys, flags, message):
    config = write_config(tmp_path / "c.json", tiny_config(make_dataset(tmp_path / "squares.npz")))
    code, err = run_cli(["--config", str(config), "--runs-dir", str(tmp_path), *flags], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_tensorflow_refuses_more_than_one_device_in_one_line(tmp_path, capsys):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the TensorFlow backend's refusal")
    config = write_config(tmp_path / "c.json", tiny_config(make_dataset(tmp_path / "squares.npz"), devices=2))
    code, err = run_cli(["--config", str(config), "--runs-dir", str(tmp_path), "--name", "tf"], capsys)
    assert code == 2 and "--backend jax" in err and len(err.strip().splitlines()) == 1, err


def test_a_batch_that_does_not_split_over_the_devices_gets_one_line(tmp_path):
    config = write_config(tmp_path / "c.json", tiny_config(make_dataset(tmp_path / "squares.npz"), batch_size=6))
    result = run_module("models.train", "--config", str(config), "--runs-dir", str(tmp_path), "--name", "odd",
                        "--steps", "1", **devices_env(4))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("models.train")]
    assert lines == ["models.train: error: batch_size = 6: must split evenly over the 4 devices this run trains on; "
                     "allowed: a multiple of 4, or fewer devices"], result.stderr[-2000:]
