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
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from infra.atomic import atomic_write, write_json
from infra.errors import UserError

VARIABLES_FILE = "variables.npz"
INFO_FILE = "info.json"
GROUPS = ("generator", "discriminator", "generator_optimizer", "discriminator_optimizer")


def _step_dir_name(step: int) -> str:
    return f"step_{step:06d}"


class Checkpoints:
    def __init__(self, run_dir: str | Path, keep_last: int = 3, keep_every: int | None = None):
        self.folder = Path(run_dir) / "checkpoints"
        self.keep_last = keep_last
        self.keep_every = keep_every

    def _history(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(path for path in self.folder.glob("step_*") if (path / INFO_FILE).is_file())

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
        """Write the values of ``variable_groups`` (group name -> Keras variables) as checkpoint ``slot``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f".partial-{slot}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        arrays = {f"{group}/{index:04d}": np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)
                  for group, variables in variable_groups.items() for index, variable in enumerate(variables)}
        with atomic_write(partial / VARIABLES_FILE) as handle:
            np.savez(handle, **arrays)
        write_json(partial / INFO_FILE, info)
        target = self.folder / slot
        if (target / INFO_FILE).is_file():
            retired = (self.folder / _step_dir_name(self.read_info(target)["step"]) if slot == "last"
                       else self.folder / f".old-{slot}")
            shutil.rmtree(retired, ignore_errors=True)
            os.rename(target, retired)
        os.rename(partial, target)
        shutil.rmtree(self.folder / f".old-{slot}", ignore_errors=True)
        self._prune()
        return target

    def _prune(self) -> None:
        history = self._history()
        kept = set(history[len(history) - (self.keep_last - 1):]) if self.keep_last > 1 else set()
        for path in history:
            step = self.read_info(path)["step"]
            if path not in kept and not (self.keep_every and step % self.keep_every == 0):
                shutil.rmtree(path)

    @staticmethod
    def read_info(checkpoint: Path) -> dict:
        try:
            return json.loads((checkpoint / INFO_FILE).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"{checkpoint / INFO_FILE}: unreadable checkpoint info ({error})") from None

    def restore(self, variable_groups: dict[str, list], slot: str = "last") -> dict:
        """Assign the saved values to ``variable_groups``; returns the checkpoint's info."""
        checkpoint = self.path(slot)
        if checkpoint is None:
            raise UserError(f"{self.folder}: no '{slot}' checkpoint to load")
        try:
            with np.load(checkpoint / VARIABLES_FILE, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except (OSError, ValueError) as error:
            raise UserError(f"{checkpoint / VARIABLES_FILE}: unreadable checkpoint ({error})") from None
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
