"""Atomic writes: a write killed mid-way leaves the previous file, and its leftover is swept by the next."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from infra.atomic import atomic_write, write_text

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Starts a write of a few bytes to the target, then dies as a SIGKILL or power loss would, mid-write.
KILLED_MID_WRITE = (
    "import os, signal, sys; from infra.atomic import atomic_write\n"
    "with atomic_write(sys.argv[1], 'w') as handle:\n"
    "    handle.write('half of it'); handle.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
)


def partials(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".partial"))


def kill_mid_write(target: Path) -> None:
    result = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(target)], cwd=PROJECT_ROOT, timeout=60)
    assert result.returncode == -signal.SIGKILL


def test_the_next_write_sweeps_what_a_killed_write_left(tmp_path):
    target = tmp_path / "status.json"
    write_text(target, "before")
    kill_mid_write(target)
    assert target.read_text() == "before"
    (leftover,) = partials(tmp_path)
    assert leftover == ".status.json.partial" and (tmp_path / leftover).read_text() == "half of it"
    write_text(target, "after")
    assert target.read_text() == "after"
    assert partials(tmp_path) == []


def test_a_write_in_progress_and_other_targets_leftovers_are_kept(tmp_path):
    target = tmp_path / "a.json"
    kill_mid_write(tmp_path / "a.json.b")  # another target whose name starts like this one's
    (foreign,) = partials(tmp_path)
    with atomic_write(target, "w") as slow:
        slow.write("first")
        write_text(target, "second")  # another writer of the same target while the first is still writing
        assert foreign in partials(tmp_path) and len(partials(tmp_path)) == 2
    assert target.read_text() == "first"  # the slow writer finished last and its file was not swept away
    assert partials(tmp_path) == [foreign]
    write_text(tmp_path / "a.json.b", "mine")
    assert partials(tmp_path) == []


def test_a_failed_write_keeps_the_previous_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "data.bin"
    write_text(target, "old")
    with pytest.raises(RuntimeError, match="disk trouble"):
        with atomic_write(target) as handle:
            handle.write(b"partial")
            raise RuntimeError("disk trouble")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["data.bin"]


def test_leftovers_of_writers_killed_side_by_side_are_all_swept(tmp_path):
    target = tmp_path / "grid.png"
    with atomic_write(target) as first:  # holds .grid.png.partial, so the killed writer takes a unique name
        first.write(b"first")
        kill_mid_write(target)
    kill_mid_write(target)
    assert len(partials(tmp_path)) == 2
    write_text(target, "after")
    assert partials(tmp_path) == [] and target.read_text() == "after"


def test_many_writes_to_one_folder_do_not_list_it_each_time(tmp_path, monkeypatch):
    listed = []
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda folder: listed.append(folder) or real_listdir(folder))
    for index in range(50):
        write_text(tmp_path / f"tile_{index}.txt", "x")
    assert listed == [] and len(real_listdir(tmp_path)) == 50


def test_a_write_that_need_not_be_durable_skips_the_fsync_and_is_still_atomic(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    target = tmp_path / "status.json"
    write_text(target, "durable")
    assert len(synced) == 1
    write_text(target, "often", durable=False)
    assert len(synced) == 1 and target.read_text() == "often" and partials(tmp_path) == []
