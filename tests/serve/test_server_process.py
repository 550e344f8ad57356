"""The real ``python -m models.serve`` process: stopping it stops its training job with a checkpoint, a
job never outlives it (not even when the server is killed outright), and bad flags are one line."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from models.run_folder import CHECKPOINTS_DIR, read_status
from tests.serve.conftest import PROJECT_ROOT, start_server, tiny_config, trainer_env, wait_for

STARTUP_TIMEOUT_S = 60
TRAINING_TIMEOUT_S = 240
JOB = "long"


def trainer_pids(runs: Path) -> list[int]:
    """Processes training a job of the server over ``runs`` (their command names its .jobs folder)."""
    marker = str(runs.resolve() / ".jobs").encode()
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def alive(pid: int) -> bool:
    try:
        return not (Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z")  # a zombie is gone
    except OSError:
        return False


@pytest.fixture
def server_with_a_job(tmp_path, data_root):
    """A server process over an empty runs folder, training a long job that has taken a few steps."""
    runs = tmp_path / "runs"
    runs.mkdir()
    log = tmp_path / "server.log"
    server, url = start_server(runs, data_root, log)
    try:
        session = requests.Session()
        session.trust_env = False
        posted = session.post(f"{url}/api/jobs?name={JOB}", json=tiny_config("tiny.npz", steps=100_000), timeout=30)
        assert posted.status_code == 202, posted.text
        wait_for(lambda: read_status(runs / JOB)[0].get("step", 0) >= 2, TRAINING_TIMEOUT_S, "the job to train")
        (trainer,) = trainer_pids(runs)
        yield server, trainer, runs, log
    finally:
        for pid in [server.pid, *trainer_pids(runs)]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        server.wait(timeout=30)


def assert_stopped_with_a_checkpoint(trainer: int, runs: Path) -> None:
    wait_for(lambda: not alive(trainer), 120, "the trainer to stop")
    status, problem = read_status(runs / JOB)
    trainer_log = runs / ".jobs" / f"{JOB}.log"
    assert problem is None and status["state"] == "interrupted", (status, trainer_log.read_text()[-3000:])
    assert 2 <= status["step"] < 100_000
    assert (runs / JOB / CHECKPOINTS_DIR / "last").is_dir()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_server_stops_its_job_with_a_checkpoint(server_with_a_job, stop):
    server, trainer, runs, log = server_with_a_job
    server.send_signal(stop)
    assert server.wait(timeout=150) == 130
    assert not alive(trainer)  # stopped before the server exited, not after
    assert_stopped_with_a_checkpoint(trainer, runs)
    text = log.read_text()
    assert text.rstrip().endswith("models.serve: stopped") and "Traceback" not in text


def test_a_killed_servers_job_stops_with_a_checkpoint_too(server_with_a_job):
    server, trainer, runs, _ = server_with_a_job
    server.kill()
    server.wait(timeout=30)
    assert_stopped_with_a_checkpoint(trainer, runs)


@pytest.mark.parametrize(("flags", "words"), [
    (["--data-root", "/nonexistent"], "--data-root /nonexistent: no such folder"),
    (["--port", "70000"], "--port 70000 is not a TCP port"),
    (["--colour"], "unrecognized arguments: --colour"),
])
def test_bad_flags_are_one_line_and_exit_status_2(runs_dir, flags, words):
    refused = subprocess.run([sys.executable, "-m", "models.serve", "--runs", str(runs_dir), *flags],
                             cwd=PROJECT_ROOT, env=trainer_env(), capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert refused.stderr.startswith("models.serve: error: ") and words in refused.stderr
    assert refused.stderr.count("\n") == 1
