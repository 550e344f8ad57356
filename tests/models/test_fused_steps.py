"""Training at the device's pace: several steps per compiled call, data on the device, losses read only at
log steps, mixed precision."""
from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from models import builders, train, training_loop
from tests.models.helpers import make_dataset, tiny_config, write_config
from tests.models.test_small_data_training import MODERN, checkpoint_arrays


def train_run(tmp_path: Path, name: str, steps: int, **options) -> Path:
    data = make_dataset(tmp_path / "squares.npz")
    config = tiny_config(data, "cgan", "cgan", tensorboard=False, **options)
    config_path = write_config(tmp_path / f"{name}.json", config)
    assert train.main(["--config", str(config_path), "--name", name, "--runs-dir", str(tmp_path),
                       "--steps", str(steps), "--no-progress"]) == 0
    return tmp_path / name


def record_calls(monkeypatch) -> list[tuple[int, int]]:
    """(first step, length) of each compiled call the trainer makes, in order."""
    calls = []
    real_make_train_step = training_loop.make_train_step

    def counting_step(*args):
        step = real_make_train_step(*args)

        class CountingStep:
            sync = step.sync

            def __call__(self, *call_args):
                calls.append(call_args[:2])
                return step(*call_args)

        return CountingStep()

    monkeypatch.setattr(training_loop, "make_train_step", counting_step)
    return calls


def assert_same_weights(first: Path, second: Path) -> None:
    expected, actual = checkpoint_arrays(first), checkpoint_arrays(second)
    assert expected.keys() == actual.keys()
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], atol=2e-5, rtol=0, err_msg=name)


def test_fused_calls_train_the_same_weights_as_single_steps(tmp_path):
    # Every option that keeps state in the step (R1 every 3rd step, EMA, adaptive augmentation, LeCam), with
    # calls of 4 cut at the R1 steps, the samples (every 5) and the checkpoints (every 6).
    options = dict(MODERN, log_interval=4, sample_interval=5, checkpoint_interval=6)
    single = train_run(tmp_path, "single", 13, steps_per_call=1, **options)
    fused = train_run(tmp_path, "fused", 13, steps_per_call=4, **options)
    assert_same_weights(single, fused)
    assert (fused / "metrics.jsonl").read_text().count("\n") == 4  # steps 4, 8, 12 and the last, 13


def test_data_on_the_host_trains_the_same_weights_as_data_on_the_device(tmp_path):
    on_device = train_run(tmp_path, "device", 7, steps_per_call=3, data_placement="device")
    on_host = train_run(tmp_path, "host", 7, steps_per_call=3, data_placement="host")
    assert_same_weights(on_device, on_host)


def test_the_loop_reads_the_losses_only_at_log_steps_and_hooks_one_call_behind(tmp_path, monkeypatch):
    reads, calls = [], record_calls(monkeypatch)
    real_read = training_loop.PendingMetrics.read

    def counting_read(self, log_steps, through=None):
        reads.append((list(log_steps), through, len(calls)))
        return real_read(self, log_steps, through)

    monkeypatch.setattr(training_loop.PendingMetrics, "read", counting_read)
    run = train_run(tmp_path, "reads", 24, steps_per_call=4, log_interval=8, sample_interval=12,
                    checkpoint_interval=24)
    assert calls == [(0, 4), (4, 4), (8, 4), (12, 4), (16, 4), (20, 4)]
    # Six calls, four reads: the log steps 8 and 16 once the next call is queued (3 and 5 calls made), reading
    # through the log step only; the sample grid at 12 and the last step at once, since they need the weights
    # (the grid checks the losses before showing them).
    assert reads == [([8], 8, 3), ([], 12, 3), ([16], 16, 5), ([24], 24, 6)]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records] == [8, 16, 24]


def test_calls_cut_short_by_a_boundary_run_one_step_at_a_time(tmp_path, monkeypatch):
    # Every call length is a program compiled anew, so a run compiles two at most: 4 and 1 here, never the
    # 2 before the grid at step 6 nor the 1-3 before the last step.
    calls = record_calls(monkeypatch)
    train_run(tmp_path, "cut", 13, steps_per_call=4, log_interval=4, sample_interval=6, checkpoint_interval=12)
    assert calls == [(0, 4), (4, 1), (5, 1), (6, 4), (10, 1), (11, 1), (12, 1)]


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_trains_with_finite_losses_and_float32_weights(tmp_path, precision):
    run = train_run(tmp_path, precision, 6, precision=precision, log_interval=2, **MODERN)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(np.isfinite(record["d_loss"]) and np.isfinite(record["g_loss"])
                                      for record in records)
    assert all(array.dtype != np.float16 for array in checkpoint_arrays(run).values())
    config = json.loads((run / "config.json").read_text())
    generator = builders.build_generator(config)
    assert generator.dtype_policy.compute_dtype == precision and generator.dtype_policy.variable_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # building left the global policy as it was
    if precision == "float16":
        assert isinstance(builders.build_gan(config)[1], keras.optimizers.LossScaleOptimizer)


def test_grids_and_checkpoints_spaced_by_minutes_leave_the_calls_whole(tmp_path, monkeypatch):
    # sample_minutes this small: a grid after every call; checkpoint_minutes this large: only the last one. Their
    # step intervals (3, which would cut every call of 4) no longer apply.
    calls = record_calls(monkeypatch)
    run = train_run(tmp_path, "minutes", 12, steps_per_call=4, log_interval=4, sample_interval=3,
                    checkpoint_interval=3, sample_minutes=1e-9, checkpoint_minutes=60)
    assert calls == [(0, 4), (4, 4), (8, 4)]
    assert sorted(path.name for path in (run / "samples").glob("step_*.png")) == [
        "step_000004.png", "step_000008.png", "step_000012.png"]
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == ["last"]
