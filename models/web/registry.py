"""The finished runs under a runs folder, each generator loaded once and kept.

A run counts as finished when its ``generator.keras`` exists (the trainer writes it last). The folder is
looked at again on every listing, so runs that finish while the server is up (its own training jobs
included) appear without a restart; a run whose ``generator.keras`` changes (resumed and finished again)
is loaded again.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infra.cli import UserError
from models.web.errors import ApiError
from models.web.runfiles import read_json, read_metrics

FINISHED_MARKER = "generator.keras"
SUMMARY_KEYS = ("data_path", "latent_dim", "loss", "batch_size", "steps", "epochs", "metric_evaluate", "backend", "seed")


@dataclass(frozen=True)
class RunInfo:
    name: str
    path: Path
    config: dict
    status: dict
    best_metric: dict | None
    checkpoints: tuple[str, ...]
    version: float  # mtime of generator.keras: a new value means a new generator

    @property
    def class_names(self) -> list[str] | None:
        return self.config.get("class_names")

    @property
    def image_shape(self) -> list[int] | None:
        return self.config.get("image_shape")

    def summary(self) -> dict:
        return {
            "name": self.name,
            "image_shape": self.image_shape,
            "class_names": self.class_names,
            "conditional": bool(self.class_names),
            "config": config_summary(self.config),
            "best_metric": self.best_metric,
            "checkpoints": list(self.checkpoints),
            "state": self.status.get("state"),
            "steps": self.status.get("step"),
            "updated": self.status.get("updated"),
        }


def config_summary(config: dict) -> dict:
    """The settings that tell runs apart at a glance (config.json holds every one)."""
    summary = {role: config.get(role, {}).get("choice") for role in ("generator", "discriminator")}
    summary.update({key: config.get(key) for key in SUMMARY_KEYS})
    return summary


def best_metric(config: dict, metrics: list[dict]) -> dict | None:
    """The best evaluation of the run's configured metric, as ``{"name", "value", "step"}``."""
    name = str(config.get("metric_evaluate") or "none").lower()
    scored = [line for line in metrics if isinstance(line.get(name), (int, float))]
    if name == "none" or not scored:
        return None
    from evaluation.metrics import is_better

    best = None
    for line in scored:
        if best is None or is_better(name, line[name], best[name]):
            best = line
    return {"name": name, "value": best[name], "step": best.get("step")}


def load_info(path: Path) -> RunInfo:
    config = read_json(path / "config.json", {})
    checkpoints = ("last", "best") if (path / "checkpoints" / "best").exists() else ("last",)
    return RunInfo(
        name=path.name,
        path=path,
        config=config,
        status=read_json(path / "status.json", {}),
        best_metric=best_metric(config, read_metrics(path / "metrics.jsonl")),
        checkpoints=checkpoints,
        version=(path / FINISHED_MARKER).stat().st_mtime,
    )


class RunRegistry:
    def __init__(self, runs_dir: Path):
        self.runs_dir = Path(runs_dir)
        self._lock = threading.Lock()  # guards the dictionaries below, never held while loading a model
        self._infos: dict[str, RunInfo] = {}
        self._run_locks: dict[str, threading.Lock] = {}
        self._generators: dict[tuple[str, str], tuple[float, object]] = {}

    def runs(self) -> list[RunInfo]:
        """Every finished run, by name; a run's files are read again only when its generator changed."""
        found = []
        for path in sorted(self.runs_dir.iterdir()) if self.runs_dir.is_dir() else []:
            marker = path / FINISHED_MARKER
            if path.name.startswith(".") or not marker.is_file():
                continue
            with self._lock:
                info = self._infos.get(path.name)
            if info is None or info.version != marker.stat().st_mtime:
                info = load_info(path)
                with self._lock:
                    self._infos[path.name] = info
            found.append(info)
        return found

    def get(self, name: str | None) -> RunInfo:
        """The named run; without a name, the only run there is."""
        runs = {info.name: info for info in self.runs()}
        names = sorted(runs)
        if not runs:
            raise ApiError(404, f"no finished runs in {self.runs_dir} yet (a run is served once its generator.keras exists)")
        if name is None or name == "":
            if len(runs) == 1:
                return runs[names[0]]
            raise ApiError(400, f"{len(runs)} runs are served; choose one with run=NAME", names)
        if name not in runs:
            raise ApiError(404, f"no finished run named {name!r}", names)
        return runs[name]

    def _run_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._run_locks.setdefault(name, threading.Lock())

    def sample(self, info: RunInfo, checkpoint: str, n: int, seed: int, class_name: str | None):
        """``n`` images (uint8 NHWC) and the class index used, from the run's cached generator."""
        if checkpoint not in info.checkpoints:
            raise ApiError(
                400, f"run {info.name!r} has no {checkpoint!r} checkpoint", list(info.checkpoints)
            )
        # One lock per run: a model loads once however many requests ask for it at the same moment, and
        # requests for different runs never wait for each other.
        with self._run_lock(info.name):
            generator = self._generator(info, checkpoint)
            class_index = self._class_index(info, generator, class_name)
            images = generator.sample(n, seed=seed, class_index=class_index)
        return np.asarray(images), class_index

    def _generator(self, info: RunInfo, checkpoint: str):
        key = (info.name, checkpoint)
        with self._lock:
            cached = self._generators.get(key)
        if cached is not None and cached[0] == info.version:
            return cached[1]
        from models.generate import load_generator  # Keras and its backend load with the first model

        generator = load_generator(info.path, checkpoint)
        with self._lock:
            self._generators[key] = (info.version, generator)
        return generator

    @staticmethod
    def _class_index(info: RunInfo, generator, class_name: str | None) -> int | None:
        if class_name is None or class_name == "":
            return None
        if not generator.class_names:
            raise ApiError(400, f"run {info.name!r} is unconditional: leave class out")
        try:
            return generator.class_index(class_name)
        except UserError:
            raise ApiError(
                400,
                f"run {info.name!r} has no class {class_name!r}; use a name or an index 0..{len(generator.class_names) - 1}",
                generator.class_names,
            ) from None
