"""A run folder's file names, in one place, and readers that survive whatever state the files are in.

    runs/NAME/
        config.json      every option as the run used it: models.config.resolve's result (written before training
                         starts); read_config back-fills one an older version wrote
        status.json      {"state", "step", "total_steps", "message", "updated"}, and once finished
                         "training_seconds" (the last invocation's training loop, as a time limit counts it)
        metrics.jsonl    one JSON object per logged step
        samples/         step_NNNNNN.png grids
        checkpoints/     last/, best/, step_NNNNNN/ (see models.checkpoints)
        generator.keras  the exported generator, written last: a run that has it has finished
        .trainer.lock    locked (flock) by the trainer writing the folder, so a second one is refused

The readers never raise on a file's content: the server reads folders that the trainer is writing, that
a crash cut short or that someone edited by hand. They return a default and, where a file is there but
cannot be used, the reason, so a caller can name the problem instead of failing.
"""
from __future__ import annotations

import errno
import fcntl
import os
import zipfile
from pathlib import Path

from infra.bounded_json import loads_bounded
from infra.errors import UserError
from infra.regular_files import open_regular, read_regular_file

CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
GENERATOR_FILE = "generator.keras"
CHECKPOINTS_DIR = "checkpoints"
SAMPLES_DIR = "samples"
SAMPLE_GLOB = "step_*.png"
LOCK_FILE = ".trainer.lock"
MAX_JSON_BYTES = 16 << 20  # config.json and status.json are a few KB; a run folder holds nothing larger

JSON_TYPE_NAMES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean",
                   type(None): "null"}


def _read_json_object(path: Path) -> tuple[dict | None, str | None]:
    """(the object, None); (None, None) when there is no such file; (None, why) when it cannot be used."""
    try:
        text = read_regular_file(path, MAX_JSON_BYTES).decode("utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as error:
        return None, f"{path.name} cannot be read ({error})"
    try:
        value = loads_bounded(text, path.name)
    except UserError as error:  # not JSON, nested too deeply, a number of thousands of digits
        return None, str(error)[:300]
    if not isinstance(value, dict):
        return None, f"{path.name} holds a JSON {JSON_TYPE_NAMES.get(type(value), 'value')}, not an object"
    return value, None


def read_config(run_dir: str | Path) -> tuple[dict | None, str | None]:
    """The run's config, back-filled as this version reads it (:func:`models.config.backfill`: an option the
    file leaves out gets the value the run used), or None and why not (missing, unreadable, not a JSON object)."""
    from models.config import backfill

    config, problem = _read_json_object(Path(run_dir) / CONFIG_FILE)
    if config is None and problem is None:
        problem = f"no {CONFIG_FILE} there"
    return (None if config is None else backfill(config, CONFIG_FILE)), problem


def read_status(run_dir: str | Path) -> tuple[dict, str | None]:
    """The run's status, ``{}`` while there is none yet, and why a status.json that is there was not used."""
    status, problem = _read_json_object(Path(run_dir) / STATUS_FILE)
    return status or {}, problem


def read_metrics(run_dir: str | Path, tail_bytes: int | None = None) -> list[dict]:
    """The records of metrics.jsonl, or of its last ``tail_bytes`` (enough for the latest values).

    A line that is not a JSON object with an integer ``step`` (cut by the tail, still being written, cut
    by a crash) is skipped, never an error.
    """
    try:
        descriptor = open_regular(Path(run_dir) / METRICS_FILE)  # a named pipe must not hang the reader
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as error:
        if error.errno == errno.EINVAL:  # not a regular file (a folder, a pipe): no records
            return []
        raise
    with open(descriptor, "rb") as handle:
        if tail_bytes is not None:
            handle.seek(max(0, os.fstat(descriptor).st_size - tail_bytes))
        text = handle.read().decode("utf-8", errors="replace")
    records = []
    for line in text.splitlines():
        try:
            record = loads_bounded(line, METRICS_FILE)
        except UserError:  # a line cut by a crash, or not the trainer's
            continue
        if isinstance(record, dict) and type(record.get("step")) is int:
            records.append(record)
    return records


def generator_file_problem(run_dir: str | Path) -> str | None:
    """Why the run's generator.keras cannot be a saved model (missing, empty, not a Keras zip), or None.

    Cheap: only the file's size and its zip directory are looked at, not the model.
    """
    path = Path(run_dir) / GENERATOR_FILE
    if not path.is_file():
        return f"no {GENERATOR_FILE} (the run has not finished)"
    if path.stat().st_size == 0:
        return f"{GENERATOR_FILE} is empty"
    if not zipfile.is_zipfile(path):
        return f"{GENERATOR_FILE} is not a Keras model file (not a zip archive)"
    return None


# What rebuilding a run's generator reads from its config.json.
GENERATOR_KEYS = ("generator", "latent_dim", "image_shape", "class_names", "precision", "ema_kimg")


def generator_config_problem(config: dict) -> str | None:
    """Why ``config`` (as :func:`read_config` gives it) cannot rebuild the run's generator, or None: the schema's
    verdict on each key generating images reads, and the data's image shape, which the trainer sets."""
    from models.config import keys_problem

    problem = keys_problem(config, GENERATOR_KEYS)
    if problem is not None:
        return f"{CONFIG_FILE}: {problem}"
    if config.get("image_shape") is None:
        return f"{CONFIG_FILE}: image_shape = null is not [height, width, channels] (the trainer sets it)"
    return None


def sample_file(run_dir: str | Path, filename: str) -> Path | None:
    """The sample grid ``filename`` of the run, or None when there is none, or when the name or a link on
    the way leads anywhere but to a file in the run's own samples folder."""
    if "\0" in filename or Path(filename).name != filename or not Path(filename).match(SAMPLE_GLOB):
        return None
    run_dir = Path(run_dir).resolve()
    samples = (run_dir / SAMPLES_DIR).resolve()
    path = (samples / filename).resolve()
    if not samples.is_relative_to(run_dir) or path.parent != samples or not path.is_file():
        return None
    return path


def latest_sample(run_dir: str | Path) -> Path | None:
    """The newest sample grid: names carry a zero-padded step, so the last name is the latest step."""
    samples = sorted((Path(run_dir) / SAMPLES_DIR).glob(SAMPLE_GLOB))
    return samples[-1] if samples else None


_held_locks: dict[Path, int] = {}  # run folder -> descriptor of its locked LOCK_FILE, in this process


def lock_run_folder(run_dir: str | Path) -> None:
    """Take the run folder for this process's trainer, or raise a one-line UserError when another has it.

    An OS lock (flock) on ``LOCK_FILE``: the kernel drops it when the process ends however it ends (exit,
    crash, SIGKILL), so a stale lock never blocks a later trainer. Taking a folder this process already
    holds is a no-op; :func:`unlock_run_folder` gives it back.
    """
    run_dir = Path(run_dir).resolve()
    if run_dir in _held_locks:
        return
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise UserError(f"{run_dir / LOCK_FILE}: cannot create the run folder's lock ({error.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        holder = os.read(fd, 32).decode("ascii", errors="replace").strip()
        os.close(fd)
        if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise UserError(f"{run_dir / LOCK_FILE}: cannot lock the run folder ({error.strerror})") from None
        who = f"another trainer (pid {holder})" if holder.isdigit() else "another trainer"
        raise UserError(f"{run_dir}: {who} is writing this run folder; wait until it ends (or stop it), or give "
                        "another --name") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held_locks[run_dir] = fd


def unlock_run_folder(run_dir: str | Path) -> None:
    """Give back a run folder :func:`lock_run_folder` took in this process; nothing if it holds none."""
    fd = _held_locks.pop(Path(run_dir).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the only descriptor of the lock file drops the flock
