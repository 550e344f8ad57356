"""Training jobs: the trainer's CLI run as a subprocess, one at a time, the rest waiting in order.

Each job is a run: its id is the run's name, its progress is what the trainer writes into the run folder
(status.json, metrics.jsonl, samples/). Cancelling sends SIGINT, which the trainer answers by saving a
checkpoint and stopping with state "interrupted", so the work done so far is kept and can be resumed
with ``python -m models.train --resume``. The posted config and the trainer's output are kept beside the
runs in ``<runs>/.jobs/`` (a hidden folder the run listing skips) and removed when the job is cancelled. At
most ``max_queued`` jobs wait at a time; one more is refused with 429. Jobs live as long as the server does,
and never longer: each trainer runs in a process group of its own, which closing the queue stops, and
which the kernel stops should the server die without closing it (see models.serve.job_process).
"""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from infra.atomic import write_json
from infra.errors import quoted
from models import run_folder
from models.serve.errors import ApiError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENDED = ("finished", "interrupted", "failed", "cancelled")
LOSS_KEYS = ("d_loss", "g_loss")
METRICS_TAIL_BYTES = 64 * 1024
STOP_TIMEOUT_S = 120  # a checkpoint is saved within seconds; past this the trainer is stuck
DEFAULT_MAX_QUEUED = 8


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class Job:
    id: str
    run_dir: Path
    config_path: Path
    log_path: Path
    state: str = "queued"
    message: str = ""
    queued_at: str = field(default_factory=now)
    started_at: str | None = None
    ended_at: str | None = None
    exit_code: int | None = None
    cancel_requested: bool = False
    cancelled_by_user: bool = False  # its files go once it has ended
    process: subprocess.Popen | None = None
    done: threading.Event = field(default_factory=threading.Event)


def trainer_command(job: Job) -> list[str]:
    return [sys.executable, "-m", "models.serve.job_process", str(os.getpid()), "--config", str(job.config_path),
            "--name", job.id, "--runs-dir", str(job.run_dir.parent), "--no-progress"]


def last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").replace("\r", "\n").splitlines()]
    except FileNotFoundError:
        return ""
    return next((line for line in reversed(lines) if line), "")


class JobQueue:
    def __init__(self, runs_dir: Path, max_queued: int = DEFAULT_MAX_QUEUED):
        self.runs_dir = Path(runs_dir).resolve()
        self.max_queued = max_queued
        self.jobs_dir = self.runs_dir / ".jobs"
        self._jobs: dict[str, Job] = {}
        self._waiting: collections.deque[Job] = collections.deque()
        self._changed = threading.Condition()
        self._closed = False
        self._worker: threading.Thread | None = None

    def submit(self, config: dict, name: str) -> Job:
        with self._changed:
            if self._closed:
                raise ApiError(503, "the server is shutting down; no new jobs")
            if name in self._jobs or (self.runs_dir / name).exists():
                raise ApiError(409, f"a run or job named {name!r} already exists; choose another name")
            if len(self._waiting) >= self.max_queued:
                raise ApiError(429, f"the job queue is full ({len(self._waiting)} waiting, the most this server "
                                    "queues: --max-queued-jobs); wait for one to start or cancel one")
            job = Job(
                id=name,
                run_dir=self.runs_dir / name,
                config_path=self.jobs_dir / f"{name}.json",
                log_path=self.jobs_dir / f"{name}.log",
            )
            write_json(job.config_path, config)
            self._jobs[name] = job
            self._waiting.append(job)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="training-jobs", daemon=True)
                self._worker.start()
            self._changed.notify_all()
        return job

    def get(self, job_id: str) -> Job:
        with self._changed:
            if job_id not in self._jobs:
                raise ApiError(404, f"no job {quoted(job_id)}", sorted(self._jobs))
            return self._jobs[job_id]

    def all(self) -> list[Job]:
        with self._changed:
            return list(self._jobs.values())

    def cancel(self, job_id: str, wait_s: float = 30.0) -> Job:
        """Drop a waiting job, or ask a running one to checkpoint and stop (waiting up to ``wait_s``)."""
        job = self.get(job_id)
        with self._changed:
            if job.state in ENDED:
                raise ApiError(409, f"job {job_id!r} has already ended ({job.state}); only queued or running jobs can be cancelled")
            job.cancelled_by_user = True
            if job.state == "queued":
                self._waiting.remove(job)
                self._end(job, "cancelled", "cancelled before it started")
            elif not job.cancel_requested:  # a second SIGINT could cut the checkpoint the first one started
                job.process.send_signal(signal.SIGINT)
            job.cancel_requested = True
        job.done.wait(wait_s)
        return job

    def close(self) -> None:
        """Cancel waiting jobs, stop the running one with a checkpoint, and wait for it."""
        with self._changed:
            self._closed = True
            for job in list(self._waiting):
                self._waiting.remove(job)
                self._end(job, "cancelled", "cancelled before it started: the server stopped")
            running = [job for job in self._jobs.values() if job.state == "running"]
            for job in running:
                if not job.cancel_requested:
                    job.process.send_signal(signal.SIGINT)
                    job.cancel_requested = True
            self._changed.notify_all()
        for job in running:
            if not job.done.wait(STOP_TIMEOUT_S):
                self.kill()
                job.done.wait(STOP_TIMEOUT_S)

    def kill(self) -> None:
        """Stop every running trainer now, without a checkpoint (its process group, should it have started
        processes of its own)."""
        with self._changed:
            running = [job for job in self._jobs.values() if job.state == "running"]
        for job in running:
            try:
                os.killpg(job.process.pid, signal.SIGKILL)
            except ProcessLookupError:  # it ended meanwhile
                pass

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._waiting and not self._closed:
                    self._changed.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                try:
                    self._start(job)
                except OSError as error:
                    self._end(job, "failed", f"could not start the trainer: {error}")
                    continue
            exit_code = job.process.wait()
            with self._changed:
                job.exit_code = exit_code
                self._end(job, *self._outcome(job))

    def _start(self, job: Job) -> None:
        job.state, job.started_at = "running", now()
        with open(job.log_path, "wb") as log:
            # A session of its own: a Ctrl-C in the server's terminal reaches the server, which then stops
            # the trainer itself (with a checkpoint), instead of both racing for the same signal.
            job.process = subprocess.Popen(
                trainer_command(job), cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def _outcome(self, job: Job) -> tuple[str, str]:
        status, _ = run_folder.read_status(job.run_dir)
        if status.get("state") in ("finished", "interrupted", "failed"):
            return status["state"], status.get("message", "")
        if job.cancel_requested:
            return "cancelled", "stopped before training started"
        return "failed", f"the trainer exited with status {job.exit_code}: {last_line(job.log_path)}"

    def _end(self, job: Job, state: str, message: str) -> None:
        job.state, job.message, job.ended_at = state, message, now()
        if job.cancelled_by_user or state == "cancelled":  # its run folder, if any, keeps what it trained
            for path in (job.config_path, job.log_path):
                path.unlink(missing_ok=True)
        job.done.set()

    def describe(self, job: Job) -> dict:
        """What the page and ``GET /api/jobs/ID`` show: state, progress, latest losses and sample."""
        status = run_folder.read_status(job.run_dir)[0] if job.state != "queued" else {}
        metrics = run_folder.read_metrics(job.run_dir, METRICS_TAIL_BYTES)
        log_line = next((line for line in reversed(metrics) if all(key in line for key in LOSS_KEYS)), None)
        sample = run_folder.latest_sample(job.run_dir)
        return {
            "id": job.id,
            "state": job.state,
            "message": job.message or status.get("message", ""),
            "step": status.get("step", 0),
            "total_steps": status.get("total_steps"),
            "losses": {key: log_line[key] for key in LOSS_KEYS} if log_line else None,
            "latest_log": log_line,
            "sample": sample.name if sample else None,
            "queued_at": job.queued_at,
            "started_at": job.started_at,
            "ended_at": job.ended_at,
            "exit_code": job.exit_code,
        }
