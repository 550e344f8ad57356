"""Checkpoints: every variable of both networks and both optimizers, plus the step, saved atomically.

Layout of ``<run>/checkpoints/``::

    last/          the newest checkpoint
    step_000400/   older ones (the newest keep_last - 1, and every keep_every-th step)
    best/          the best by the configured metric, when there is one

Each holds ``variables.npz`` (``generator/0000``, ... in the models' variable order, which includes the
dropout layers' seed-generator states and BatchNorm statistics) and ``info.json`` (step and metric).
A checkpoint is written to a hidden temporary folder and renamed into place, so a crash leaves either
the old or the new one, never half of one. The previous ``last`` is renamed to ``step_XXXXXX``; if a
crash falls between the two renames, :meth:`Checkpoints.path` finds the newest ``step_XXXXXX``.

:class:`BackgroundWriter` writes them while training goes on: the values are copied to the host first, so the
checkpoint holds exactly the step it names.

Every checkpoint is good: values that are not finite (a diverged run's NaN or inf) are refused before
anything is written (:class:`NotFinite`), so a run that resumes from one starts from weights it can train.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np

from infra import npz_files
from infra.atomic import atomic_write, write_json
from infra.errors import UserError, shown
from infra.regular_files import read_regular_file
from models import background_writer
from models.config.limits import MAX_STEPS
from models.run_folder import CHECKPOINTS_DIR

VARIABLES_FILE = "variables.npz"
INFO_FILE = "info.json"
MAX_INFO_BYTES = 1 << 20  # info.json holds a step, a metric name and its best value
MAX_VARIABLES = 100_000  # arrays in one checkpoint; the presets' networks and optimizers hold hundreds
GROUPS = ("generator", "discriminator", "generator_optimizer", "discriminator_optimizer")
# A value beyond this is finite but out of range: a product of two overflows float32, so the next steps of a
# network holding it produce inf or NaN whatever the learning rate (healthy weights and optimizer moments stay
# many orders of magnitude below).
OUT_OF_RANGE = 1e15


def _read_variables(checkpoint: Path) -> dict[str, np.ndarray]:
    """The arrays of ``checkpoint``'s variables file, inspected before they are read (a run folder may come from
    another machine): one UserError for a file that is not a checkpoint, truncated, or a zip bomb."""
    return npz_files.read_npz(checkpoint / VARIABLES_FILE, "checkpoint", MAX_VARIABLES)


class NotFinite(Exception):
    """The values to save hold NaN or inf; nothing was written."""


def _step_dir_name(step: int) -> str:
    return f"step_{step:06d}"


def _value(variable) -> np.ndarray:
    return np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)


def non_finite_names(arrays: dict[str, np.ndarray]) -> list[str]:
    """The names of the floating-point arrays in ``arrays`` that hold a NaN or an inf."""
    return [name for name, array in arrays.items()
            if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all()]


def describe_non_finite(bad: list[str], total: int, labels: dict[str, str] | None = None) -> str:
    """A line such as ``3 of 76 variables are not finite (generator dense/kernel, ...)``, the first few named."""
    shown = [labels.get(name, name) if labels else name for name in bad[:3]]
    return f"{len(bad)} of {total} variables are not finite ({', '.join(shown)}{', ...' if len(bad) > 3 else ''})"


def snapshot(variable_groups: dict[str, list]) -> dict[str, np.ndarray]:
    """Host copies of the values of ``variable_groups`` under their checkpoint names; raises :class:`NotFinite`
    when one holds NaN or inf. The copies are the checkpoint: training may go on changing the variables."""
    arrays = {f"{group}/{index:04d}": np.array(_value(variable), copy=True)
              for group, variables in variable_groups.items() for index, variable in enumerate(variables)}
    bad = non_finite_names(arrays)
    if bad:
        labels = {f"{group}/{index:04d}": f"{group} {getattr(variable, 'path', index)}"
                  for group, variables in variable_groups.items() for index, variable in enumerate(variables)}
        raise NotFinite(describe_non_finite(bad, len(arrays), labels))
    return arrays


class BackgroundWriter(background_writer.BackgroundWriter):
    """Writes checkpoints in a thread while training goes on, one at a time, in the order they were asked for.

    :meth:`save` takes the values on the host (and refuses non-finite ones) before it returns, waits for the
    write before it, then starts writing. A write's error (a full disk) is raised by the next :meth:`save` or
    :meth:`wait`, the calls the training loop already handles errors around; :meth:`wait` comes before anything
    reads the checkpoints and before the run ends."""

    def __init__(self, checkpoints: "Checkpoints"):
        super().__init__("checkpoint")
        self.checkpoints = checkpoints

    def save(self, variable_groups: dict[str, list], info: dict, slot: str = "last") -> None:
        arrays = snapshot(variable_groups)
        self.submit(lambda: self.checkpoints.write(arrays, info, slot), step=info.get("step"))


class Checkpoints:
    def __init__(self, run_dir: str | Path, keep_last: int = 3, keep_every: int | None = None):
        self.folder = Path(run_dir) / CHECKPOINTS_DIR
        self.keep_last = keep_last
        self.keep_every = keep_every

    def _history(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(path for path in self.folder.glob("step_*") if (path / INFO_FILE).is_file())

    @staticmethod
    def largest_magnitude(checkpoint: Path) -> float:
        """The largest absolute floating-point value in ``checkpoint`` (0 for one it cannot read)."""
        try:
            arrays = _read_variables(checkpoint)
        except UserError:
            return 0.0
        return max([float(np.abs(array).max()) for array in arrays.values()
                    if np.issubdtype(array.dtype, np.floating) and array.size] or [0.0])

    def newest_finite(self) -> Path | None:
        """The newest checkpoint (``last``, then the kept ``step_XXXXXX``) whose every value is finite.

        Checkpoints this version writes always are; one written before the check existed may not be."""
        last = self.path("last")
        for checkpoint in ([last] if last is not None else []) + self._history()[::-1]:
            try:
                if not non_finite_names(_read_variables(checkpoint)):
                    return checkpoint
            except UserError:
                continue
        return None

    def path(self, slot: str = "last") -> Path | None:
        """The folder of checkpoint ``slot`` ("last" or "best"), or None when there is none."""
        target = self.folder / slot
        if (target / INFO_FILE).is_file():
            return target
        if slot == "last" and self._history():
            return self._history()[-1]
        previous = self.folder / f".old-{slot}"
        return previous if (previous / INFO_FILE).is_file() else None

    def save(self, variable_groups: dict[str, list], info: dict, slot: str = "last") -> Path:
        """Write the values of ``variable_groups`` (group name -> Keras variables) as checkpoint ``slot``.

        Raises :class:`NotFinite`, writing nothing, when a value is NaN or inf. A failed write (a full disk)
        removes what it wrote and leaves the previous checkpoints as they were."""
        return self.write(snapshot(variable_groups), info, slot)

    def write(self, arrays: dict[str, np.ndarray], info: dict, slot: str = "last") -> Path:
        """Write host ``arrays`` (from :func:`snapshot`, so already checked finite) as checkpoint ``slot``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f".partial-{slot}"
        shutil.rmtree(partial, ignore_errors=True)
        try:
            partial.mkdir()
            with atomic_write(partial / VARIABLES_FILE) as handle:
                np.savez(handle, **arrays)
            write_json(partial / INFO_FILE, info)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)  # give back the space a full disk needs
            raise
        target = self.folder / slot
        if (target / INFO_FILE).is_file():
            retired = (self.folder / _step_dir_name(self.read_info(target)["step"]) if slot == "last"
                       else self.folder / f".old-{slot}")
            shutil.rmtree(retired, ignore_errors=True)
            os.rename(target, retired)
        elif target.exists() or target.is_symlink():
            # Something that is no checkpoint (its info.json gone or not a file) holds the name: set aside, not
            # deleted, since its variables may still be someone's only copy.
            aside = self.folder / f".invalid-{slot}"
            if aside.is_dir() and not aside.is_symlink():
                shutil.rmtree(aside)
            elif aside.exists() or aside.is_symlink():
                aside.unlink()
            os.rename(target, aside)
        os.rename(partial, target)
        shutil.rmtree(self.folder / f".old-{slot}", ignore_errors=True)
        self._prune()
        return target

    def _prune(self) -> None:
        history = self._history()
        # ``last`` is one of the keep_last; the newest keep_last - 1 of the older ones stay beside it.
        kept = set(history[-(self.keep_last - 1):]) if self.keep_last > 1 else set()
        for path in history:
            step = self.read_info(path)["step"]
            if path not in kept and not (self.keep_every and step % self.keep_every == 0):
                shutil.rmtree(path)

    @staticmethod
    def read_info(checkpoint: Path) -> dict:
        """The checkpoint's info.json, checked: a step the trainer could have written, and a finite best value."""
        path = checkpoint / INFO_FILE
        try:
            info = json.loads(read_regular_file(path, MAX_INFO_BYTES))
        except (OSError, ValueError, RecursionError) as error:
            raise UserError(f"{path}: unreadable checkpoint info ({error})") from None
        if not isinstance(info, dict):
            raise UserError(f"{path}: unreadable checkpoint info (a JSON {type(info).__name__}, not an object with "
                            "'step', 'best' and 'metric')")
        step, best = info.get("step"), info.get("best")
        if type(step) is not int or not 0 <= step <= MAX_STEPS:
            raise UserError(f"{path}: step = {shown(step)} is out of range; a checkpoint's step is a whole number "
                            f"from 0 to {MAX_STEPS}")
        if best is not None and (type(best) not in (int, float) or not math.isfinite(best)):
            raise UserError(f"{path}: best = {shown(best)} is not a metric value; a finite number or null is")
        return info

    def restore(self, variable_groups: dict[str, list], slot: str = "last") -> dict:
        """Assign the saved values to ``variable_groups``; returns the checkpoint's info."""
        checkpoint = self.path(slot)
        if checkpoint is None:
            raise UserError(f"{self.folder}: no '{slot}' checkpoint to load")
        try:
            arrays = _read_variables(checkpoint)
        except UserError as error:
            good = self.newest_finite()
            raise UserError(f"{error}; " + (f"remove the newer checkpoint folders to resume from {good}, the newest "
                                            "that reads whole" if good is not None else
                                            "no checkpoint of this run reads whole; start a new run")) from None
        not_numbers = sorted(name for name, array in arrays.items() if array.dtype.kind not in "biuf")
        if not_numbers:
            raise UserError(f"{checkpoint / VARIABLES_FILE}: unreadable checkpoint ({not_numbers[0]} holds "
                            f"{arrays[not_numbers[0]].dtype} values; a checkpoint holds real numbers)")
        bad = non_finite_names(arrays)
        if bad:
            good = self.newest_finite()
            instead = (f"remove the newer checkpoint folders to resume from {good}, the newest whose every value "
                       f"is finite" if good is not None else "no checkpoint of this run is finite; start a new run")
            raise UserError(f"{checkpoint}: {describe_non_finite(bad, len(arrays))}, so training cannot resume from "
                            f"it (it was written before checkpoints were checked); {instead}")
        for group, variables in variable_groups.items():
            saved = sorted(name for name in arrays if name.startswith(group + "/"))
            if len(saved) != len(variables):
                raise UserError(f"{checkpoint}: holds {len(saved)} {group} variables but the config builds "
                                f"{len(variables)}; the run's config.json does not match its checkpoint")
            for name, variable in zip(saved, variables):
                if tuple(arrays[name].shape) != tuple(variable.shape):
                    raise UserError(f"{checkpoint}: {group} variable {variable.path} has shape "
                                    f"{arrays[name].shape} in the checkpoint, {tuple(variable.shape)} in the model")
                variable.assign(arrays[name])
        return self.read_info(checkpoint)
