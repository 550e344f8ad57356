"""Runs that survive: Ctrl-C saves and exits 130, SIGKILL loses nothing that resume cannot redo exactly."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from models import train
from tests.models.helpers import PROJECT_ROOT, make_dataset, subprocess_env, tiny_config, write_config

STEPS = 40


def checkpoint_step(run: Path) -> int:
    try:
        return json.loads((run / "checkpoints" / "last" / "info.json").read_text())["step"]
    except (OSError, ValueError):
        return 0


def interrupt_this_process_after(run: Path, after_step: int) -> threading.Thread:
    """Press Ctrl-C (SIGINT) on this process once the training in it has checkpointed ``after_step``."""
    def watch():
        while checkpoint_step(run) < after_step:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def start_and_signal(argv: list[str], run: Path, after_step: int, signal_number: int, **env) -> subprocess.Popen:
    """Start models.train, wait until it has checkpointed ``after_step``, then send ``signal_number``."""
    process = subprocess.Popen([sys.executable, "-m", "models.train", *argv, "--no-progress"], cwd=PROJECT_ROOT,
                               env=subprocess_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while checkpoint_step(run) < after_step:
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "training never reached the checkpoint"
        time.sleep(0.02)
    process.send_signal(signal_number)
    process.wait(timeout=120)
    return process


def generator_weights(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "checkpoints" / "last" / "variables.npz") as archive:
        return {name: archive[name] for name in archive.files if not name.startswith("discriminator_optimizer")}


@pytest.mark.parametrize("steps_per_call", [1, 3])
def test_ctrl_c_then_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, steps_per_call):
    data = make_dataset(tmp_path / "squares.npz")
    # Dropout (seeded per layer) and batch norm (moving statistics) are state a resume has to bring back.
    # Three steps per call: the stops fall inside calls, and the resumed run groups its steps differently.
    config = tiny_config(data, checkpoint_interval=5, log_interval=5, sample_interval=20, tensorboard=False,
                         steps_per_call=steps_per_call)
    config["discriminator"]["dropout"] = 0.3
    config_path = write_config(tmp_path / "c.json", config)
    common = ["--runs-dir", str(tmp_path), "--steps", str(STEPS)]
    run = tmp_path / "interrupted"

    watcher = interrupt_this_process_after(run, 5)
    assert train.main(["--config", str(config_path), "--name", "interrupted", *common, "--no-progress"]) == 130
    watcher.join(timeout=10)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and "--resume" in status["message"]
    assert checkpoint_step(run) == status["step"] >= 5

    killed = start_and_signal(["--resume", str(run)], run, status["step"] + 5, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert checkpoint_step(run) < STEPS

    assert train.main(["--resume", str(run), "--no-progress"]) == 0
    assert train.main(["--config", str(config_path), "--name", "straight", *common, "--no-progress"]) == 0

    resumed, straight = generator_weights(run), generator_weights(tmp_path / "straight")
    assert checkpoint_step(run) == checkpoint_step(tmp_path / "straight") == STEPS
    assert resumed.keys() == straight.keys()
    for name in straight:
        np.testing.assert_allclose(resumed[name], straight[name], atol=1e-5, rtol=0, err_msg=name)
    steps_logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps_logged == list(range(5, STEPS + 1, 5))  # lines of redone steps are not duplicated
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert json.loads((run / "config.json").read_text())["backend"] == keras.backend.backend()


# A process that trains, is stopped once it has logged a step, and is sent more stops while it saves the
# checkpoint that the first one asked for.
STOPPED_WHILE_SAVING = """
import os, signal, sys, threading, time
from pathlib import Path
from models import train, training_loop

run = Path(sys.argv[1])

def stop_once_a_step_is_logged():
    while not (run / "metrics.jsonl").is_file() or not (run / "metrics.jsonl").read_text().strip():
        time.sleep(0.02)
    os.kill(os.getpid(), signal.SIGTERM)

save = training_loop.Trainer._save_checkpoint

def save_while_more_stops_arrive(self, step, slot="last"):
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
        os.kill(os.getpid(), number)
        time.sleep(0.05)  # each one handled on its own, not merged with the next
    save(self, step, slot)

training_loop.Trainer._save_checkpoint = save_while_more_stops_arrive
threading.Thread(target=stop_once_a_step_is_logged, daemon=True).start()
sys.exit(train.main(sys.argv[2:]))
"""


def test_stops_that_arrive_during_the_checkpoint_do_not_cut_it(tmp_path):
    # A server killed outright sends its job SIGTERM once for each of its threads that ends (PR_SET_PDEATHSIG
    # fires on every re-parenting), so a first stop may be followed by more while its checkpoint is written.
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), log_interval=1, checkpoint_interval=1000,
                         sample_interval=1000, tensorboard=False)
    config_path = write_config(tmp_path / "c.json", config)
    run = tmp_path / "stopped"
    stopped = subprocess.run(
        [sys.executable, "-c", STOPPED_WHILE_SAVING, str(run), "--config", str(config_path), "--name", "stopped",
         "--runs-dir", str(tmp_path), "--steps", "100000", "--no-progress"],
        cwd=PROJECT_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and status["message"].startswith("stopped by SIGTERM")
    assert checkpoint_step(run) == status["step"] >= 1
    assert "Traceback" not in stopped.stderr
