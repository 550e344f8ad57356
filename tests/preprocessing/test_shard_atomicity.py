"""Re-writing a sharded dataset is atomic: a reader finds the old dataset or the new one, never a mix."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from infra.errors import UserError
from preprocessing.dataset import load_dataset, save_dataset, shard_names

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Re-writes the dataset argv[2] with the one in argv[1], and dies (SIGKILL) right after the argv[3]-th file
# of the write was renamed into place: after the first shard, the second, ..., or the index.
KILLED_AFTER_RENAMES = """
import os, signal, sys
from preprocessing.dataset import load_dataset, save_dataset
rename, done = os.replace, []
def rename_then_maybe_die(source, target):
    rename(source, target)
    done.append(target)
    if len(done) == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = rename_then_maybe_die
new = load_dataset(sys.argv[1])
save_dataset(sys.argv[2], new.x, new.y, new.class_names, new.meta, shard_bytes=int(sys.argv[4]))
"""


def images(count, value_offset):
    """Images whose every pixel says which dataset and row they are (A rows < 100, B rows >= 100)."""
    return (np.arange(count, dtype=np.uint8)[:, None, None, None] + value_offset) * np.ones((1, 4, 4, 1), np.uint8)


@pytest.mark.parametrize("renames_before_kill", [1, 2, 3, 4, 5])
def test_a_repack_killed_midway_leaves_the_old_dataset_or_the_new_one(tmp_path, renames_before_kill):
    old_x, new_x = images(40, 0), images(40, 100)
    dataset = save_dataset(tmp_path / "ds.npz", old_x, meta={"name": "A"}, shard_bytes=old_x.nbytes // 4)
    assert len(shard_names(dataset)) == 4
    new = save_dataset(tmp_path / "new" / "B.npz", new_x, meta={"name": "B"})
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_RENAMES, str(new), str(dataset), str(renames_before_kill),
         str(new_x.nbytes // 4)],
        cwd=PROJECT_ROOT, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    loaded = load_dataset(dataset)  # 4 new shards then the index: the index's rename is the 5th
    expected_x, expected_name = (new_x, "B") if renames_before_kill == 5 else (old_x, "A")
    np.testing.assert_array_equal(loaded.x, expected_x)
    assert loaded.meta == {"name": expected_name}


def test_the_next_write_removes_the_shards_of_older_writes(tmp_path):
    x = images(30, 0)
    dataset = save_dataset(tmp_path / "ds.npz", x, shard_bytes=x.nbytes // 3)
    first = shard_names(dataset)
    save_dataset(dataset, x[::-1], shard_bytes=x.nbytes // 2)
    second = shard_names(dataset)
    assert len(first) == 3 and len(second) == 2 and not set(first) & set(second)
    assert sorted(path.name for path in tmp_path.iterdir() if ".shard-" in path.name) == sorted(second)
    np.testing.assert_array_equal(load_dataset(dataset).x, x[::-1])


def test_a_shard_of_another_write_is_refused_in_one_line(tmp_path):
    x = images(30, 0)
    dataset = save_dataset(tmp_path / "ds.npz", x, shard_bytes=x.nbytes // 3)
    other = save_dataset(tmp_path / "other" / "ds.npz", images(30, 100), shard_bytes=x.nbytes // 3)
    names, foreign = shard_names(dataset), shard_names(other)
    shutil.copy(other.with_name(foreign[1]), dataset.with_name(names[1]))
    with pytest.raises(UserError, match=rf"{names[1]}: belongs to another write of {dataset}") as refused:
        load_dataset(dataset)
    assert "\n" not in str(refused.value)
    dataset.with_name(names[1]).unlink()
    with pytest.raises(UserError, match=rf"{names[1]}: no such dataset file"):
        load_dataset(dataset)
