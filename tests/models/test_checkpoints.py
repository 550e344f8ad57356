"""Checkpoint rotation, atomic replacement, restore checks, and only finite values ever written."""
from __future__ import annotations

import errno
import os
import threading
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npy_format

from infra.errors import UserError
from models import checkpoints as checkpoints_module
from models.checkpoints import VARIABLES_FILE, BackgroundWriter, Checkpoints, NotFinite


def groups(value: float) -> dict[str, list[np.ndarray]]:
    return {"generator": [np.full((2, 3), value, np.float32), np.array([value], np.float32)]}


def saved_steps(checkpoints: Checkpoints) -> list[str]:
    return sorted(path.name for path in checkpoints.folder.iterdir())


def test_keeps_last_k_and_every_nth(tmp_path):
    checkpoints = Checkpoints(tmp_path, keep_last=2, keep_every=3)
    for step in range(1, 8):
        checkpoints.save(groups(step), {"step": step})
    assert saved_steps(checkpoints) == ["last", "step_000003", "step_000006"]
    checkpoints.save(groups(8), {"step": 8})
    assert saved_steps(checkpoints) == ["last", "step_000003", "step_000006", "step_000007"]
    assert Checkpoints.read_info(checkpoints.path("last"))["step"] == 8


class Variable:
    """The part of a Keras variable restore() uses."""

    def __init__(self, shape, path="v"):
        self.value = np.zeros(shape, np.float32)
        self.shape = shape
        self.path = path

    def assign(self, value):
        self.value = np.array(value)


def test_restore_assigns_values_and_returns_info(tmp_path):
    checkpoints = Checkpoints(tmp_path)
    checkpoints.save(groups(4.0), {"step": 12, "best": None})
    variables = [Variable((2, 3)), Variable((1,))]
    assert checkpoints.restore({"generator": variables})["step"] == 12
    np.testing.assert_array_equal(variables[0].value, np.full((2, 3), 4.0))


def test_restore_refuses_a_mismatched_model(tmp_path):
    checkpoints = Checkpoints(tmp_path)
    checkpoints.save(groups(1.0), {"step": 1})
    with pytest.raises(UserError, match="holds 2 generator variables but the config builds 1"):
        checkpoints.restore({"generator": [Variable((2, 3))]})
    with pytest.raises(UserError, match=r"shape \(2, 3\) in the checkpoint, \(3, 2\) in the model"):
        checkpoints.restore({"generator": [Variable((3, 2)), Variable((1,))]})


@pytest.mark.parametrize("text, words", [
    ('{"step": -5}', "info.json: step = -5 is out of range; a checkpoint's step is a whole number from 0 to 10000000"),
    ('{"step": 1e400}', "info.json: step = Infinity is out of range"),
    ('{"step": 3.5}', "info.json: step = 3.5 is out of range"),
    ('{"step": true}', "info.json: step = true is out of range"),
    ('{"best": 1}', "info.json: step = null is out of range"),
    ('{"step": 3, "best": NaN}', "info.json: best = NaN is not a metric value; a finite number or null is"),
    ('{"step": 3, "best": "' + "x" * 5000 + '"}', 'info.json: best = "' + "x" * 79 + '... (5000 characters) is not'),
    ("[1, 2]", "info.json: unreadable checkpoint info (a JSON list, not an object with 'step', 'best' and 'metric')"),
    ("[" * 100_000 + "]" * 100_000, "info.json: unreadable checkpoint info (maximum recursion depth"),
])
def test_a_tampered_info_file_is_one_line_naming_the_value(tmp_path, text, words):
    checkpoints = Checkpoints(tmp_path)
    checkpoints.save(groups(1.0), {"step": 1})
    (checkpoints.path("last") / "info.json").write_text(text)
    with pytest.raises(UserError) as error:
        checkpoints.restore({"generator": [Variable((2, 3)), Variable((1,))]})
    assert words in str(error.value) and len(str(error.value)) < 400


@pytest.mark.parametrize("dtype", [np.complex64, np.str_, np.datetime64])
def test_variables_that_are_not_real_numbers_are_refused(tmp_path, dtype):
    checkpoints = Checkpoints(tmp_path)
    checkpoints.save(groups(1.0), {"step": 1})
    path = checkpoints.path("last") / VARIABLES_FILE
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["generator/0000"] = np.zeros((2, 3)).astype(dtype)
    np.savez(path, **arrays)
    with pytest.raises(UserError, match=r"unreadable checkpoint \(generator/0000 holds .* values; a checkpoint "
                                        r"holds real numbers\)"):
        checkpoints.restore({"generator": [Variable((2, 3)), Variable((1,))]})


@pytest.mark.parametrize("replace", ["fifo", "missing"])
def test_a_last_folder_that_is_no_checkpoint_is_set_aside_and_a_pipe_never_hangs(tmp_path, replace):
    """An info.json replaced by a named pipe (or deleted) makes 'last' no checkpoint: nothing reads the pipe,
    and the next save sets the folder aside instead of failing to rename over it."""
    checkpoints = Checkpoints(tmp_path)
    checkpoints.save(groups(1.0), {"step": 1})
    info = checkpoints.folder / "last" / "info.json"
    info.unlink()
    if replace == "fifo":
        os.mkfifo(info)
        with pytest.raises(UserError, match="info.json: unreadable checkpoint info .*not a regular file"):
            Checkpoints.read_info(checkpoints.folder / "last")
    assert checkpoints.path("last") is None
    checkpoints.save(groups(2.0), {"step": 2})
    assert Checkpoints.read_info(checkpoints.path("last"))["step"] == 2
    kept = checkpoints.folder / ".invalid-last" / VARIABLES_FILE
    with np.load(kept) as archive:  # the old values are still there for whoever wants them
        np.testing.assert_array_equal(archive["generator/0000"], np.full((2, 3), 1.0))


def test_a_variables_file_that_is_a_pipe_is_refused_at_once(tmp_path):
    checkpoints = Checkpoints(tmp_path)
    checkpoints.save(groups(1.0), {"step": 1})
    variables = checkpoints.folder / "last" / VARIABLES_FILE
    variables.unlink()
    os.mkfifo(variables)
    with pytest.raises(UserError, match="not a readable .npz checkpoint .*not a regular file"):
        checkpoints.restore({"generator": [Variable((2, 3)), Variable((1,))]})


def damaged(kind: str, path) -> str:
    """Damage the variables file at ``path`` as a bad disk, a mix-up or an attacker would; the words the
    refusal must hold."""
    if kind == "truncated":
        os.truncate(path, 200)
        return "not a readable .npz checkpoint (File is not a zip file)"
    if kind == "not-a-zip":  # np.load alone answers with advice to unpickle it
        path.write_bytes(b"\x80\x04garbage" * 100)
        return "not a readable .npz checkpoint (it starts with b'\\x80\\x04ga', not with a zip archive's"
    if kind == "bad-crc":  # one byte of an array changed: the zip's checksum no longer matches
        data = bytearray(path.read_bytes())
        array_start = data.index(b"\x93NUMPY", data.index(b"generator/0000.npy"))
        data[array_start + 128 + 2] ^= 0xFF  # inside the values, after the 128-byte .npy header
        path.write_bytes(bytes(data))
        return "not a readable .npz checkpoint (Bad CRC-32 for file 'generator/0000.npy')"
    bomb_count = (300 << 20) // 4  # 300 MiB of float32 zeros in a few hundred KiB
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("generator/0000.npy", "w", force_zip64=True) as stream:
            npy_format.write_array_header_1_0(stream, {"descr": "<f4", "fortran_order": False, "shape": (bomb_count,)})
            for _ in range(300):
                stream.write(bytes(1 << 20))
    return "refused as a zip bomb"


@pytest.mark.parametrize("kind", ["truncated", "not-a-zip", "bad-crc", "zip-bomb"])
def test_a_damaged_variables_file_is_one_line_and_the_newest_good_one_stays_found(tmp_path, kind):
    checkpoints = Checkpoints(tmp_path, keep_last=3)
    checkpoints.save(groups(1.0), {"step": 1})
    checkpoints.save(groups(2.0), {"step": 2})
    words = damaged(kind, checkpoints.path("last") / VARIABLES_FILE)
    with pytest.raises(UserError) as error:
        checkpoints.restore({"generator": [Variable((2, 3)), Variable((1,))]})
    message = str(error.value)
    assert words in message and "\n" not in message and "pickle" not in message
    assert message.startswith(str(checkpoints.path("last") / VARIABLES_FILE))
    # The refusal names step 1, the newest checkpoint that reads whole.
    assert message.endswith(f"remove the newer checkpoint folders to resume from {checkpoints.folder / 'step_000001'}, "
                            "the newest that reads whole")
    assert checkpoints.newest_finite() == checkpoints.folder / "step_000001"
    assert Checkpoints.largest_magnitude(checkpoints.path("last")) == 0.0


def test_a_crash_between_the_renames_falls_back_to_the_newest_history(tmp_path):
    checkpoints = Checkpoints(tmp_path, keep_last=3)
    checkpoints.save(groups(1.0), {"step": 1})
    checkpoints.save(groups(2.0), {"step": 2})
    # What a crash after 'last' was retired but before the new one was renamed in leaves behind:
    (checkpoints.folder / "last").rename(checkpoints.folder / "step_000002")
    (checkpoints.folder / ".partial-last").mkdir()
    assert checkpoints.path("last").name == "step_000002"
    checkpoints.save(groups(3.0), {"step": 3})
    assert Checkpoints.read_info(checkpoints.path("last"))["step"] == 3
    assert ".partial-last" not in saved_steps(checkpoints)


def test_best_is_a_separate_slot(tmp_path):
    checkpoints = Checkpoints(tmp_path, keep_last=1)
    assert checkpoints.path("best") is None
    checkpoints.save(groups(1.0), {"step": 5, "best": 3.5}, slot="best")
    checkpoints.save(groups(2.0), {"step": 6, "best": 3.0}, slot="best")
    checkpoints.save(groups(9.0), {"step": 7})
    assert saved_steps(checkpoints) == ["best", "last"]
    assert Checkpoints.read_info(checkpoints.path("best")) == {"step": 6, "best": 3.0}
    with pytest.raises(UserError, match="no 'last' checkpoint"):
        Checkpoints(tmp_path / "other").restore({"generator": []})


def test_keeps_exactly_keep_checkpoints(tmp_path):
    # keep_checkpoints 5 and a checkpoint every 2 of 10 steps: the pruning slice once went negative and kept
    # only last, step_000006 and step_000008.
    checkpoints = Checkpoints(tmp_path, keep_last=5)
    for step in range(2, 11, 2):
        checkpoints.save(groups(step), {"step": step})
    assert saved_steps(checkpoints) == ["last", "step_000002", "step_000004", "step_000006", "step_000008"]
    checkpoints.save(groups(12), {"step": 12})
    assert saved_steps(checkpoints) == ["last", "step_000004", "step_000006", "step_000008", "step_000010"]
    single = Checkpoints(tmp_path / "single", keep_last=1)
    for step in range(1, 4):
        single.save(groups(step), {"step": step})
    assert saved_steps(single) == ["last"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_values_that_are_not_finite_are_never_written(tmp_path, bad):
    checkpoints = Checkpoints(tmp_path, keep_last=3)
    checkpoints.save(groups(1.0), {"step": 1})
    values = groups(2.0)
    values["generator"][0][1, 2] = bad
    with pytest.raises(NotFinite, match=r"^1 of 2 variables are not finite \(generator 0\)$"):
        checkpoints.save(values, {"step": 2})
    assert saved_steps(checkpoints) == ["last"]
    assert Checkpoints.read_info(checkpoints.path("last"))["step"] == 1
    assert checkpoints.newest_finite() == checkpoints.folder / "last"


def test_a_checkpoint_written_before_the_check_is_refused_and_the_newest_finite_one_named(tmp_path):
    checkpoints = Checkpoints(tmp_path, keep_last=3)
    checkpoints.save(groups(1.0), {"step": 1})
    checkpoints.save(groups(2.0), {"step": 2})
    with np.load(checkpoints.folder / "last" / VARIABLES_FILE) as archive:  # what older versions could save
        arrays = {name: archive[name] for name in archive.files}
    arrays["generator/0001"][0] = np.nan
    np.savez(checkpoints.folder / "last" / VARIABLES_FILE, **arrays)
    assert checkpoints.newest_finite() == checkpoints.folder / "step_000001"
    with pytest.raises(UserError, match=r"last: 1 of 2 variables are not finite .* remove the newer checkpoint "
                                        r"folders to resume from .*step_000001"):
        checkpoints.restore({"generator": [Variable((2, 3)), Variable((1,))]})


def test_a_full_disk_leaves_the_previous_checkpoints_as_they_were(tmp_path, monkeypatch):
    checkpoints = Checkpoints(tmp_path, keep_last=3)
    checkpoints.save(groups(1.0), {"step": 1})
    checkpoints.save(groups(2.0), {"step": 2})
    before = {path.name: (path / VARIABLES_FILE).read_bytes() for path in checkpoints.folder.iterdir()}

    def savez_on_a_full_disk(handle, **arrays):
        handle.write(b"x" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints_module.np, "savez", savez_on_a_full_disk)
    with pytest.raises(OSError, match="No space left"):
        checkpoints.save(groups(3.0), {"step": 3})
    after = {path.name: (path / VARIABLES_FILE).read_bytes() for path in checkpoints.folder.iterdir()}
    assert after == before  # no .partial-last left behind, last and step_000001 untouched
    assert Checkpoints.read_info(checkpoints.path("last"))["step"] == 2


def blocking_savez(monkeypatch) -> tuple[threading.Event, list[int]]:
    """np.savez that waits for the returned event before writing; the list gets each write's first value."""
    release, started, real_savez = threading.Event(), [], np.savez

    def savez(handle, **arrays):
        started.append(int(arrays["generator/0001"][0]))
        assert release.wait(30)
        real_savez(handle, **arrays)

    monkeypatch.setattr(checkpoints_module.np, "savez", savez)
    return release, started


def test_the_background_writer_returns_before_the_write_and_saves_the_values_it_was_given(tmp_path, monkeypatch):
    checkpoints = Checkpoints(tmp_path, keep_last=3)
    writer = BackgroundWriter(checkpoints)
    release, started = blocking_savez(monkeypatch)
    values = groups(1.0)
    writer.save(values, {"step": 1})  # returns while the write waits
    values["generator"][1][0] = 99.0  # training goes on changing the weights
    assert writer.busy and checkpoints.path("last") is None
    release.set()
    writer.wait()
    assert not writer.busy and started == [1]
    with np.load(checkpoints.path("last") / VARIABLES_FILE) as archive:
        assert archive["generator/0001"][0] == 1.0  # the values at save(), not the later ones


def test_the_background_writer_keeps_one_write_in_flight_in_order(tmp_path, monkeypatch):
    checkpoints = Checkpoints(tmp_path, keep_last=3)
    writer = BackgroundWriter(checkpoints)
    release, started = blocking_savez(monkeypatch)
    writer.save(groups(1.0), {"step": 1})
    second = threading.Thread(target=writer.save, args=(groups(2.0), {"step": 2}))
    second.start()
    second.join(0.5)
    assert second.is_alive() and started == [1]  # the second waits for the first write
    release.set()
    second.join(30)
    writer.wait()
    assert started == [1, 2] and saved_steps(checkpoints) == ["last", "step_000001"]
    assert Checkpoints.read_info(checkpoints.path("last"))["step"] == 2


def test_the_background_writer_refuses_non_finite_values_at_once_and_raises_a_failed_write_later(tmp_path,
                                                                                                monkeypatch):
    checkpoints = Checkpoints(tmp_path, keep_last=3)
    writer = BackgroundWriter(checkpoints)
    values = groups(1.0)
    values["generator"][0][0, 0] = np.nan
    with pytest.raises(NotFinite):
        writer.save(values, {"step": 1})
    assert not writer.busy and not checkpoints.folder.exists()  # nothing started, nothing written

    def savez_on_a_full_disk(handle, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints_module.np, "savez", savez_on_a_full_disk)
    writer.save(groups(2.0), {"step": 2})
    with pytest.raises(OSError, match="No space left"):
        writer.wait()
    writer.wait()  # raised once: the writer is usable again
    assert saved_steps(checkpoints) == []
