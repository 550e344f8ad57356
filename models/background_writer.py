"""Host work that follows a training step (writing a checkpoint, drawing and saving a sample grid) done in a
thread while training goes on.

One :class:`BackgroundWriter` per kind of write: at most one job of that kind is in flight, and jobs run in the
order they were handed over (a job waits for the one before it), so files appear in the order a synchronous run
writes them. A job's error is kept and raised in the training thread by the next :meth:`~BackgroundWriter.submit`
or :meth:`~BackgroundWriter.wait`, the calls the training loop already handles errors around; the step the job
was for is set on the error as ``write_step``, for the run's one-line report.
"""
from __future__ import annotations

import threading
from typing import Callable


class BackgroundWriter:
    """Runs write jobs in a thread, one at a time, in the order they were submitted."""

    def __init__(self, kind: str):
        self.kind = kind  # names the thread, for a stack dump
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, job: Callable[[], object], step: int | None = None) -> None:
        """Wait for the job in flight (raising its error, if it failed), then start ``job``. Whatever ``job``
        reads must be the caller's to hand over: training may go on changing anything else."""
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(job, step), name=f"{self.kind}-{step}", daemon=True)
        self._thread.start()

    def _run(self, job: Callable[[], object], step: int | None) -> None:
        try:
            job()
        except BaseException as error:  # raised again in the training thread, which reports it
            error.write_step = step
            self._error = error

    def wait(self) -> None:
        """Block until the job in flight is done; raise its error, if it failed (once: the writer is usable
        again afterwards)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def settle(self) -> None:
        """Let the job in flight finish, dropping its error: for a run that already ends with another one."""
        try:
            self.wait()
        except Exception:
            pass

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
