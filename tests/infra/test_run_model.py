"""run-model.sh end to end: dataset pulled from S3 (SeaweedFS on loopback), training in tmux with periodic
sync, stopped mid-run, then resumed on a "new machine" from the bucket's checkpoint."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from preprocessing.dataset import save_dataset
from tests.infra.cli_stub import PROJECT_ROOT
from tests.infra.test_gpu_install import BROKEN_NVIDIA_SMI, GPU_NVIDIA_SMI, recorded, recording_venv, stub_bin
from tests.s3_server import s3_server  # noqa: F401

TINY_CONFIG = {
    "generator": {"choice": "dcgan", "width": 8},
    "discriminator": {"choice": "dcgan", "width": 8},
    "batch_size": 8, "latent_dim": 8,
    # Few writes while the periodic sync runs; the checkpoint to resume from is the one saved on SIGTERM.
    "log_interval": 10, "sample_interval": 100, "checkpoint_interval": 100000,
}  # fmt: skip


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the project (what git would commit, plus untracked sources) sharing the real .venv, so
    runs/ and data/ are the test's own."""
    copy = tmp_path / "project"
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=PROJECT_ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        source = PROJECT_ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    (copy / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    return copy


@pytest.fixture
def tiny(tmp_path) -> dict:
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG))
    dataset = tmp_path / "tiny.npz"
    save_dataset(dataset, np.random.default_rng(0).integers(0, 256, (32, 8, 8, 3), dtype=np.uint8))
    return {"config": config, "dataset": dataset}


def base_env(tmp_path: Path) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
        "TF_CPP_MIN_LOG_LEVEL": "2", "TMUX_TMPDIR": str(tmp_path),
    }  # fmt: skip


def run_model(project: Path, env: dict, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(project / "run-model.sh"), *args],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def tmux(env: dict, *args: str) -> str:
    return subprocess.run(["tmux", *args], env=env, capture_output=True, text=True, check=True).stdout.strip()


def remote_json(client, bucket: str, key: str):
    try:
        return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except client.exceptions.NoSuchKey:
        return None


def remote_keys(client, bucket: str, prefix: str) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {entry["Key"] for page in pages for entry in page.get("Contents", [])}


@pytest.mark.slow
def test_pull_train_in_tmux_sync_stop_and_resume_from_the_bucket(project, tiny, s3_server, tmp_path):  # noqa: F811
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (Debian/Ubuntu: apt-get install tmux)")
    bucket = s3_server.make_bucket("run-model-e2e")
    client = s3_server.client()
    client.upload_file(str(tiny["dataset"]), bucket, "datasets/tiny.npz")
    env = {
        **base_env(tmp_path), **s3_server.env,
        "XTRAIN": f"s3://{bucket}/datasets/tiny.npz", "RESULTS": f"s3://{bucket}/runs", "DATE": "e2e",
        "STEPS": "100000", "SYNC_MINUTES": "0.05",
    }  # fmt: skip
    status_key = "runs/tiny_e2e/status.json"

    started = run_model(project, env, "--tmux", "--config", str(tiny["config"]))
    assert started.returncode == 0, started.stderr
    assert "tmux attach -t tiny_e2e" in started.stdout
    try:
        # The periodic sync shows the training's progress in the bucket while it goes on.
        wait_until(
            lambda: (remote_json(client, bucket, status_key) or {}).get("step", 0) >= 10,
            timeout=150, what="a periodic sync of the run's status at step >= 10",
        )
        again = run_model(project, env, "--tmux", "--config", str(tiny["config"]))
        assert again.returncode == 0 and "already running" in again.stdout

        os.kill(int(tmux(env, "list-panes", "-t", "=tiny_e2e", "-F", "#{pane_pid}")), signal.SIGTERM)
        # tmux 3.3 can mark a pane dead before it has reaped the process, and then never show its exit
        # status (#{pane_dead_status} stays empty), so the status is read from what the script printed.
        wait_until(
            lambda: tmux(env, "list-panes", "-t", "=tiny_e2e", "-F", "#{pane_dead}") == "1",
            timeout=120, what="run-model.sh to stop after SIGTERM",
        )  # fmt: skip
    finally:
        pane_text = subprocess.run(["tmux", "capture-pane", "-p", "-J", "-S", "-40", "-t", "tiny_e2e"], env=env,
                                   capture_output=True, text=True).stdout
        print("tmux pane tiny_e2e:\n" + pane_text)
        subprocess.run(["tmux", "kill-server"], env=env, capture_output=True)
    # The message of the exit status 130 branch, after the final sync.
    assert pane_text.index("==> Sync runs/tiny_e2e") < pane_text.index(
        "run-model.sh: training stopped; run the same command (same --date) to resume it"
    )

    stopped = remote_json(client, bucket, status_key)
    assert stopped["state"] == "interrupted"
    assert "runs/tiny_e2e/checkpoints/last/info.json" in remote_keys(client, bucket, "runs/tiny_e2e/checkpoints/")
    assert (project / "data" / "tiny.npz").read_bytes() == tiny["dataset"].read_bytes()

    # A new machine: nothing local; the same command resumes from the bucket's checkpoint.
    shutil.rmtree(project / "runs")
    (project / "data" / "tiny.npz").unlink()
    target = stopped["step"] + 4
    resumed = run_model(project, {**env, "STEPS": str(target)}, "--config", str(tiny["config"]))
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming tiny_e2e" in resumed.stdout
    assert f"Synced to:        s3://{bucket}/runs/tiny_e2e/" in resumed.stdout

    finished = remote_json(client, bucket, status_key)
    assert (finished["state"], finished["step"]) == ("finished", target)
    assert "runs/tiny_e2e/generator.keras" in remote_keys(client, bucket, "runs/tiny_e2e/")
    metrics = client.get_object(Bucket=bucket, Key="runs/tiny_e2e/metrics.jsonl")["Body"].read().decode()
    steps = [json.loads(line)["step"] for line in metrics.splitlines() if '"d_loss"' in line]
    assert steps == sorted(set(steps)) and steps[-1] == target  # continued, never restarted from 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--config", "no_such_config"], "config 'no_such_config' not found"),
        (["--steps", "0"], "steps '0': expected a positive whole number"),
        (["--results", "http://example.invalid/runs"], "expected an S3 prefix such as s3://"),
        (["--sync-minutes", "0"], "expected a positive number of minutes"),
        (["--date", "a b"], "date tag 'a b': use letters, digits"),
        (["--bogus"], "unknown argument '--bogus'"),
        (["--backend", "torch"], "backend 'torch': expected tensorflow or jax"),
        (["--coordinator", "10.0.0.5:1234"], "needs --coordinator, --num-processes and --process-id together "
                                             "(missing: --num-processes --process-id)"),
        (["--coordinator", "10.0.0.5", "--num-processes", "2", "--process-id", "0"], "coordinator '10.0.0.5': "
                                                                                    "expected HOST:PORT"),
        (["--coordinator", "h:70000", "--num-processes", "2", "--process-id", "0"], "(port 1 to 65535)"),
        (["--coordinator", "h:1", "--num-processes", "0", "--process-id", "0"], "num-processes '0': expected a pos"),
        (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"], "process-id '2': expected a whole "
                                                                               "number from 0 to 1"),
        (["--coordinator", "[::1]:1", "--num-processes", "2", "--process-id", "1", "--backend", "tensorflow"],
         "a multi-VM run (--coordinator) needs --backend jax"),
    ],
)
def test_bad_input_is_one_line_and_starts_nothing(project, tmp_path, flags, message):
    result = run_model(project, base_env(tmp_path), *flags)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("run-model.sh: error: ") and message in lines[0]
    assert not (project / "runs").exists()


def test_help_explains_every_flag_and_its_variable(project, tmp_path):
    result = run_model(project, base_env(tmp_path), "--help")
    assert result.returncode == 0
    for flag, variable in [("--data", "XTRAIN"), ("--config", "CODE"), ("--date", "DATE"), ("--steps", "STEPS"),
                           ("--results", "RESULTS"), ("--sync-minutes", "SYNC_MINUTES"), ("--tmux", None),
                           ("--backend", "KERAS_BACKEND"), ("--coordinator", "LOGOGAN_COORDINATOR"),
                           ("--num-processes", "LOGOGAN_NUM_PROCESSES"), ("--process-id", "LOGOGAN_PROCESS_ID")]:
        assert flag in result.stdout and (variable is None or f"env {variable}" in result.stdout)
    assert "Examples:" in result.stdout


# What run-model.sh installs and which models.train command it starts, on a machine with or without a GPU: the
# project copy gets a .venv whose python records pip, models.train and S3 calls instead of running them.
@pytest.fixture
def recording(project, tmp_path) -> dict:
    (project / ".venv").unlink()
    log = tmp_path / "calls.jsonl"
    recording_venv(project / ".venv", log, modules=("pip", "models.train", "preprocessing.s3"))
    return {"project": project, "log": log}


def machine_env(tmp_path: Path, nvidia_smi: str, **variables: str) -> dict:
    env = base_env(tmp_path)
    return {**env, "PATH": f"{stub_bin(tmp_path, nvidia_smi)}:{env['PATH']}", **variables}


def test_on_a_gpu_machine_the_cuda_builds_are_installed_once_and_a_backend_without_the_gpu_stops_the_run(
    recording, tiny, tmp_path
):
    project, log = recording["project"], recording["log"]
    flags = ["--config", str(tiny["config"]), "--data", str(tiny["dataset"]), "--date", "gpu"]
    first = run_model(project, machine_env(tmp_path, GPU_NVIDIA_SMI), *flags)
    # JAX is the GPU default; this machine's jaxlib (a CPU build) does not see the GPU nvidia-smi lists.
    assert first.returncode == 2
    assert first.stderr.splitlines() == [first.stderr.strip()]
    assert first.stderr.startswith("infra.device_check: error: nvidia-smi lists 1 GPU (NVIDIA H200) but jax sees no GPU")
    assert "==> Install the CUDA builds of TensorFlow and JAX (requirements-gpu.txt)" in first.stdout
    assert [call[-2:] for call in recorded(log) if call[0] == "install"] == [
        ["--upgrade", "pip"], ["-r", "requirements.txt"], ["-r", "requirements-gpu.txt"]]  # fmt: skip

    again = run_model(project, machine_env(tmp_path, GPU_NVIDIA_SMI, KERAS_BACKEND="tensorflow"), *flags)
    assert again.returncode == 2
    assert again.stderr.startswith("infra.device_check: error: nvidia-smi lists 1 GPU (NVIDIA H200) but tensorflow")
    assert len(recorded(log)) == 3  # installed once: the stamps hold
    assert recorded(log, "models.train") == [] and not (project / "runs").exists()


@pytest.mark.parametrize(
    ("flags", "variables", "expected"),
    [
        ([], {}, ["--backend", "tensorflow"]),
        (["--backend", "jax"], {"KERAS_BACKEND": "tensorflow"}, ["--backend", "jax"]),
        (["--coordinator", "10.0.0.5:1234", "--num-processes", "2", "--process-id", "1"], {},
         ["--backend", "jax", "--coordinator", "10.0.0.5:1234", "--num-processes", "2", "--process-id", "1"]),
        ([], {"LOGOGAN_COORDINATOR": "[fd00::5]:80", "LOGOGAN_NUM_PROCESSES": "3", "LOGOGAN_PROCESS_ID": "2"},
         ["--backend", "jax", "--coordinator", "[fd00::5]:80", "--num-processes", "3", "--process-id", "2"]),
    ],
)
def test_backend_and_multi_vm_flags_reach_models_train(recording, tiny, tmp_path, flags, variables, expected):
    result = run_model(recording["project"], machine_env(tmp_path, BROKEN_NVIDIA_SMI, **variables),
                       "--config", str(tiny["config"]), "--data", str(tiny["dataset"]), "--date", "cpu", *flags)
    assert result.returncode == 0, result.stderr
    assert "Device: CPU (no working nvidia-smi); schedule: 2000 steps" in result.stdout
    [train] = recorded(recording["log"], "models.train")
    assert train == ["--config", str(tiny["config"]), "--data", str(tiny["dataset"]), "--name", "tiny_cpu",
                     "--runs-dir", "runs", *expected, "--steps", "2000"]  # fmt: skip


def test_a_resumed_run_keeps_its_backend(recording, tmp_path):
    run_dir = recording["project"] / "runs" / "logos_shapes_old"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"backend": "jax"}))
    result = run_model(recording["project"], machine_env(tmp_path, BROKEN_NVIDIA_SMI), "--date", "old", "--steps", "9")
    assert result.returncode == 0, result.stderr
    assert recorded(recording["log"], "models.train") == [
        ["--resume", "runs/logos_shapes_old", "--backend", "jax", "--steps", "9"]]  # fmt: skip


@pytest.mark.parametrize(("process_id", "pushes"), [("0", True), ("1", False)])
def test_only_process_0_of_a_multi_vm_run_syncs_to_results(recording, tiny, tmp_path, process_id, pushes):
    (recording["project"] / "runs" / "tiny_vm").mkdir(parents=True)  # as if the trainer had written it
    result = run_model(
        recording["project"], machine_env(tmp_path, BROKEN_NVIDIA_SMI, RESULTS="s3://bucket/runs"),
        "--config", str(tiny["config"]), "--data", str(tiny["dataset"]), "--date", "vm",
        "--coordinator", "10.0.0.5:1234", "--num-processes", "2", "--process-id", process_id,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # The run folder is here, so nothing is pulled; process 0 pushes it at exit, the others never.
    expected = [["push", "runs/tiny_vm", "s3://bucket/runs/tiny_vm"]] if pushes else []
    assert recorded(recording["log"], "preprocessing.s3") == expected
    assert ("Synced to:        s3://bucket/runs/tiny_vm/" in result.stdout) == pushes
    assert ("Process 1 of 2: only process 0 syncs the run to s3://bucket/runs/tiny_vm" in result.stdout) != pushes


def test_a_folder_of_images_given_as_xtrain_is_built_cached_and_trained_on(project, tiny, tmp_path):
    logos = tmp_path / "my logos"
    logos.mkdir()
    (logos / "mark.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><circle cx="12" '
                                    'cy="12" r="9" fill="#d0103a"/></svg>')
    for name, rows, columns in [("bar", slice(16, 24), slice(4, 36)), ("post", slice(4, 36), slice(16, 24)),
                                ("corner", slice(0, 20), slice(0, 20))]:
        image = np.full((40, 40, 3), 255, np.uint8)
        image[rows, columns] = (0, 90, 200)
        Image.fromarray(image).save(logos / f"{name}.png")
    env = {**base_env(tmp_path), "XTRAIN": str(logos), "STEPS": "2", "DATE": "folder"}
    result = run_model(project, env, "--config", str(tiny["config"]))
    assert result.returncode == 0, result.stderr
    cache = tmp_path / "home" / ".cache" / "logogan" / "datasets"
    [built] = [line for line in result.stderr.splitlines() if line.startswith("data: ")]
    assert built.startswith("data: built 4 images from ") and f"{logos} into {cache}/my_logos-56px-" in built
    config = json.loads((project / "runs" / "tiny_folder" / "config.json").read_text())
    assert config["data_path"] == str(logos) and config["image_shape"] == [56, 56, 3]


@pytest.fixture
def recording_with_a_gpu(project, tmp_path) -> dict:
    """As ``recording``, with infra.device_check recorded too: it passes, as on a machine whose backend sees
    the GPU that the stubbed nvidia-smi lists."""
    (project / ".venv").unlink()
    log = tmp_path / "calls.jsonl"
    recording_venv(project / ".venv", log, modules=("pip", "models.train", "preprocessing.s3", "infra.device_check"))
    return {"project": project, "log": log}


@pytest.mark.parametrize(
    ("nvidia_smi", "config_keys", "expected"),
    [
        (GPU_NVIDIA_SMI, {}, ["--set", "sample_minutes=2", "--set", "checkpoint_minutes=10", "--backend", "jax"]),
        (BROKEN_NVIDIA_SMI, {}, ["--backend", "tensorflow", "--steps", "2000"]),  # the config's step intervals
        (GPU_NVIDIA_SMI, {"checkpoint_minutes": 30}, ["--backend", "jax"]),  # the config's own spacing wins
    ],
)
def test_a_new_run_on_a_gpu_spaces_grids_and_checkpoints_by_minutes(recording_with_a_gpu, tiny, tmp_path,
                                                                     nvidia_smi, config_keys, expected):
    config = tmp_path / "spaced.json"
    config.write_text(json.dumps({**TINY_CONFIG, **config_keys}))
    result = run_model(recording_with_a_gpu["project"], machine_env(tmp_path, nvidia_smi),
                       "--config", str(config), "--data", str(tiny["dataset"]), "--date", "m")
    assert result.returncode == 0, result.stderr
    [train] = recorded(recording_with_a_gpu["log"], "models.train")
    assert train == ["--config", str(config), "--data", str(tiny["dataset"]), "--name", "spaced_m",
                     "--runs-dir", "runs", *expected]  # fmt: skip
    said = "Sample grids every 2 min, checkpoints every 10 min of training"
    assert (said in result.stdout) == ("--set" in expected)


def test_a_resumed_run_on_a_gpu_keeps_the_spacing_it_started_with(recording_with_a_gpu, tmp_path):
    run_dir = recording_with_a_gpu["project"] / "runs" / "logos_shapes_old"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"backend": "jax"}))
    result = run_model(recording_with_a_gpu["project"], machine_env(tmp_path, GPU_NVIDIA_SMI), "--date", "old")
    assert result.returncode == 0, result.stderr
    assert recorded(recording_with_a_gpu["log"], "models.train") == [["--resume", "runs/logos_shapes_old",
                                                                      "--backend", "jax"]]
