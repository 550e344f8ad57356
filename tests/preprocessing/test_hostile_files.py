"""Hostile dataset files are refused in one line before anything large is allocated, and pack writes nothing.

The builders here are shared with the contract walk (tests/infra/test_cli_contract.py).
"""
from __future__ import annotations

import errno
import json
import resource
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format
from PIL import Image

from infra import cli
from infra.errors import UserError
from preprocessing import dataset as dataset_module
from preprocessing import pack
from preprocessing.dataset import load_dataset, save_dataset, shard_names
from scraping import split_grid
from tests.preprocessing.image_fixtures import png_with_declared_size

TIB = 1024**4


def npy_member(archive: zipfile.ZipFile, name: str, shape: tuple, payload_bytes: int, dtype: str = "|u1") -> None:
    """An array member whose header declares ``shape`` but whose body holds ``payload_bytes`` zero bytes."""
    with archive.open(f"{name}.npy", "w", force_zip64=True) as stream:
        npy_format.write_array_header_1_0(stream, {"descr": dtype, "fortran_order": False, "shape": shape})
        chunk = bytes(1 << 20)
        for start in range(0, payload_bytes, len(chunk)):
            stream.write(chunk[: min(len(chunk), payload_bytes - start)])


def images(count: int = 4, side: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, side, side, 1), dtype=np.uint8)


def hostile_datasets(folder: Path) -> dict[str, tuple[Path, str]]:
    """Per kind of hostile .npz: (its path, a piece of the one line that refuses it)."""
    folder.mkdir(parents=True, exist_ok=True)
    found = {}

    def write(name: str, message: str, **arrays) -> None:
        np.savez_compressed(folder / f"{name}.npz", **arrays)
        found[name] = (folder / f"{name}.npz", message)

    write("deep-meta", "'meta' is nested too deeply", x=images(), meta=np.array("[" * 100_000 + "]" * 100_000))
    write("digits-meta", "'meta' holds a number with 5000 digits", x=images(),
          meta=np.array(json.dumps({"count": 0}).replace("0", "9" * 5000)))
    write("empty-sides", "images are 0x0 pixels", x=np.zeros((2, 0, 0, 3), np.uint8))
    write("thin-sides", "images are 1x20000 pixels", x=np.zeros((2, 1, 20000, 1), np.uint8))
    write("labels-out-of-range", "labels run 0..7 but there are 2 class names, so 0..1 are allowed",
          x=images(), y=np.array([0, 1, 1, 7]), class_names=np.array(["circle", "square"]))
    write("float-labels", "labels are float64; expected whole numbers", x=images(), y=np.array([0.0, 1.5, 1.0, 0.0]))
    write("huge-label", "labels run up to 2000000000; at most 1000 classes (0..999) are supported", x=images(),
          y=np.array([0, 1, 2, 2_000_000_000]))  # without class names: one embedding row per class up to it
    write("many-classes", "200000 class names; at most 1000 classes are supported", x=images(),
          y=np.array([0, 1, 1, 0]), class_names=np.array([f"c{index}" for index in range(200_000)]))
    write("repeated-class", 'class name "shoe" is given to two classes; class names must differ', x=images(),
          y=np.array([0, 1, 1, 0]), class_names=np.array(["shoe", "shoe"]))
    write("blank-class", 'class name " " cannot be asked for by name; a class name is 1 to 200 printable', x=images(),
          y=np.array([0, 1, 1, 0]), class_names=np.array([" ", "bag"]))
    write("newline-class", 'class name "a\\nb" cannot be asked for by name', x=images(), y=np.array([0, 1, 1, 0]),
          class_names=np.array(["a\nb", "bag"]))

    declared = folder / "declared-tib.npz"  # a few hundred bytes that promise 2.86 TiB
    with zipfile.ZipFile(declared, "w", zipfile.ZIP_DEFLATED) as archive:
        npy_member(archive, "x", (1_000_000, 1024, 1024, 3), 0)
    found["declared-tib"] = (declared, "declares shape (1000000, 1024, 1024, 3) of uint8 (3145728000000 bytes)")

    bomb = folder / "zip-bomb.npz"
    count = (300 << 20) // (56 * 56 * 3)
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        npy_member(archive, "x", (count, 56, 56, 3), count * 56 * 56 * 3)
    found["zip-bomb"] = (bomb, "refused as a zip bomb")

    sharded = save_dataset(folder / "sharded" / "real.npz", images(40), shard_bytes=images(40).nbytes // 4)
    with np.load(sharded) as index:
        generation = index["generation"]
    repeated = sharded.with_name("repeated.npz")
    np.savez(repeated, shards=np.array([shard_names(sharded)[0]] * 2000), generation=generation,
             meta=np.array("{}"))
    found["repeated-shard"] = (repeated, f"names the shard {shard_names(sharded)[0]} more than once")
    return found


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return hostile_datasets(tmp_path_factory.mktemp("hostile"))


KINDS = ["deep-meta", "digits-meta", "empty-sides", "thin-sides", "labels-out-of-range", "float-labels",
         "huge-label", "many-classes", "repeated-class", "blank-class", "newline-class", "declared-tib", "zip-bomb",
         "repeated-shard"]


@pytest.mark.parametrize("kind", KINDS)
def test_load_refuses_in_one_line_before_allocating(hostile, kind):
    path, message = hostile[kind]
    ceiling = 512 << 20  # bytes of new address space: far less than any of these files would unpack to
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with pytest.raises(UserError) as refused:
        load_dataset(path)
    assert message in str(refused.value) and str(path) in str(refused.value)
    assert "\n" not in str(refused.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before < ceiling


@pytest.mark.parametrize("kind", KINDS)
def test_pack_writes_nothing_for_a_hostile_input(hostile, kind, tmp_path, capsys):
    path, message = hostile[kind]
    out = tmp_path / "out" / "packed.npz"
    with pytest.raises(SystemExit) as exited:
        cli.run(pack.main, ["--input", str(path), "--out", str(out)])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_good_sharded_and_labelled_datasets_still_load(tmp_path):
    x = images(40)
    y = np.arange(40) % 3
    path = save_dataset(tmp_path / "ok.npz", x, y, ["a", "b", "c"], {"source": "test", "n": 10**30},
                        shard_bytes=x.nbytes // 4)
    loaded = load_dataset(path)
    np.testing.assert_array_equal(loaded.x, x)
    np.testing.assert_array_equal(loaded.y, y)
    assert loaded.meta == {"source": "test", "n": 10**30}


def test_a_repack_that_fails_half_way_removes_its_shards_and_keeps_the_old_dataset(tmp_path, monkeypatch, capsys):
    """The third shard's write hits a full disk: one line, the old dataset whole, no orphan shard, and the
    next attempt succeeds."""
    data = tmp_path / "data"
    old = save_dataset(data / "ds.npz", images(40), meta={"name": "old"}, shard_bytes=images(40).nbytes // 2)
    old_files = sorted(path.name for path in data.iterdir())
    new = save_dataset(tmp_path / "in" / "new.npz", images(80, 8)[::-1].copy(), meta={"name": "new"})
    real_savez, calls = np.savez_compressed, []

    def disk_full_on_third(handle, **arrays):
        calls.append(sorted(arrays))
        if len(calls) == 3:
            handle.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_savez(handle, **arrays)

    monkeypatch.setattr(dataset_module.np, "savez_compressed", disk_full_on_third)
    argv = ["--input", str(new), "--out", str(old), "--shard-mb", "1"]
    monkeypatch.setattr(pack, "MIB", images(80).nbytes // 8)  # eight shards of the new dataset
    with pytest.raises(SystemExit) as exited:
        cli.run(pack.main, argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().endswith("No space left on device); the dataset there before, if any, "
                                                    "is unchanged and nothing of this write was kept")
    assert sorted(path.name for path in data.iterdir()) == old_files
    assert load_dataset(old).meta == {"name": "old"}
    monkeypatch.setattr(dataset_module.np, "savez_compressed", real_savez)
    with pytest.raises(SystemExit) as exited:
        cli.run(pack.main, argv)
    assert exited.value.code == 0
    assert len(shard_names(old)) == 8 and load_dataset(old).meta == {"name": "new"}


def decompression_bomb(path: Path) -> Path:
    """A PNG of a few bytes whose header declares 100,000 x 100,000 pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_with_declared_size(100_000, 100_000))
    return path


def test_split_grid_refuses_a_decompression_bomb_in_one_line(tmp_path, capsys):
    bomb = decompression_bomb(tmp_path / "sheet.png")
    with pytest.raises(SystemExit) as exited:
        cli.run(split_grid.main, ["--image", str(bomb), "--cols", "2", "--rows", "2", "--out", str(tmp_path / "tiles")])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].split(": error: ", 1)[1].startswith(
        f"--image {bomb} is not a readable image (decompression bomb: Image size (10000000000 pixels)")
    assert lines[0].endswith("at most 89478485 pixels are accepted")
    assert not (tmp_path / "tiles").exists()


def test_evaluate_refuses_a_decompression_bomb_among_real_images(tmp_path):
    from models.evaluate import load_image_source

    folder = tmp_path / "real"
    Image.new("RGB", (16, 16), "red").save(decompression_bomb(folder / "b.png").with_name("a.png"))
    bomb = folder / "b.png"
    with pytest.raises(UserError, match=rf"^{bomb} is not a readable image \(decompression bomb") as refused:
        load_image_source(str(folder), "real")
    assert "\n" not in str(refused.value)
