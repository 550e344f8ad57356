"""Checkpoint rotation, atomic replacement and restore checks."""
from __future__ import annotations

import numpy as np
import pytest

from infra.errors import UserError
from models.checkpoints import Checkpoints


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
