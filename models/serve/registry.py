"""The finished runs under a runs folder, each generator loaded once and kept.

A run counts as finished when its ``generator.keras`` exists (the trainer writes it last). The folder is
looked at again on every listing, so runs that finish while the server is up (its own training jobs
included) appear without a restart. A run's files are read again whenever one of them changes, so a run
resumed and finished again is loaded again, and a run that was broken (a config.json that is not JSON, an
empty generator.keras) is served again as soon as the file is fixed. A broken run is listed with its
problem and never keeps the server from serving the others. A listing states each run's generator as its
config.json builds it (choice and architecture), and names its data by a path relative to the data root.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infra.errors import UserError, quoted
from infra.storage import is_s3_url
from models import run_folder
from models.serve.errors import ApiError

SUMMARY_KEYS = ("latent_dim", "loss", "batch_size", "steps", "epochs", "metric_evaluate", "backend", "seed")
# What a loaded generator is made of: a change to one of these means loading it again.
MODEL_FILES = (run_folder.GENERATOR_FILE, run_folder.CONFIG_FILE, run_folder.CHECKPOINTS_DIR)
# What else the listing shows: a change means reading the run's files again, not its model.
LISTED_FILES = (run_folder.STATUS_FILE, run_folder.METRICS_FILE)


@dataclass(frozen=True)
class RunInfo:
    name: str
    path: Path
    config: dict
    status: dict
    best_metric: dict | None
    checkpoints: tuple[str, ...]
    version: tuple  # what the run's files looked like when read: a new value means reading them again
    problem: str | None = None  # why the run cannot be served; None when it can
    warnings: tuple[str, ...] = ()  # what is wrong with files that serving can do without

    @property
    def model_version(self) -> tuple:
        return self.version[:len(MODEL_FILES)]

    @property
    def class_names(self) -> list[str] | None:
        return self.config.get("class_names")

    @property
    def image_shape(self) -> list[int] | None:
        return self.config.get("image_shape")

    def summary(self, data_root: Path | None = None) -> dict:
        shape = self.image_shape
        return {
            "name": self.name,
            "image_shape": shape,
            "image_size": shape[:2] if shape else None,
            "class_names": self.class_names,
            "num_classes": len(self.class_names) if self.class_names else 0,
            "conditional": bool(self.class_names),
            "generator": network_summary(self.config, "generator"),
            "config": config_summary(self.config, data_root),
            "best_metric": self.best_metric,
            "checkpoints": list(self.checkpoints),
            "state": self.status.get("state"),
            "steps": self.status.get("step"),
            "total_steps": self.status.get("total_steps"),
            "updated": self.status.get("updated"),
            "warnings": list(self.warnings),
        }


def network_summary(config: dict, role: str) -> dict | None:
    """What builds the run's ``role`` network: its choice and its architecture (mlp, conv, resnet, shapes),
    as config.json states them or, where it leaves them out, as the choice's defaults fill them in."""
    from models.config import resolve_network

    network = config.get(role)
    if not isinstance(network, dict):
        return None
    try:
        resolved = resolve_network(network, role)
    except (UserError, KeyError, TypeError):  # an older or hand-edited config: report what it says
        resolved = network
    return {key: resolved.get(key) for key in ("choice", "architecture", "conditional")}


def public_data_path(value: object, data_root: Path | None) -> object:
    """A run's data as the listing shows it: relative to the data root, else by its file name alone (never
    an absolute path of the server's); dataset names and s3:// URLs as they are."""
    if not isinstance(value, str) or is_s3_url(value) or not Path(value).is_absolute():
        return value
    if data_root is not None:
        for root in (Path(data_root).absolute(), Path(data_root).resolve()):
            if Path(value).is_relative_to(root):
                return str(Path(value).relative_to(root))
    return Path(value).name


def config_summary(config: dict, data_root: Path | None = None) -> dict:
    """The settings that tell runs apart at a glance (config.json holds every one)."""
    summary = {role: network_summary(config, role) for role in ("generator", "discriminator")}
    summary["data_path"] = public_data_path(config.get("data_path"), data_root)
    summary.update({key: config.get(key) for key in SUMMARY_KEYS})
    return summary


def best_metric(config: dict, metrics: list[dict]) -> dict | None:
    """The best evaluation of the run's configured metric, as ``{"name", "value", "step"}``."""
    from evaluation.metrics import METRICS, is_better

    name = config.get("metric_evaluate")
    if not isinstance(name, str) or name not in METRICS:
        return None
    scored = [line for line in metrics if type(line.get(name)) in (int, float)]
    best = None
    for line in scored:
        if best is None or is_better(name, line[name], best[name]):
            best = line
    return {"name": name, "value": best[name], "step": best["step"]} if best else None


def version(path: Path) -> tuple:
    """Size, time and inode of each file the server reads: changes on any rewrite, replacement or touch."""
    stamps = []
    for name in MODEL_FILES + LISTED_FILES:
        try:
            stat = (path / name).stat()
        except OSError:
            stamps.append(None)
        else:
            stamps.append((stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return tuple(stamps)


def load_info(path: Path) -> RunInfo:
    stamp = version(path)  # before reading: a change while reading is then seen by the next listing
    config, problem = run_folder.read_config(path)
    config = config or {}
    problem = problem or run_folder.generator_config_problem(config) or run_folder.generator_file_problem(path)
    status, status_problem = run_folder.read_status(path)
    has_best = (path / run_folder.CHECKPOINTS_DIR / "best").is_dir()
    return RunInfo(
        name=path.name,
        path=path,
        config=config if problem is None else {},
        status=status,
        best_metric=best_metric(config, run_folder.read_metrics(path)) if problem is None else None,
        checkpoints=("last", "best") if has_best else ("last",),
        version=stamp,
        problem=problem,
        warnings=(status_problem,) if status_problem else (),
    )


class RunRegistry:
    def __init__(self, runs_dir: Path, data_root: Path | None = None):
        self.runs_dir = Path(runs_dir)
        self.data_root = data_root
        self._lock = threading.Lock()  # guards the dictionaries below, never held while loading a model
        self._infos: dict[str, RunInfo] = {}
        self._run_locks: dict[str, threading.Lock] = {}
        self._generators: dict[tuple[str, str], tuple[tuple, object]] = {}

    def runs(self) -> list[RunInfo]:
        """Every finished run, servable or broken, by name; a run is read again only when its files changed."""
        found = []
        for path in sorted(self.runs_dir.iterdir()) if self.runs_dir.is_dir() else []:
            if path.name.startswith(".") or not (path / run_folder.GENERATOR_FILE).is_file():
                continue
            with self._lock:
                info = self._infos.get(path.name)
            if info is None or info.version != version(path):
                info = load_info(path)
                with self._lock:
                    self._infos[path.name] = info
            found.append(info)
        return found

    def get(self, name: str | None) -> RunInfo:
        """The named run, ready to serve; without a name, the only run there is."""
        runs = {info.name: info for info in self.runs()}
        names = sorted(runs)
        if not runs:
            raise ApiError(404, f"no finished runs in the runs folder {self.runs_dir.name!r} yet (a run is served "
                                "once its generator.keras exists)")
        if name is None or name == "":
            if len(runs) > 1:
                raise ApiError(400, f"{len(runs)} runs are served; choose one with run=NAME", names)
            name = names[0]
        if name not in runs:
            raise ApiError(404, f"no finished run named {quoted(name)}", names)
        if runs[name].problem:
            raise ApiError(409, f"run {name!r} cannot be served: {runs[name].problem}")
        return runs[name]

    def _run_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._run_locks.setdefault(name, threading.Lock())

    def sample(self, info: RunInfo, checkpoint: str, n: int, seed: int | None, class_name: str | None,
               seeds: list[int] | None = None, svg: bool = False, class_parameter: str = "class", **look):
        """``n`` images (uint8 NHWC; SVG documents with ``svg``) and the class index used, from the run's cached
        generator; ``seeds``: one image per seed instead; ``look``: truncation, size, colours;
        ``class_parameter``: the query parameter that named the class, for the error message."""
        if checkpoint not in info.checkpoints:
            raise ApiError(
                400, f"run {info.name!r} has no {checkpoint!r} checkpoint", list(info.checkpoints)
            )
        # One lock per run: a model loads once however many requests ask for it at the same moment, and
        # requests for different runs never wait for each other.
        with self._run_lock(info.name):
            generator = self._generator(info, checkpoint)
            class_index = self._class_index(info, generator, class_name, class_parameter)
            noise = generator.seed_latents(seeds) if seeds is not None else generator.latents(n, seed)
            try:
                if svg:
                    return generator.svg(noise, class_index, **look), class_index
                images = generator.generate(noise, class_index, **look)
            except UserError as error:
                message = str(error).replace("--size", "size").replace("--colours", "colours")
                raise ApiError(400, message.replace("format svg:", "format=svg:")) from None
        return np.asarray(images), class_index

    def _generator(self, info: RunInfo, checkpoint: str):
        key = (info.name, checkpoint)
        with self._lock:
            cached = self._generators.get(key)
        if cached is not None and cached[0] == info.model_version:
            return cached[1]
        from models.generate import load_generator  # Keras and its backend load with the first model

        try:
            generator = load_generator(info.path, checkpoint)
        except UserError as error:
            raise ApiError(409, f"run {info.name!r} cannot be served: {error}") from None
        except Exception as error:  # noqa: BLE001 - Keras and numpy report a damaged file in many ways
            raise ApiError(409, f"run {info.name!r} cannot be served: its generator did not load "
                                f"({type(error).__name__}: {str(error)[:300]})") from None
        with self._lock:  # a failed load is not kept: the next request tries the (maybe fixed) files again
            self._generators[key] = (info.model_version, generator)
        return generator

    @staticmethod
    def _class_index(info: RunInfo, generator, class_name: str | None, parameter: str) -> int | None:
        if class_name is None or class_name == "":
            return None
        if not generator.class_names:
            raise ApiError(400, f"run {info.name!r} is unconditional: leave {parameter} out")
        try:
            return generator.class_index(class_name)
        except UserError:
            raise ApiError(
                400,
                f"run {info.name!r} has no class {quoted(class_name)}; use a name or an index "
                f"0..{len(generator.class_names) - 1}",
                generator.class_names,
            ) from None
