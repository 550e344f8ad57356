"""bench/train_speed.py: the trainer and the bare step measured for a tiny config, its table, its data fallback."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.models.helpers import PROJECT_ROOT, load_script, make_dataset, subprocess_env, tiny_config, write_config

BENCH = PROJECT_ROOT / "bench" / "train_speed.py"


def load_bench():
    return load_script(BENCH, "train_speed_bench")


def run_bench(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], cwd=PROJECT_ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_the_table_has_a_row_with_every_speed_for_a_tiny_config(tmp_path):
    config = write_config(tmp_path / "tiny.json", tiny_config(make_dataset(tmp_path / "tiny.npz"), steps_per_call=2))
    rows_path = tmp_path / "rows.json"
    result = run_bench("--config", str(config), "--backend", "jax", "--batch", "8", "--precision", "float32",
                       "--steps", "4", "--warmup", "1", "--outputs-every", "2", "--json", str(rows_path))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert "48 images of 16x16x3" in lines[0]  # the real dataset, not synthetic images
    assert lines[1].split()[:5] == ["backend", "device", "batch", "precision", "calls"]
    row_line = next(line for line in lines if line.startswith("jax "))
    fields = row_line.split()
    assert fields[-10:-7] == ["8", "float32", "2"]
    trainer, outputs, bare, fused = map(float, fields[-7:-3])
    ratio, fused_ratio, outputs_ratio = map(float, fields[-3:])
    assert min(trainer, outputs, bare, fused) > 0
    assert ratio == pytest.approx(trainer / bare, abs=0.01)
    assert fused_ratio == pytest.approx(trainer / fused, abs=0.01)
    assert outputs_ratio == pytest.approx(outputs / trainer, abs=0.01)
    assert "scaling not measured: no accelerator" in result.stdout
    (row,) = json.loads(rows_path.read_text())
    assert (row["backend"], row["batch"], row["precision"], row["n_critic"]) == ("jax", 8, "float32", 1)
    assert (row["steps_per_call"], row["outputs_every"]) == (2, 2)
    assert row["trainer_records"] == "2 records"  # one per timed call: the compiling first call is dropped
    assert row["ratio"] == pytest.approx(row["trainer"] / row["bare"])
    assert row["bare_fused"] > 0 and row["trainer_outputs"] > 0
    assert row["outputs_ratio"] == pytest.approx(row["trainer_outputs"] / row["trainer"])


def test_the_fused_bare_step_trains_its_steps_in_one_call(tmp_path):
    # Whatever the backend of this process: the optimizers count 3 steps per call, 2 calls.
    import keras

    from models import builders
    from models import config as configs
    from models.train import image_shape_and_classes

    from bench import bare_steps

    bench = load_bench()
    config = configs.resolve(tiny_config(make_dataset(tmp_path / "tiny.npz")), "tiny.json")
    dataset, _ = bench.bench_dataset(config)
    config["image_shape"], config["class_names"] = image_shape_and_classes(config, dataset)
    gan, generator_optimizer, discriminator_optimizer = builders.build_gan(config)
    step_class = {"jax": bare_steps.BareJaxStep, "tensorflow": bare_steps.BareTensorFlowStep}[keras.backend.backend()]
    step = step_class(gan, generator_optimizer, discriminator_optimizer, config, dataset, per_call=3)
    step.run(2)
    if keras.backend.backend() == "jax":
        iterations = int(step.state["g_optimizer"][0])
    else:
        iterations = int(generator_optimizer.iterations.numpy())
    assert iterations == 6


def test_the_trainer_with_outputs_writes_grids_and_checkpoints_every_n_steps(tmp_path, monkeypatch):
    from models import config as configs
    from models import training_loop
    from models.train import image_shape_and_classes

    bench = load_bench()
    config = configs.resolve(tiny_config(make_dataset(tmp_path / "tiny.npz")), "tiny.json")
    dataset, _ = bench.bench_dataset(config)
    config["image_shape"], config["class_names"] = image_shape_and_classes(config, dataset)
    seen = []
    real_run = training_loop.Trainer.run

    def run(self, resume):
        seen.append({key: self.config[key] for key in ("steps", "log_interval", "sample_interval",
                                                         "checkpoint_interval", "tensorboard")})
        return real_run(self, resume)

    monkeypatch.setattr(training_loop.Trainer, "run", run)
    speed, note = bench.trainer_images_per_second(config, dataset, warmup=1, steps=5, outputs_every=3)
    # Two rounds of warm-up (the first grid compiles), then 5 steps rounded up to whole rounds: 6.
    assert seen == [{"steps": 12, "log_interval": 3, "sample_interval": 3, "checkpoint_interval": 3,
                     "tensorboard": True}]
    assert speed > 0 and note == "2 records"


def test_speed_comes_from_the_records_after_the_warm_up():
    bench = load_bench()
    records = [{"step": 4, "images_per_sec": 10.0, "d_loss": 1.0}, {"step": 4, "fid": 3.0},
               {"step": 8, "images_per_sec": 100.0}, {"step": 12, "images_per_sec": 50.0}]
    # 2 x 4 steps x 8 images in 4 x 8 / 100 + 4 x 8 / 50 seconds; the first record (compilation) is left out.
    speed, note = bench.images_per_second_after(records, warmup_steps=4, batch_size=8)
    assert speed == pytest.approx(64 / (32 / 100 + 32 / 50))
    assert note == "2 records"
    assert bench.images_per_second_after(records[:2], warmup_steps=4, batch_size=8) == (
        None, "no trainer record after the warm-up")


def test_the_trainer_is_timed_over_whole_calls_only(tmp_path, monkeypatch):
    # A call cut short is another program to compile; on a GPU that compile once cost the timed window 4 s
    # (trainer/bare 0.24 at batch 64 instead of 0.99).
    from models import config as configs
    from models.train import image_shape_and_classes
    from tests.models.test_fused_steps import record_calls

    bench = load_bench()
    config = configs.resolve(tiny_config(make_dataset(tmp_path / "tiny.npz"), steps_per_call=4), "tiny.json")
    dataset, _ = bench.bench_dataset(config)
    config["image_shape"], config["class_names"] = image_shape_and_classes(config, dataset)
    calls = record_calls(monkeypatch)
    speed, note = bench.trainer_images_per_second(config, dataset, warmup=2, steps=6)
    assert {length for _, length in calls} == {4}  # 6 // 4 records would be 1 step apart: rounded up to 4
    assert [step for step, _ in calls] == [0, 4, 8] and speed > 0 and note == "2 records"  # 4 warm-up + 8 timed


def test_absent_data_becomes_synthetic_images_of_the_configs_size(tmp_path):
    bench = load_bench()
    config = {"data_path": str(tmp_path / "simple_icons_56.npz"), "image_size": None, "data_dir": None,
              "generator": {"choice": "dcgan"}, "discriminator": {"choice": "dcgan"}}
    dataset, note = bench.bench_dataset(config)
    assert dataset.x.shape == (bench.SYNTHETIC_IMAGES, 56, 56, 3) and dataset.x.dtype == np.uint8
    assert dataset.y is None
    assert note.startswith(f"synthetic data ({config['data_path']} is absent)")
    dataset, _ = bench.bench_dataset({**config, "image_size": 64, "generator": {"choice": "cgan"}})
    assert dataset.x.shape[1:] == (64, 64, 3) and set(np.unique(dataset.y)) == set(range(10))
    with pytest.raises(bench.UserError, match="no image size"):
        bench.bench_dataset({**config, "data_path": str(tmp_path / "logos.npz")})


@pytest.mark.parametrize("args, message", [
    (["--batch", "0"], "--batch 0: must be 1 to 4096"),
    (["--precision", "fp8"], "--precision fp8: not a precision; allowed: float32, bfloat16, float16"),
    (["--warmup", "0"], "--warmup 0: must be at least 1"),
    (["--outputs-every", "-1"], "--outputs-every -1: must be 0 (leave it out) or a number of steps"),
    (["--set", "no_such_key=1"], "unknown key no_such_key"),
    (["--set", "reconstruction_weight=1"], "reconstruction_weight is not in the bare step this bench compares "
                                           "against; allowed: 0 (remove it, or pass --set reconstruction_weight=0)"),
])
def test_bad_input_is_one_line_and_status_2(args, message):
    result = run_bench(*args, timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_what_the_bare_step_leaves_out_is_named():
    from models import config as configs

    bench = load_bench()
    plain = configs.resolve(tiny_config("tiny.npz"))
    assert bench.bare_step_leaves_out(plain) == []
    modern = configs.resolve(tiny_config("tiny.npz", ema_kimg=1, lecam_weight=0.1, top_k_fraction=0.75,
                                         augment={"policy": ["translation"]}))
    assert bench.bare_step_leaves_out(modern) == ["augmentation", "LeCam", "the EMA generator", "top-k training"]
