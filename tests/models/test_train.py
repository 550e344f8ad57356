"""End-to-end training on TensorFlow in this process: the run folder, generation and bad input."""
from __future__ import annotations

import json

import imageio.v3 as iio
import keras
import numpy as np
import pytest
from keras import ops

from infra import cli
from infra.errors import UserError
from models import generate, train, training_loop
from models.outputs import read_metrics
from tests.models.helpers import CLASS_NAMES, make_dataset, tiny_config, write_config


@pytest.fixture(scope="module")
def dataset_path(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "squares.npz")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, dataset_path):
    folder = tmp_path_factory.mktemp("runs")
    config = write_config(folder / "tiny.json", tiny_config(dataset_path))
    assert train.main(["--config", str(config), "--steps", "6", "--name", "tiny", "--runs-dir", str(folder),
                       "--no-progress", "--set", "discriminator.dropout=0.3"]) == 0
    return folder / "tiny"


def test_run_folder_holds_everything_the_frame_promises(finished_run):
    config = json.loads((finished_run / "config.json").read_text())
    assert config["image_shape"] == [16, 16, 3] and config["class_names"] is None
    assert config["discriminator"]["dropout"] == 0.3 and config["loss"] == "bce"
    records = read_metrics(finished_run)
    assert [record["step"] for record in records] == [2, 4, 6]
    for record in records:
        assert set(record) == {"step", "d_loss", "g_loss", "images_per_sec"}
        assert np.isfinite(record["d_loss"]) and record["images_per_sec"] > 0
    assert sorted(path.name for path in (finished_run / "samples").iterdir()) == \
        ["step_000003.png", "step_000006.png"]
    grid = iio.imread(finished_run / "samples" / "step_000006.png")
    assert grid.shape == (2 * 18 + 2, 4 * 18 + 2, 3)  # 2 rows x 4 columns of 16 px tiles, 2 px gaps
    assert len(iio.imread(finished_run / "progress.gif", index=None)) == 2
    assert iio.imread(finished_run / "loss.png").shape[0] > 100
    status = json.loads((finished_run / "status.json").read_text())
    assert (status["state"], status["step"], status["total_steps"]) == ("finished", 6, 6)
    assert json.loads((finished_run / "checkpoints" / "last" / "info.json").read_text())["step"] == 6
    assert (finished_run / "checkpoints" / "step_000004").is_dir()
    assert list((finished_run / "tensorboard").glob("events.out.tfevents.*"))


def test_exported_generator_matches_the_last_checkpoint(finished_run):
    exported = keras.saving.load_model(finished_run / "generator.keras")
    trained = generate.load_generator(finished_run)
    noise = np.random.default_rng(5).standard_normal((4, 8)).astype(np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(exported([noise])),
                               keras.ops.convert_to_numpy(trained.model([noise])), atol=1e-6)
    images = trained.sample(5, seed=3)
    assert images.dtype == np.uint8 and images.shape == (5, 16, 16, 3)
    np.testing.assert_array_equal(images, trained.sample(5, seed=3))
    assert not np.array_equal(images, trained.sample(5, seed=4))


def test_generate_cli_grid_folder_and_latent_walk(finished_run, tmp_path):
    assert generate.main(["--run", str(finished_run), "--n", "6", "--seed", "1", "--out", str(tmp_path / "g.png")]) == 0
    assert iio.imread(tmp_path / "g.png").shape == (2 * 18 + 2, 3 * 18 + 2, 3)
    assert generate.main(["--run", str(finished_run), "--n", "3", "--out", str(tmp_path / "singles")]) == 0
    assert sorted(path.name for path in (tmp_path / "singles").iterdir()) == \
        ["sample_0000.png", "sample_0001.png", "sample_0002.png"]
    assert generate.main(["--run", str(finished_run), "--interpolate", "--n", "5", "--seed", "2",
                          "--out", str(tmp_path / "walk.png")]) == 0
    walk = iio.imread(tmp_path / "walk.png")
    assert walk.shape == (18 + 2, 5 * 18 + 2, 3)
    first, last = walk[2:18, 2:18].astype(int), walk[2:18, 2 + 4 * 18:18 + 4 * 18].astype(int)
    assert np.abs(first - last).sum() > 0


def test_slerp_keeps_endpoints_and_length():
    start, end = np.array([3.0, 0.0]), np.array([0.0, 3.0])
    walk = generate.slerp(start, end, np.linspace(0, 1, 5))
    np.testing.assert_allclose(walk[0], start, atol=1e-12)
    np.testing.assert_allclose(walk[-1], end, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(walk, axis=1), 3.0)


def test_conditional_run_has_one_sample_row_per_class_and_generates_by_name(tmp_path, dataset_path):
    config = write_config(tmp_path / "c.json", tiny_config(dataset_path, "cgan", "cgan", label_smoothing=0.1))
    assert train.main(["--config", str(config), "--steps", "3", "--name", "c", "--runs-dir", str(tmp_path),
                       "--no-progress"]) == 0
    run = tmp_path / "c"
    assert json.loads((run / "config.json").read_text())["class_names"] == CLASS_NAMES
    assert iio.imread(run / "samples" / "step_000003.png").shape == (3 * 18 + 2, 4 * 18 + 2, 3)
    trained = generate.load_generator(run)
    assert [trained.class_index(name) for name in ("t shirt top", "T-SHIRT/TOP", "Blue", "0", 1)] == [1, 1, 2, 0, 1]
    with pytest.raises(UserError, match="allowed: red, T-shirt/top, blue"):
        trained.class_index("green")
    with pytest.raises(UserError, match="out of range"):
        trained.class_index(7)
    assert not np.array_equal(trained.sample(4, seed=1, class_index=0), trained.sample(4, seed=1, class_index=2))
    assert generate.main(["--run", str(run), "--n", "2", "--class", "tshirt-top", "--out", str(tmp_path / "t")]) == 0
    assert len(list((tmp_path / "t").iterdir())) == 2
    with pytest.raises(UserError, match="no 'best' checkpoint"):
        generate.load_generator(run, "best")


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, dataset_path, monkeypatch):
    real_make_train_step = training_loop.make_train_step

    def make_failing_step(*args):
        step = real_make_train_step(*args)

        class FailingStep:
            sync = step.sync

            def __call__(self, first_step, count, regularize_first, per_step):
                metrics = {name: np.array(ops.convert_to_numpy(values))
                           for name, values in step(first_step, count, regularize_first, per_step).items()}
                if first_step <= 5 < first_step + count:  # the sixth step's loss is NaN
                    metrics["g_loss"][5 - first_step] = np.nan
                return metrics

        return FailingStep()

    monkeypatch.setattr(training_loop, "make_train_step", make_failing_step)
    config = write_config(tmp_path / "n.json", tiny_config(dataset_path))
    with pytest.raises(UserError) as error:
        train.main(["--config", str(config), "--steps", "9", "--name", "n", "--runs-dir", str(tmp_path),
                    "--no-progress"])
    assert "g_loss is nan at step 6" in str(error.value) and "step 4" in str(error.value)
    status = json.loads((tmp_path / "n" / "status.json").read_text())
    assert status["state"] == "failed" and "step 6" in status["message"]
    assert json.loads((tmp_path / "n" / "checkpoints" / "last" / "info.json").read_text())["step"] == 4
    assert not (tmp_path / "n" / "generator.keras").exists()


def run_cli(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        cli.run(train.main, argv)
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("problem", ["missing dataset", "unreadable config", "wrong array shape",
                                     "unknown option", "existing run", "labels missing"])
def test_bad_input_is_one_line_naming_the_file(problem, tmp_path, dataset_path, capsys):
    config = tiny_config(dataset_path)
    config_path = tmp_path / "c.json"
    expected = str(config_path)
    if problem == "missing dataset":
        config["data_path"] = expected = str(tmp_path / "nowhere.npz")
    elif problem == "wrong array shape":
        np.savez(tmp_path / "flat.npz", x=np.zeros((4, 16, 16), np.uint8))
        config["data_path"] = expected = str(tmp_path / "flat.npz")
    elif problem == "unknown option":
        config["generator"]["colour"] = "red"
        expected = "generator.colour"
    elif problem == "labels missing":
        np.savez(tmp_path / "unlabelled.npz", x=np.zeros((4, 16, 16, 3), np.uint8))
        config.update(data_path=str(tmp_path / "unlabelled.npz"), generator={"choice": "cgan"})
        expected = "has no labels"
    write_config(config_path, config)
    if problem == "unreadable config":
        config_path.write_text('{"generator": ')
    argv = ["--config", str(config_path), "--runs-dir", str(tmp_path), "--name", "r", "--no-progress"]
    if problem == "existing run":
        (tmp_path / "r").mkdir()
        (tmp_path / "r" / "config.json").write_text("{}")
        expected = "--resume"
    code, err = run_cli(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and ": error: " in lines[0]
    assert expected in err
    assert "Traceback" not in err


def test_metric_evaluation_logs_values_and_keeps_the_best_checkpoint(tmp_path, dataset_path):
    config = write_config(tmp_path / "m.json", tiny_config(dataset_path, metric_evaluate="mmd", eval_interval=2,
                                                           eval_samples=16))
    assert train.main(["--config", str(config), "--steps", "6", "--name", "m", "--runs-dir", str(tmp_path),
                       "--no-progress"]) == 0
    run = tmp_path / "m"
    evaluations = [record for record in read_metrics(run) if "mmd" in record]
    assert [record["step"] for record in evaluations] == [2, 4, 6]
    best = min(evaluations, key=lambda record: record["mmd"])
    info = json.loads((run / "checkpoints" / "best" / "info.json").read_text())
    assert (info["step"], info["best"]) == (best["step"], pytest.approx(best["mmd"]))
    assert generate.load_generator(run, "best").sample(2, seed=0).shape == (2, 16, 16, 3)


def test_the_issues_minimal_config_trains_even_with_fewer_images_than_a_batch(tmp_path, dataset_path):
    minimal = {"generator": {"choice": "dcgan"}, "discriminator": {"choice": "gan"},
               "data_path": "data/simple_icons_56.npz", "metric_evaluate": "none"}
    config = write_config(tmp_path / "minimal.json", minimal)
    assert train.main(["--config", str(config), "--data", str(dataset_path), "--steps", "1", "--name", "min",
                       "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    resolved = json.loads((tmp_path / "min" / "config.json").read_text())
    assert resolved["batch_size"] == 64 and resolved["data_path"] == str(dataset_path)
    assert iio.imread(tmp_path / "min" / "samples" / "step_000001.png").shape == (8 * 18 + 2, 8 * 18 + 2, 3)
    assert (tmp_path / "min" / "generator.keras").is_file()

