"""What a run writes for people to look at: status, metrics, sample grids, plots, TensorBoard."""
from __future__ import annotations

import datetime
import io
import json
from pathlib import Path

import numpy as np

from infra.atomic import atomic_write, write_json, write_text
from models.background_writer import BackgroundWriter
from models.images import image_grid, png_bytes
from models.run_folder import METRICS_FILE, SAMPLE_GLOB, SAMPLES_DIR, STATUS_FILE, read_metrics
from models.tensorboard_events import EventWriter

__all__ = ["RunOutputs", "read_metrics"]


class RunOutputs:
    def __init__(self, run_dir: str | Path, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.samples_dir = self.run_dir / SAMPLES_DIR
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        self._events = EventWriter(self.run_dir / "tensorboard") if tensorboard else None
        # Draws, encodes and writes the grids handed over by save_samples_in_background, one at a time.
        self._sample_writer = BackgroundWriter("samples")
        self.warnings: list[str] = []
        self._status: dict | None = None

    def write_status(self, state: str, step: int, total_steps: int, message: str = "",
                     training_seconds: float | None = None, durable: bool = True) -> None:
        """``training_seconds``, on the finished status: how long this invocation's training loop ran, from its
        start (where a time limit starts counting) to its last step's grid and checkpoint. ``warnings``, while
        there are any (:meth:`set_warnings`): one line each, what looks wrong with the run and what to try.
        ``durable=False`` skips the fsync (:func:`infra.atomic.atomic_write`): for the log steps' updates, which
        the next one replaces; a state change and a checkpoint's step are written durably."""
        status = {"state": state, "step": step, "total_steps": total_steps, "message": message,
                  "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        if training_seconds is not None:
            status["training_seconds"] = round(training_seconds, 2)
        if self.warnings:
            status["warnings"] = list(self.warnings)
        write_json(self.run_dir / STATUS_FILE, status, durable=durable)
        self._status = status

    def set_warnings(self, warnings: list[str]) -> None:
        """Replace the run's warnings; status.json shows them at once when they change."""
        if warnings == self.warnings:
            return
        self.warnings = list(warnings)
        if self._status is not None:
            self.write_status(self._status["state"], self._status["step"], self._status["total_steps"],
                              self._status["message"], self._status.get("training_seconds"))

    def log(self, record: dict) -> None:
        """Append one line to metrics.jsonl and its numbers to TensorBoard's scalars. A grid still being written
        goes into the event file first, as it would have without the background writer (so the event file is
        written by one thread at a time, in the same order); its error, if it failed, is raised here."""
        with open(self.run_dir / METRICS_FILE, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._events is not None:
            self._sample_writer.wait()
            self._events.scalars(record["step"], {name: value for name, value in record.items() if name != "step"})
            self._events.flush()

    def drop_metrics_after(self, step: int) -> None:
        """On resume, forget the lines of steps the run will redo (they came after its last checkpoint)."""
        records = [record for record in read_metrics(self.run_dir) if record["step"] <= step]
        write_text(self.run_dir / METRICS_FILE, "".join(json.dumps(record) + "\n" for record in records))

    def save_samples(self, step: int, grid: np.ndarray) -> Path:
        """The grid as samples/step_XXXXXX.png (atomic, not fsynced: a grid is a view of the run, which its
        checkpoints keep durably) and in TensorBoard, after the grid being written in the background, if any."""
        self._sample_writer.wait()
        return self._write_samples(step, grid)

    def _write_samples(self, step: int, grid: np.ndarray) -> Path:
        path = self._sample_path(step)
        encoded = png_bytes(grid)  # once for both: a grid's PNG takes longer to encode than the step it follows
        with atomic_write(path, durable=False) as handle:
            handle.write(encoded)
        if self._events is not None:
            self._events.image("samples", step, grid, png=encoded)
            self._events.flush()
        return path

    def save_samples_in_background(self, step: int, images: np.ndarray, columns: int) -> Path:
        """:meth:`save_samples` of the grid of ``images`` (uint8, the grid's order; the caller does not change
        them afterwards), drawn, encoded and written in a thread while training goes on. It waits for the grid
        before it, raising that one's error if its write failed; :meth:`wait_for_writes` waits for this one.
        Returns the path the grid will have."""
        self._sample_writer.submit(lambda: self._write_samples(step, image_grid(images, columns=columns)), step=step)
        return self._sample_path(step)

    def _sample_path(self, step: int) -> Path:
        return self.samples_dir / f"step_{step:06d}.png"

    def wait_for_writes(self) -> None:
        """Block until the grid being written is on disk and in TensorBoard; raise its error, if it failed."""
        self._sample_writer.wait()

    def settle_writes(self) -> None:
        """Let the grid being written finish, dropping its error: for a run that already ends with another one."""
        self._sample_writer.settle()

    def plot_losses(self) -> Path | None:
        records = [record for record in read_metrics(self.run_dir) if "d_loss" in record]
        if not records:
            return None
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot

        figure, axes = pyplot.subplots(figsize=(8, 4.5))
        steps = [record["step"] for record in records]
        for name in ("d_loss", "g_loss"):
            axes.plot(steps, [record[name] for record in records], label=name)
        axes.set_xlabel("step")
        axes.set_ylabel("loss")
        axes.legend()
        axes.grid(alpha=0.3)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        pyplot.close(figure)
        path = self.run_dir / "loss.png"
        with atomic_write(path) as handle:
            handle.write(buffer.getvalue())
        return path

    def make_progress_gif(self, frame_seconds: float = 0.4) -> Path | None:
        import imageio.v3 as iio

        frames = [iio.imread(path) for path in sorted(self.samples_dir.glob(SAMPLE_GLOB))]
        if not frames:
            return None
        path = self.run_dir / "progress.gif"
        with atomic_write(path) as handle:
            handle.write(iio.imwrite("<bytes>", np.stack(frames), extension=".gif",
                                     duration=int(frame_seconds * 1000), loop=0))
        return path

    def close(self) -> None:
        """Wait for the grid being written (raising its error, once the event file is closed)."""
        try:
            self._sample_writer.wait()
        finally:
            if self._events is not None:
                self._events.close()
