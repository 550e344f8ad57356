"""Sample grids are drawn, encoded and written in a background thread: training goes on meanwhile, every grid is
on disk and in TensorBoard when the run ends, and a failed grid write fails the run in one line."""
from __future__ import annotations

import errno
import json
import threading

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from infra.errors import UserError
from models import images as images_module
from models import outputs as outputs_module
from models import train, training_loop
from models.outputs import RunOutputs
from tests.models.helpers import make_dataset, tiny_config, write_config

# How long a slow encode waits for training to go on before it gives up: reached only when it never does.
PATIENCE_S = 15


class SignalsLaterCalls:
    """The compiled training call; sets ``went_on`` once a call starts past step ``after``."""

    def __init__(self, train_step, after: int, went_on: threading.Event):
        self.train_step, self.after, self.went_on = train_step, after, went_on

    def __call__(self, step, *args):
        if step >= self.after:
            self.went_on.set()
        return self.train_step(step, *args)

    def __getattr__(self, name):
        return getattr(self.train_step, name)


def encode_once_training_goes_on(monkeypatch, slow_step: int, fail: bool = False) -> tuple[list, list]:
    """The grid of ``slow_step`` is encoded only once a training call past it has started (or PATIENCE_S has
    passed), then written (or, with ``fail``, refused as by a full disk). Returns the grids encoded, in order,
    and whether training went on before that encode ended."""
    went_on = threading.Event()
    encoded, ran_ahead = [], []
    make_train_step = training_loop.Trainer.make_train_step
    monkeypatch.setattr(training_loop.Trainer, "make_train_step",
                        lambda self: SignalsLaterCalls(make_train_step(self), slow_step, went_on))
    grids = []

    def slow_png_bytes(grid):
        grids.append(grid.copy())
        if len(grids) == 1:
            ran_ahead.append(went_on.wait(PATIENCE_S))
            if fail:
                raise OSError(errno.ENOSPC, "No space left on device", "samples/step_000003.png")
        encoded.append(grid.copy())
        return images_module.png_bytes(grid)

    monkeypatch.setattr(outputs_module, "png_bytes", slow_png_bytes)
    return encoded, ran_ahead


def train_tiny(tmp_path, name: str, steps: int, **options) -> list[str]:
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), sample_interval=3, steps_per_call=1,
                         checkpoint_interval=100, **options)
    return ["--config", str(write_config(tmp_path / "c.json", config)), "--name", name, "--runs-dir",
            str(tmp_path), "--steps", str(steps), "--no-progress"]


def test_training_goes_on_while_a_grid_is_written_and_every_grid_is_there_at_the_end(tmp_path, monkeypatch):
    encoded, ran_ahead = encode_once_training_goes_on(monkeypatch, slow_step=4)
    assert train.main(train_tiny(tmp_path, "slow", steps=9, tensorboard=True)) == 0
    run = tmp_path / "slow"
    assert ran_ahead == [True]  # step 4's call started while step 3's grid was still being encoded
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    files = sorted(path.name for path in (run / "samples").glob("step_*.png"))
    assert files == ["step_000003.png", "step_000006.png", "step_000009.png"]
    for name, grid in zip(files, encoded):
        np.testing.assert_array_equal(np.asarray(Image.open(run / "samples" / name)), grid)
    # 2 rows of 4 tiles of 16 px with 2 px gaps: the grid drawn in the thread is the one drawn before.
    assert encoded[0].shape == (2 * 16 + 3 * 2, 4 * 16 + 5 * 2, 3)
    frames = iio.imread(run / "progress.gif", index=None)
    assert len(frames) == 3
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    tensorboard_images = events.Images("samples")
    assert [image.step for image in tensorboard_images] == [3, 6, 9]
    assert [image.encoded_image_string for image in tensorboard_images] == [
        (run / "samples" / name).read_bytes() for name in files]


def test_a_grid_that_cannot_be_written_fails_the_run_in_one_line_after_training_went_on(tmp_path, monkeypatch):
    encoded, ran_ahead = encode_once_training_goes_on(monkeypatch, slow_step=4, fail=True)
    with pytest.raises(UserError) as raised:
        train.main(train_tiny(tmp_path, "full", steps=5, tensorboard=False))
    run = tmp_path / "full"
    message = str(raised.value)
    assert ran_ahead == [True]
    assert "\n" not in message
    assert f"{run}: could not write samples/step_000003.png at step 3 (No space left on device)" in message
    assert f"--resume {run}" in message
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and status["message"] == message
    # The run waited for the grid before it could report finished: it never did, nor exported anything.
    assert not (run / "generator.keras").exists() and not (run / "progress.gif").exists()
    assert not list((run / "samples").glob("*.png")) and encoded == []


def test_run_outputs_hand_a_grid_to_the_writer_and_keep_the_event_order(tmp_path, monkeypatch):
    release = threading.Event()

    def blocked_png_bytes(grid):
        assert release.wait(PATIENCE_S)
        return images_module.png_bytes(grid)

    monkeypatch.setattr(outputs_module, "png_bytes", blocked_png_bytes)
    outputs = RunOutputs(tmp_path)
    tiles = np.random.default_rng(2).integers(0, 256, (4, 5, 5, 3), dtype=np.uint8)
    path = outputs.save_samples_in_background(3, tiles, columns=2)
    assert path == tmp_path / "samples" / "step_000003.png" and not path.exists()  # returned while encoding
    threading.Timer(0.3, release.set).start()
    outputs.log({"step": 4, "d_loss": 0.5})  # waits for the grid: TensorBoard gets them in the order given
    assert path.exists()
    outputs.close()
    np.testing.assert_array_equal(np.asarray(Image.open(path)), images_module.image_grid(tiles, columns=2))
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert [image.step for image in events.Images("samples")] == [3]
    assert [event.step for event in events.Scalars("d_loss")] == [4]
    with open(next((tmp_path / "tensorboard").glob("events.out.tfevents.*")), "rb") as handle:
        content = handle.read()
    assert content.index(b"samples") < content.index(b"d_loss")
