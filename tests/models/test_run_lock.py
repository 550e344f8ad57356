"""One trainer at a time writes a run folder: a second is refused in one line, and a killed one frees it."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.errors import UserError
from models import train
from models.run_folder import LOCK_FILE
from tests.models.helpers import PROJECT_ROOT, make_dataset, subprocess_env, tiny_config, write_config

# What the first of two trainers started at once holds between creating the folder and writing config.json.
HOLD_THE_LOCK = """
import sys, time
from models.run_folder import lock_run_folder
lock_run_folder(sys.argv[1])
print("locked", flush=True)
time.sleep(120)
"""


def checkpoint_step(run: Path) -> int:
    try:
        return json.loads((run / "checkpoints" / "last" / "info.json").read_text())["step"]
    except (OSError, ValueError):
        return 0


def refused(argv: list[str]) -> str:
    with pytest.raises(UserError, match="another trainer") as raised:
        train.main([*argv, "--no-progress"])
    assert "\n" not in str(raised.value)
    return str(raised.value)


@pytest.fixture
def config_path(tmp_path) -> Path:
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), log_interval=1, checkpoint_interval=2,
                         sample_interval=1000, tensorboard=False)
    return write_config(tmp_path / "c.json", config)


def test_a_second_trainer_of_a_running_run_is_refused_until_the_first_is_killed(tmp_path, config_path):
    run = tmp_path / "same"
    first = subprocess.Popen([sys.executable, "-m", "models.train", "--config", str(config_path), "--name", "same",
                              "--runs-dir", str(tmp_path), "--steps", "100000", "--no-progress"],
                             cwd=PROJECT_ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 180
        while checkpoint_step(run) < 2:
            assert first.poll() is None, first.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the first trainer never checkpointed"
            time.sleep(0.05)
        message = refused(["--resume", str(run), "--steps", "100000"])
        assert message == (f"{run.resolve()}: another trainer (pid {first.pid}) is writing this run folder; wait "
                           "until it ends (or stop it), or give another --name")
        refused(["--config", str(config_path), "--name", "same", "--runs-dir", str(tmp_path)])
        assert first.poll() is None  # the first trainer goes on
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=60)
    # The kernel dropped the killed trainer's lock: the run resumes, its metrics written once per step.
    resumed_from = checkpoint_step(run)
    assert train.main(["--resume", str(run), "--steps", str(resumed_from + 2), "--no-progress"]) == 0
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, resumed_from + 3))


def test_two_new_runs_started_at_once_with_one_name(tmp_path, config_path):
    run = tmp_path / "twins"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(run)], cwd=PROJECT_ROOT,
                              env=subprocess_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        refused(["--config", str(config_path), "--name", "twins", "--runs-dir", str(tmp_path)])
        assert sorted(path.name for path in run.iterdir()) == [LOCK_FILE]  # nothing written beside it
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert train.main(["--config", str(config_path), "--name", "twins", "--runs-dir", str(tmp_path), "--steps", "2",
                       "--no-progress"]) == 0
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
