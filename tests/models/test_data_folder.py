"""models.train --data FOLDER: a folder of images is built once per content into the user cache and trained on;
an IDX folder keeps working; any other folder is one line saying what a data folder holds."""
from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from infra.errors import UserError
from models.data import DATA_FOLDER_HELP, load_training_data
from tests.models.helpers import run_module, tiny_config, write_config
from tests.preprocessing.image_fixtures import logo
from tests.preprocessing.test_build_folders import GREEN_BAR, RED_CIRCLE


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("LOGOGAN_CACHE_DIR", str(folder))
    return folder


def logo_folder(folder, count: int = 6):
    """SVGs and PNGs mixed, every one different, plus a file that is not an image."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        if index % 2:
            (folder / f"mark{index}.svg").write_text(
                (RED_CIRCLE if index % 4 == 1 else GREEN_BAR).replace('viewBox="0 0', f'viewBox="{index} 0'))
        else:
            logo(32 + 8 * index, colour=(20 * index, 0, 200)).save(folder / f"logo{index}.png")
    (folder / "notes.doc").write_bytes(b"not an image")
    return folder


def built_files(cache):
    return sorted(path.name for path in (cache / "datasets").glob("*.npz"))


def test_a_folder_of_images_is_built_once_and_rebuilt_when_it_changes(tmp_path, cache, capsys):
    folder = logo_folder(tmp_path / "mylogos")
    first = load_training_data(str(folder), image_size=24)
    [name] = built_files(cache)
    path = cache / "datasets" / name
    assert name.startswith("mylogos-24px-") and first.x.shape[1:] == (24, 24, 3) and first.y is None
    assert capsys.readouterr().err == (f"data: built {len(first.x)} images from {folder} into {path} (cleaned 6 of 7 "
                                       "files; skipped 1: 1 not an image (.doc))\n  not an image: notes.doc\n")
    assert len(first.x) >= 4  # near-duplicate marks may go; the PNGs differ in colour and size
    assert first.meta["clean"]["size"] == 24 and first.meta["input"] == str(folder)

    again = load_training_data(str(folder), image_size=24)
    assert capsys.readouterr().err == f"data: reusing {len(first.x)} images built from {folder}, cached in {path}\n"
    np.testing.assert_array_equal(again.x, first.x)

    stripes = np.where((np.arange(80)[:, None] + np.arange(80)[None, :]) // 10 % 2, 255, 0).astype(np.uint8)
    Image.fromarray(stripes).save(folder / "new.png")
    grown = load_training_data(str(folder), image_size=24)
    assert len(grown.x) == len(first.x) + 1 and "data: built" in capsys.readouterr().err
    assert built_files(cache) != [name] and len(built_files(cache)) == 1  # the stale build is gone

    os.utime(folder / "new.png", ns=(1, 1))  # touched, the same bytes: reused
    load_training_data(str(folder), image_size=24)
    assert "data: reusing" in capsys.readouterr().err

    # Other bytes of the same size under the same times (cp -p, rsync -a): built again, with the new colour.
    for mark in folder.glob("*.svg"):
        before = mark.stat()
        mark.write_text(mark.read_text().replace("#dc141e", "#1e14dc"))  # red circles to blue, as many bytes
        os.utime(mark, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert (mark.stat().st_size, mark.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    swapped = load_training_data(str(folder), image_size=24)
    assert "data: built" in capsys.readouterr().err

    def red_images(dataset):
        return int(((dataset.x[..., 0].astype(int) - dataset.x[..., 2] > 100).sum(axis=(1, 2)) > 20).sum())

    assert red_images(grown) >= 1 and red_images(swapped) == 0


def test_without_image_size_the_build_default_applies_and_classes_become_labels(tmp_path, cache):
    folder = tmp_path / "kinds"
    logo_folder(folder / "round", 3)
    (folder / "square").mkdir()
    for index in range(2):
        square = Image.new("RGB", (40, 40), "white")
        ImageDraw.Draw(square).rectangle((4 + 8 * index, 4, 36, 36 - 8 * index), fill=(0, 120 * index, 200))
        square.save(folder / "square" / f"{index}.png")
    dataset = load_training_data(str(folder))
    assert dataset.x.shape[1:] == (56, 56, 3)
    assert dataset.class_names == ["round", "square"] and sorted(set(dataset.y.tolist())) == [0, 1]


def write_idx(folder, images: np.ndarray, labels: np.ndarray) -> None:
    header = b"\0\0\x08\x03" + b"".join(n.to_bytes(4, "big") for n in images.shape)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images.tobytes()))
    header = b"\0\0\x08\x01" + len(labels).to_bytes(4, "big")
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header + labels.astype(np.uint8).tobytes()))


def test_an_idx_folder_is_still_read_as_idx(tmp_path, cache):
    folder = tmp_path / "fashion"
    folder.mkdir()
    write_idx(folder, np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28), np.array([0, 9, 4]))
    logo().save(folder / "preview.png")  # an image beside the IDX files does not make it an image folder
    dataset = load_training_data(str(folder))
    assert dataset.x.shape == (3, 28, 28, 1) and dataset.y.tolist() == [0, 9, 4]
    assert not (cache / "datasets").exists()


@pytest.mark.parametrize("contents", [{}, {"readme.md": b"# my data"}, {"logos.zip": b"PK\x03\x04"}])
def test_a_folder_without_images_or_idx_files_says_what_a_data_folder_holds(tmp_path, cache, contents):
    folder = tmp_path / "empty"
    folder.mkdir()
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    with pytest.raises(UserError) as raised:
        load_training_data(str(folder))
    message = str(raised.value)
    assert message.startswith(f"{folder}: ") and message.endswith(f"; {DATA_FOLDER_HELP}") and "\n" not in message
    assert "images (PNG, JPEG, GIF, WebP, BMP, TIFF, SVG" in message and "train-images-idx3-ubyte.gz" in message


def test_models_train_trains_on_a_folder_and_reuses_its_build(tmp_path):
    folder = logo_folder(tmp_path / "my logos", 8)
    config = write_config(tmp_path / "tiny.json", tiny_config(tmp_path / "unused.npz", image_size=16,
                                                                sample_interval=2, checkpoint_interval=2))
    env = {"LOGOGAN_CACHE_DIR": str(tmp_path / "cache")}
    args = ["--config", str(config), "--data", str(folder), "--steps", "2", "--runs-dir", str(tmp_path / "runs"),
            "--no-progress"]
    first = run_module("models.train", *args, "--name", "first", **env)
    assert first.returncode == 0, first.stderr
    [built] = [line for line in first.stderr.splitlines() if line.startswith("data: ")]
    count, path = re.fullmatch(rf"data: built (\d+) images from {re.escape(str(folder))} into (\S+\.npz) "
                               r"\(cleaned 8 of 9 files; skipped 1: 1 not an image \(\.doc\)\)", built).groups()
    assert Path(path).parent == tmp_path / "cache" / "datasets"
    run_config = json.loads((tmp_path / "runs" / "first" / "config.json").read_text())
    assert run_config["data_path"] == str(folder) and run_config["image_shape"] == [16, 16, 3]
    assert (tmp_path / "runs" / "first" / "samples" / "step_000002.png").is_file()

    second = run_module("models.train", *args, "--name", "second", **env)
    assert second.returncode == 0, second.stderr
    assert [line for line in second.stderr.splitlines() if line.startswith("data: ")] == [
        f"data: reusing {count} images built from {folder}, cached in {path}"]

    # models.evaluate --run compares with the dataset the run trained on (the folder's build at 16 px), not the
    # folder's files at their own sizes.
    evaluated = run_module("models.evaluate", "--run", str(tmp_path / "runs" / "first"), "--metrics", "mmd",
                           "--samples", "8", **env)
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"data: reusing {count} images built from {folder}" in evaluated.stderr
    assert re.search(r"mmd\s+\d", evaluated.stdout.lower()), evaluated.stdout


def test_models_train_on_a_folder_without_images_is_one_line(tmp_path):
    config = write_config(tmp_path / "tiny.json", tiny_config(tmp_path / "unused.npz"))
    (tmp_path / "nothing").mkdir()
    result = run_module("models.train", "--config", str(config), "--data", str(tmp_path / "nothing"),
                        "--runs-dir", str(tmp_path / "runs"), LOGOGAN_CACHE_DIR=str(tmp_path / "cache"))
    assert result.returncode == 2
    assert result.stderr == (f"models.train: error: {tmp_path / 'nothing'}: holds no image files; {DATA_FOLDER_HELP}\n")


def test_a_folder_runs_real_images_are_its_build_svgs_included_as_the_quality_bench_scores_them(tmp_path, cache):
    # bench/quality.py scored a folder run against the folder's raster files only (its SVGs left out, and a
    # folder of rasters of several sizes refused); it now takes the run's own data as models.evaluate --run does.
    from models.evaluate import run_real_images

    folder = logo_folder(tmp_path / "mylogos", count=8)
    real, labels, _ = run_real_images({"data_path": str(folder), "image_shape": [24, 24, 3]})
    built = load_training_data(str(folder), image_size=24)
    assert real.shape[1:] == (24, 24, 3) and labels is None
    np.testing.assert_array_equal(real, built.x)
    assert len(real) > 4  # more than the folder's 4 PNGs: its SVGs are in
