"""Runs that fail say so: divergence names a checkpoint that is all finite and what to change; a full disk, a
backend error or labels without a class leave status.json at failed with the one-line reason."""
from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import numpy as np
import pytest

from infra.errors import UserError
from models import checkpoints as checkpoints_module
from models import config as configs
from models import train, training_loop
from preprocessing.dataset import Dataset, load_dataset
from tests.models.helpers import CLASS_NAMES, make_dataset, tiny_config, write_config

NAMED_CHECKPOINT = re.compile(r"the last checkpoint whose every variable is finite is (\S+) \(step (\d+)\)")
# "after step 8, 2 of 76 variables are not finite (...)" or "d_loss is nan at step 8 (...)"; layer names in the
# parentheses are numbered by how many models the process has built, so they are left out.
DIVERGED_AT = re.compile(r"training diverged: (after step \d+, \d+ of \d+|.* at step \d+)")
LOWER_RATES = "--set generator.optimizer.learning_rate=1e+07 --set discriminator.optimizer.learning_rate=1e+07"


def with_learning_rate(rate: float) -> list[str]:
    return [f"--set={role}.optimizer.learning_rate={rate}" for role in ("generator", "discriminator")]


def status(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())


def non_finite(checkpoint: Path) -> list[str]:
    with np.load(checkpoint / "variables.npz") as archive:
        return [name for name in archive.files if not np.isfinite(archive[name]).all()]


def diverge(argv: list[str]) -> str:
    with pytest.raises(UserError, match="training diverged") as raised:
        train.main([*argv, "--no-progress"])
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_a_diverged_run_names_a_finite_checkpoint_and_writes_none_that_is_not(tmp_path):
    # Learning rate 1e8: the weights pass float32's range within three steps. The losses stay finite, so only
    # the check of the weights themselves, before each checkpoint, finds the divergence.
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), checkpoint_interval=1, log_interval=1,
                         sample_interval=100, keep_checkpoints=20, tensorboard=False, steps_per_call=1)
    config_path = write_config(tmp_path / "c.json", config)
    run = tmp_path / "hot"
    message = diverge(["--config", str(config_path), "--name", "hot", "--runs-dir", str(tmp_path), "--steps", "12",
                       *with_learning_rate(1e8)])
    assert "variables are not finite" in message
    named, step = NAMED_CHECKPOINT.search(message).groups()
    assert Path(named) == run / "checkpoints" / "last" and int(step) >= 1
    for checkpoint in (run / "checkpoints").iterdir():
        assert non_finite(checkpoint) == [], checkpoint.name
    # Its values are finite yet far out of range, so resuming cannot help: the message says to start anew.
    assert "out of range" in message and "start a new run with lower learning rates" in message
    assert LOWER_RATES in message
    assert status(run)["state"] == "failed" and status(run)["message"] == message


def test_resuming_the_named_checkpoint_diverges_again_unchanged_and_passes_with_lower_learning_rates(tmp_path):
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), checkpoint_interval=4, log_interval=2,
                         sample_interval=100, tensorboard=False)
    config_path = write_config(tmp_path / "c.json", config)
    run = tmp_path / "r"
    assert train.main(["--config", str(config_path), "--name", "r", "--runs-dir", str(tmp_path), "--steps", "4",
                       "--no-progress"]) == 0
    healthy = json.loads((run / "config.json").read_text())["generator"]["optimizer"]["learning_rate"]

    # The run goes on with learning rates that make it diverge; config.json keeps them.
    first = diverge(["--resume", str(run), "--steps", "12", *with_learning_rate(1e8)])
    named, step = NAMED_CHECKPOINT.search(first).groups()
    assert Path(named) == run / "checkpoints" / "last" and int(step) >= 4
    assert non_finite(Path(named)) == []
    assert "resuming it unchanged repeats this divergence" in first
    assert f"python -m models.train --resume {run} {LOWER_RATES}" in first

    # Unchanged, the resumed run repeats the same steps exactly and diverges where it did.
    again = diverge(["--resume", str(run)])
    assert DIVERGED_AT.search(again).group(1) == DIVERGED_AT.search(first).group(1)

    # With lower learning rates (which a resume now applies, rather than the checkpoint's) it passes that step.
    assert train.main(["--resume", str(run), "--no-progress", *with_learning_rate(healthy)]) == 0
    assert status(run)["state"] == "finished" and status(run)["step"] == 12
    assert non_finite(run / "checkpoints" / "last") == []
    assert json.loads((run / "config.json").read_text())["generator"]["optimizer"]["learning_rate"] == healthy


def test_a_full_disk_during_a_checkpoint_fails_in_one_line_and_resume_continues(tmp_path, monkeypatch):
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), checkpoint_interval=4, sample_interval=100,
                         tensorboard=False)
    config_path = write_config(tmp_path / "c.json", config)
    run = tmp_path / "full"
    real_savez = np.savez
    saves = []

    def savez_until_the_disk_is_full(handle, **arrays):
        saves.append(1)
        if len(saves) == 1:
            return real_savez(handle, **arrays)
        handle.write(b"x" * 4096)
        raise OSError(errno.ENOSPC, "No space left on device", str(handle.name))

    monkeypatch.setattr(checkpoints_module.np, "savez", savez_until_the_disk_is_full)
    with pytest.raises(UserError) as raised:
        train.main(["--config", str(config_path), "--name", "full", "--runs-dir", str(tmp_path), "--steps", "12",
                    "--no-progress"])
    message = str(raised.value)
    assert "\n" not in message
    assert "at step 8 (No space left on device)" in message
    assert f"the last checkpoint {run / 'checkpoints' / 'last'} (step 4) is intact" in message
    assert f"--resume {run}" in message
    assert status(run)["state"] == "failed" and status(run)["message"] == message
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == ["last"]
    assert json.loads((run / "checkpoints" / "last" / "info.json").read_text())["step"] == 4

    monkeypatch.setattr(checkpoints_module.np, "savez", real_savez)  # space freed
    assert train.main(["--resume", str(run), "--no-progress"]) == 0
    assert status(run)["state"] == "finished" and status(run)["step"] == 12


class BackendFailsAtCall:
    """The compiled training call, failing as a broken backend would at its ``fail_at``-th call."""

    def __init__(self, train_step, fail_at: int):
        self.train_step, self.fail_at, self.calls = train_step, fail_at, 0

    def __call__(self, *args):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("INTERNAL: device kernel launch failed\nwith more lines of runtime detail")
        return self.train_step(*args)

    def __getattr__(self, name):
        return getattr(self.train_step, name)


def test_a_backend_error_leaves_the_run_failed_with_its_first_line(tmp_path, monkeypatch):
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), sample_interval=100, tensorboard=False,
                         steps_per_call=1)
    config_path = write_config(tmp_path / "c.json", config)
    make_train_step = training_loop.Trainer.make_train_step
    monkeypatch.setattr(training_loop.Trainer, "make_train_step",
                        lambda self: BackendFailsAtCall(make_train_step(self), fail_at=5))
    with pytest.raises(RuntimeError, match="device kernel launch failed"):  # internal: the traceback stays
        train.main(["--config", str(config_path), "--name", "broken", "--runs-dir", str(tmp_path), "--steps", "12",
                    "--no-progress"])
    assert status(tmp_path / "broken") == {
        **status(tmp_path / "broken"), "state": "failed", "step": 4,
        "message": "internal error at step 4: RuntimeError: INTERNAL: device kernel launch failed"}


def test_labels_without_a_class_fail_in_one_line_with_status_failed(tmp_path):
    dataset_path = make_dataset(tmp_path / "squares.npz")
    images = load_dataset(dataset_path).x
    labels = np.arange(len(images)) % 5  # classes 3 and 4 have no name
    raw = tiny_config(dataset_path, "cgan", "cgan", tensorboard=False, steps=4)
    config = configs.resolve(raw, "test")
    config["image_shape"], config["class_names"] = list(images.shape[1:]), list(CLASS_NAMES)
    run = tmp_path / "labels"
    run.mkdir()
    trainer = training_loop.Trainer(config, run, Dataset(images, labels, list(CLASS_NAMES)), show_progress=False)
    with pytest.raises(UserError, match=r"label 4 is outside the run's 3 classes \(red, T-shirt/top, blue\); "
                                        r"allowed: labels 0 to 2"):
        trainer.run(resume=False)
    assert status(run)["state"] == "failed" and "label 4 is outside" in status(run)["message"]
