"""Packing (shards, legacy pickle, contact sheet) and the whole stage as one command."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from infra.errors import UserError
from preprocessing import pack
from preprocessing.contact_sheet import contact_sheet
from preprocessing.dataset import load_dataset, save_dataset, save_legacy_pickle
from tests.preprocessing.image_fixtures import logo, write_awkward_folder

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def random_images(count, size=8, channels=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, channels), dtype=np.uint8)


def test_shards_are_read_back_as_one_dataset(tmp_path):
    x = random_images(10)
    path = save_dataset(tmp_path / "big.npz", x, y=np.arange(10) % 3, class_names=["a", "b", "c"], meta={"k": 1}, shard_bytes=700)
    shards = sorted(p.name for p in tmp_path.glob("big.shard-*.npz"))
    assert [name.split("-", 2)[-1] for name in shards] == [f"0000{i}-of-00003.npz" for i in range(3)]  # 1,920 bytes of images, 700 per shard
    dataset = load_dataset(path)
    np.testing.assert_array_equal(dataset.x, x)
    assert dataset.y.tolist() == (np.arange(10) % 3).tolist()
    assert dataset.class_names == ["a", "b", "c"] and dataset.meta == {"k": 1}
    save_dataset(path, x[:2])  # rewritten small: the old shards must not linger
    assert not list(tmp_path.glob("big.shard-*.npz"))
    assert len(load_dataset(path).x) == 2


def test_legacy_pickle_is_written_and_read_only_when_allowed(tmp_path):
    x = random_images(4, size=8)
    path = save_legacy_pickle(tmp_path, x)
    assert path.name == "X_train_8_4.pkl"
    with open(path, "rb") as handle:
        array = pickle.load(handle)  # the test wrote this file itself
    assert array.dtype == np.float32 and array.shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(array, x.astype(np.float32))
    with pytest.raises(UserError, match="is a pickle, and loading a pickle can run arbitrary code"):
        load_dataset(path)
    np.testing.assert_array_equal(load_dataset(path, allow_pickle=True).x, x)


def test_pack_converts_a_pickle_with_contact_sheet(tmp_path, capsys):
    x = random_images(70, size=8)
    source = save_legacy_pickle(tmp_path, x)
    out = tmp_path / "converted.npz"
    with pytest.raises(UserError, match="--allow-pickle"):
        pack.main(["--input", str(source), "--out", str(out)])
    assert not out.exists()
    assert pack.main(["--input", str(source), "--allow-pickle", "--out", str(out)]) == 0
    np.testing.assert_array_equal(load_dataset(out).x, x)
    sheet = Image.open(tmp_path / "converted.contact.png")
    # 8x8 tiles of 8 px enlarged 8x to 64 px, with 2 px gaps.
    assert sheet.size == (8 * 66 + 2, 8 * 66 + 2)
    assert "Wrote " + str(out) + ": 70 images, 8x8 RGB" in capsys.readouterr().out


def test_contact_sheet_shows_distinct_random_images():
    x = np.arange(100, dtype=np.uint8).repeat(16 * 16).reshape(100, 16, 16, 1)
    sheet = np.asarray(contact_sheet(x, seed=3))
    tiles = {int(sheet[2 + row * 66 + 5, 2 + column * 66 + 5]) for row in range(8) for column in range(8)}
    assert len(tiles) == 64 and tiles <= set(range(100))
    small = np.asarray(contact_sheet(x[:3]))
    assert small.shape == (66 + 2, 3 * 66 + 2)


def run_stage(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "preprocessing.build", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_build_runs_the_whole_stage(tmp_path):
    folder = tmp_path / "collected"
    expected = write_awkward_folder(folder)
    (folder / "palette_copy.png").write_bytes((folder / "palette.png").read_bytes())
    out = tmp_path / "data" / "logos_16.npz"
    result = run_stage(
        ["--input", str(folder), "--size", "16", "--augment-to", "12", "--legacy-pickle", "--out", str(out), "--no-progress"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    kept = sum(outcome == "kept" for outcome in expected.values())
    assert f"Cleaned {kept + 1} of {len(expected) + 1} files" in result.stdout
    dataset = load_dataset(out)
    assert dataset.x.shape == (12, 16, 16, 3)
    assert dataset.meta["dedupe"]["exact"] == [{"removed": "palette_copy.png", "copy_of": "palette.png"}]
    # grey_alpha.png is the same logo as rgba_logo.png in grey, and comes first in name order.
    assert [(near["removed"], near["copy_of"]) for near in dataset.meta["dedupe"]["near"]] == [
        ("rgba_logo.png", "grey_alpha.png")
    ]
    assert dataset.meta["augment"]["originals"] == kept - 1
    assert set(dataset.meta["skipped"]) == set(expected.values()) - {"kept"}
    assert (out.parent / "logos_16.contact.png").is_file()
    assert (out.parent / "X_train_16_12.pkl").is_file()


def test_build_errors_are_one_line(tmp_path):
    logo().save(tmp_path / "a.png")
    bad_fit = run_stage(["--input", str(tmp_path), "--fit", "stretch", "--out", "x.npz"], tmp_path)
    assert bad_fit.returncode == 2 and "invalid choice: 'stretch'" in bad_fit.stderr
    missing = run_stage(["--input", str(tmp_path / "nothing"), "--out", "x.npz"], tmp_path)
    assert missing.returncode == 2
    assert missing.stderr == f"preprocessing.build: error: --input {tmp_path / 'nothing'}: no such folder\n"
    bad_hamming = run_stage(["--input", str(tmp_path), "--hamming", "99", "--out", "x.npz"], tmp_path)
    assert bad_hamming.stderr == "preprocessing.build: error: --hamming 99 is outside 0..32\n"


def test_each_step_runs_alone_on_a_dataset(tmp_path, capsys):
    from preprocessing import augment, contact_sheet, dedupe

    x = random_images(5, size=16)
    save_dataset(tmp_path / "raw.npz", np.concatenate([x, x[:2]]), meta={"sources": [f"{i}.png" for i in range(7)]})
    assert dedupe.main(["--input", str(tmp_path / "raw.npz"), "--exact-only", "--out", str(tmp_path / "unique.npz")]) == 0
    unique = load_dataset(tmp_path / "unique.npz")
    np.testing.assert_array_equal(unique.x, x)
    assert unique.meta["sources"] == ["0.png", "1.png", "2.png", "3.png", "4.png"]
    assert augment.main(["--input", str(tmp_path / "unique.npz"), "--augment-to", "9", "--seed", "2", "--out", str(tmp_path / "aug.npz")]) == 0
    assert load_dataset(tmp_path / "aug.npz").x.shape == (9, 16, 16, 3)
    assert contact_sheet.main(["--input", str(tmp_path / "aug.npz"), "--out", str(tmp_path / "look.png")]) == 0
    assert Image.open(tmp_path / "look.png").size == (8 * 66 + 2, 2 * 66 + 2)  # 9 images: 8 columns, 2 rows
    out = capsys.readouterr().out
    assert "Kept 5 of 7 images; removed 2 exact and 0 near duplicates" in out
    assert "Augmented 5 images to 9 (seed 2)" in out
    with pytest.raises(UserError, match="--augment-to 0 must be 1 or more"):
        augment.main(["--input", str(tmp_path / "unique.npz"), "--augment-to", "0", "--out", str(tmp_path / "x.npz")])
