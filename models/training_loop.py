"""The training loop: compiled calls of several steps, then logging, samples, evaluation and checkpoints.

Each call of the compiled step (:mod:`models.backends`) trains ``steps_per_call`` steps on the device
without waiting for the host: the losses stay there until the loop reads them at ``log_interval`` (and
before samples, evaluations and checkpoints), which is also when it checks them for NaN. Calls end where
periodic work needs the weights (sample grids, evaluations, checkpoints, the lazy R1 step), so that work
sees exactly the step it names. What every step draws is a pure function of (seed, step)
(:mod:`models.step_inputs`); with the networks' own random state in the checkpoint, a resumed run repeats
exactly the steps an uninterrupted one would have taken, however its steps were grouped into calls.

A run ends in one of four states in status.json: finished, interrupted (a signal; resume continues it),
failed (diverged, a full disk, bad data, an internal error: the message says which, in one line) or, only
when the process is killed outright, still running. Checkpoints hold finite values only
(:mod:`models.checkpoints`); a run whose weights stop being finite has diverged.
"""
from __future__ import annotations

import errno
import math
import os
import signal
import sys
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops
from tqdm import tqdm

from infra.errors import UserError
from models import builders, networks
from models.backends import (accelerator_present, compiled_inference, device_memory_bytes, is_lost_process_error, make_train_step,
                             process_count, process_index, seed_everything, share_from_first_process,
                             training_devices, trains_statelessly)
from models.checkpoints import OUT_OF_RANGE, BackgroundWriter, Checkpoints, NotFinite
from models.images import image_grid
from models.labels import default_labels
from models.networks.spectral import count_spectral_layers, normalize_spectral_kernels
from models.outputs import RunOutputs
from models.run_folder import GENERATOR_FILE, unlock_run_folder
from models.sample_health import MAX_IMAGES, SampleHealth, blank_data_hint, small_dataset_hint
from models.sampling import StandingStatistics, generate_uint8, latent_vectors
from models.step_inputs import EMA_STATISTICS_NOISE, EVAL_NOISE, SAMPLE_NOISE, DataOrder, StepInputs

EMA_STATISTICS_BATCHES = 16
STEPS_PER_CALL_ON_ACCELERATORS = 8  # enough to hide the per-call launch cost of a small step
DEVICE_DATA_SHARE = 0.25  # data_placement auto: the images may take this share of the device's memory
DEVICE_DATA_BYTES_UNKNOWN_MEMORY = 2 << 30  # ... or this much where the backend does not report its memory
# The config's options that space periodic work by minutes of training in place of a step interval.
INTERVAL_MINUTES = {"sample_interval": "sample_minutes", "checkpoint_interval": "checkpoint_minutes"}
# Failed writes a user can fix (free space, raise a quota or a file size limit, make the folder writable).
USER_FIXABLE_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


class StopRequest:
    """SIGINT / SIGTERM set a flag that the loop checks between steps, so a stop never splits a step."""

    def __init__(self):
        self.signal_name = None
        self._previous = {}

    def __enter__(self):
        for number in (signal.SIGINT, signal.SIGTERM):
            self._previous[number] = signal.signal(number, self._request)
        return self

    def _request(self, number, frame):
        self.signal_name = signal.Signals(number).name

    def __exit__(self, *exc_info):
        for number, handler in self._previous.items():
            signal.signal(number, handler)


class TrainingDiverged(Exception):
    pass


class NoOutputs:
    """The outputs of a process other than the first of a run: it writes nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class PendingMetrics:
    """The losses of the calls since the last read, still on the device; read and checked in one go."""

    def __init__(self, next_step: int, batch_size: int):
        self.batch_size = batch_size
        self._calls = []  # (first step, {name: (count,) device array})
        self._next_step = next_step
        self._since = (time.perf_counter(), next_step)

    def add(self, metrics: dict) -> None:
        count = len(next(iter(metrics.values())))
        self._calls.append((self._next_step, metrics))
        self._next_step += count

    def read(self, log_steps: list[int], through: int | None = None) -> list[dict]:
        """The records of ``log_steps`` (steps counted from 1), reading the calls that end at step ``through``
        or before (all of them when None; later calls stay pending). Raises TrainingDiverged, naming the step,
        if any step read has a loss that is not finite."""
        values = {}
        pending = [call for call in self._calls
                   if through is not None and call[0] + len(next(iter(call[1].values()))) > through]
        reading = [call for call in self._calls if not any(call is kept for kept in pending)]
        end = through if pending else self._next_step
        for first_step, metrics in reading:
            arrays = {name: ops.convert_to_numpy(value) for name, value in metrics.items()}
            for name, array in arrays.items():
                bad = np.flatnonzero(~np.isfinite(array))
                if bad.size:
                    checked = f"steps {reading[0][0] + 1}-{end} were checked together"
                    raise TrainingDiverged(f"{name} is {array[bad[0]]} at step {first_step + bad[0] + 1} ({checked})")
            for index in range(len(next(iter(arrays.values())))):
                values[first_step + index + 1] = {name: float(array[index]) for name, array in arrays.items()}
        self._calls = pending
        now, (since, since_step) = time.perf_counter(), self._since
        rate = round((end - since_step) * self.batch_size / max(now - since, 1e-9), 2)
        if log_steps:
            self._since = (now, end)
        return [{"step": step, **values[step], "images_per_sec": rate} for step in log_steps]


class Trainer:
    def __init__(self, config: dict, run_dir: Path, dataset, show_progress: bool = True):
        self.config = config
        self.run_dir = Path(run_dir)
        self.dataset = dataset
        self.show_progress = show_progress
        self.conditional = networks.needs_labels(config)
        self.num_classes = builders.num_classes(config)
        self.gan, self.generator_optimizer, self.discriminator_optimizer = builders.build_gan(config)
        # The generator people see (grids, evaluation, export): the EMA copy when there is one.
        self.generator_ema = builders.build_generator_ema(config, self.gan.generator)
        self.trained_generator = self.generator_ema or self.gan.generator
        self.shown_generator = self._inference_copy(self.trained_generator)
        self._synced_step = None
        self._grid_generator = None  # the shown generator compiled for the grids, made at the first grid
        self._ema_statistics = None  # the EMA generator's batch-norm recompute, made at the first sync
        self.training_state = {name: keras.Variable(value, dtype="float32", trainable=False, name=name)
                               for name, value in self.gan.initial_state().items()}
        self.variable_groups = {
            "generator": self.gan.generator.variables,
            "discriminator": self.gan.discriminator.variables,
            "generator_optimizer": self.generator_optimizer.variables,
            "discriminator_optimizer": self.discriminator_optimizer.variables,
        }
        # Only the groups a run has, so checkpoints of runs without them keep loading.
        if self.generator_ema is not None:
            self.variable_groups["generator_ema"] = self.generator_ema.variables
        if self.training_state:
            self.variable_groups["training_state"] = [self.training_state[name] for name in sorted(self.training_state)]
        self.checkpoints = Checkpoints(run_dir, config["keep_checkpoints"], config["keep_every"])
        self.checkpoint_writer = BackgroundWriter(self.checkpoints)
        self.devices = training_devices(config["devices"])
        device_count = len(self.devices) if self.devices else 1
        if config["batch_size"] % device_count:
            raise UserError(f"batch_size = {config['batch_size']}: must split evenly over the {device_count} devices "
                            f"this run trains on; allowed: a multiple of {device_count}, or fewer devices")
        self.process_count = process_count()
        self.writes = process_index() == 0  # process 0 alone writes checkpoints, samples and metrics
        self.lost_process = False
        self.data_order = DataOrder(len(dataset.x), config["batch_size"], config["n_critic"], config["seed"])
        self.step_inputs = StepInputs(config, self.num_classes, builders.output_activation(config))
        self.labels = (dataset.y.astype(np.int32) if self.conditional
                       else np.zeros(len(dataset.x), np.int32))  # zeros: ignored by unconditional networks
        self.data_on_device = self._data_on_device()
        self.steps_per_call = steps_per_call(config)
        self.total_steps = (config["steps"] if config["steps"] is not None
                            else self.data_order.steps_for_epochs(config["epochs"]))
        self.sample_inputs = self._sample_inputs()
        self.metric = None if config["metric_evaluate"] == "none" else config["metric_evaluate"]
        self.best_value = None
        spread = np.linspace(0, len(dataset.x) - 1, min(len(dataset.x), MAX_IMAGES)).astype(int)
        self.sample_health = SampleHealth(dataset.x[spread], config)
        self.sample_warning = None  # the latest grid's SampleWarning
        self.hints: list[str] = []  # what the start found (a small dataset), kept in status.json's warnings
        self._last_done: dict[str, float] = {}  # periodic work spaced by minutes: when each was last done

    def _sample_inputs(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Fixed noise for the sample grids, so successive grids show the same images improving."""
        rows = self.num_classes if self.conditional else self.config["sample_rows"]
        columns = self.config["sample_columns"]
        rng = np.random.default_rng([self.config["seed"], SAMPLE_NOISE])
        noise = latent_vectors(rng, rows * columns, self.config["latent_dim"])
        labels = np.repeat(np.arange(rows), columns) if self.conditional else None
        return noise, labels

    def _generator_labels(self, labels: np.ndarray | None) -> np.ndarray | None:
        return labels if self.gan.generator_conditional else None

    def sample_images(self) -> np.ndarray:
        """The images of the sample grid, uint8, in the grid's order."""
        noise, labels = self.sample_inputs
        if self._grid_generator is None:
            self._grid_generator = compiled_inference(self.shown_generator)
        return generate_uint8(self._grid_generator, noise, self._generator_labels(labels),
                              builders.output_activation(self.config))

    def sample_grid(self) -> np.ndarray:
        return image_grid(self.sample_images(), columns=self.config["sample_columns"])

    def run(self, resume: bool) -> int:
        """Train to ``total_steps``; returns the exit status (0 finished, 130 stopped by a signal).

        Whatever ends the training, status.json says so: a failure leaves it ``failed`` with a one-line reason,
        and a failure the user can fix (divergence, a full disk, labels the run has no class for) is raised as a
        one-line UserError. The run folder's lock (:func:`models.run_folder.lock_run_folder`) is given back."""
        try:
            return self._run(resume)
        finally:
            if self.writes:
                unlock_run_folder(self.run_dir)

    def _run(self, resume: bool) -> int:
        start_step = 0
        if resume and self.writes and self.checkpoints.path("last") is not None:
            info = self.checkpoints.restore(self.variable_groups)
            start_step, self.best_value = info["step"], info.get("best")
        elif resume and self.writes:
            print(f"resume: {self.run_dir} holds no checkpoint (it stopped before its first, or checkpoints/last "
                  "has no info.json); training starts at step 0", file=sys.stderr)
        self._use_configured_learning_rates()
        start_step = self._agree_with_first_process(start_step)
        if start_step > self.total_steps:
            raise UserError(f"{self.run_dir}: its checkpoint is at step {start_step}, past the {self.total_steps} "
                            f"steps asked for; give --steps {start_step} or more")
        outputs = RunOutputs(self.run_dir, tensorboard=self.config["tensorboard"]) if self.writes else NoOutputs()
        progress = tqdm(total=self.total_steps, initial=start_step, unit="step", desc="training",
                        disable=not self.show_progress, file=sys.stderr, dynamic_ncols=True)
        step, saved_step = start_step, start_step
        try:
            self._check_labels()
            if resume:
                outputs.drop_metrics_after(start_step)
            train_step = self.make_train_step()
            started = time.monotonic()
            self._last_done = {"samples": started, "checkpoint": started}
            limit_minutes = self.config["time_limit_minutes"]
            deadline = None if limit_minutes is None else started + 60 * limit_minutes
            evaluator = self._make_evaluator() if self.metric and self.writes else None
            outputs.write_status("running", start_step, self.total_steps, "resumed" if start_step else "started")
            hints = [small_dataset_hint(len(self.dataset.x), self.config, self.conditional),
                     blank_data_hint(self.dataset.x)] if self.writes else []
            self.hints = [hint for hint in hints if hint]
            for hint in self.hints:
                progress.write(hint, file=sys.stderr)
            if self.hints:
                outputs.set_warnings(self.hints)
            metrics = PendingMetrics(start_step, self.config["batch_size"])
            lagging = ([], start_step)  # log steps due at the end of the previous call, and that call's last step
            with StopRequest() as stop:
                while step < self.total_steps and stop.signal_name is None:
                    count = self.call_length(step)
                    metrics.add(train_step(step, count, self.regularizes(step), self.per_step_inputs(step, count)))
                    # This call is queued: the host may wait for the previous one without the device idling.
                    self._log(metrics, *lagging, outputs, progress)
                    step += count
                    progress.update(count)
                    out_of_time = deadline is not None and time.monotonic() >= deadline
                    last_step = step == self.total_steps or out_of_time
                    hooks = self._hooks_due(step, last_step)
                    logs = [done for done in range(step - count + 1, step + 1)
                            if done % self.config["log_interval"] == 0 or (done == step and last_step)]
                    lagging = ([], step)
                    if hooks:
                        # Samples and checkpoints need this step's weights: read the losses, check them, now.
                        self._log(metrics, logs, step, outputs, progress, read_all=True,
                                  durable="checkpoint" in hooks)
                    elif logs:
                        lagging = (logs, step)  # read after the next call is queued
                    if not self.writes:
                        hooks = set()  # process 0 alone samples, evaluates and saves
                    if "samples" in hooks:
                        self._sync(train_step, step)
                        images = self.sample_images()
                        # Drawn, encoded and written in a thread: the next call goes on meanwhile.
                        outputs.save_samples_in_background(step, images, self.config["sample_columns"])
                        self._check_samples(images, step, outputs, progress)
                    if "evaluation" in hooks and evaluator is not None:
                        self._sync(train_step, step)
                        self._evaluate(evaluator, step, outputs)
                    if "checkpoint" in hooks:
                        self._sync(train_step, step)
                        self._save_checkpoint(step)
                        saved_step = step
                    if out_of_time:
                        print(f"\ntime limit of {self.config['time_limit_minutes']:g} minutes reached at step {step}",
                              file=sys.stderr)
                        break
                self._log(metrics, *lagging, outputs, progress)
                # Still inside StopRequest: more stops may follow the first (a server killed outright sends one
                # per thread that ends), and one landing here must not cut the checkpoint.
                if stop.signal_name is not None:
                    if saved_step != step and self.writes:
                        metrics.read([])  # never save weights a NaN has reached
                        self._sync(train_step, step)
                        self._save_checkpoint(step)
                    self.checkpoint_writer.wait()
                    outputs.wait_for_writes()
                    outputs.write_status("interrupted", step, self.total_steps,
                                         f"stopped by {stop.signal_name}; resume with --resume {self.run_dir}")
                    print(f"\nstopped by {stop.signal_name} at step {step}; checkpoint saved; resume with "
                          f"python -m models.train --resume {self.run_dir}", file=sys.stderr)
                    return 130
            self.checkpoint_writer.wait()
            outputs.wait_for_writes()  # the last grid, before the progress GIF reads them all
            training_seconds = time.monotonic() - started
            if self.writes:
                self._finish(outputs)
            outputs.write_status("finished", step, self.total_steps, f"exported {self.run_dir / GENERATOR_FILE}",
                                 training_seconds=training_seconds)
            return 0
        except TrainingDiverged as error:
            self._settle_writes(outputs)
            message = self._divergence_message(error)
            self._write_failed(outputs, step, message)
            raise UserError(message) from None
        except UserError as error:
            self._settle_writes(outputs)
            self._write_failed(outputs, step, str(error))
            raise
        except OSError as error:
            self._settle_writes(outputs)
            if error.errno not in USER_FIXABLE_WRITE_ERRORS:
                self._write_failed(outputs, step, internal_error_line(error, step))
                raise
            message = self._write_error_message(error, getattr(error, "write_step", None) or step)
            self._write_failed(outputs, step, message)
            raise UserError(message) from None
        except Exception as error:
            self._settle_writes(outputs)
            if self.process_count == 1 or not is_lost_process_error(error):
                self._write_failed(outputs, step, internal_error_line(error, step))
                raise  # an internal error: its traceback is what a fix needs
            # Another process of the run died: say so in one line rather than with the runtime's dump.
            message = (f"training stopped at step {step}: another process of this run stopped "
                       f"({str(error).splitlines()[0][:200]}); resume all processes from the last checkpoint")
            outputs.write_status("failed", step, self.total_steps, message)
            print(f"models.train: error: {message}", file=sys.stderr)
            self.lost_process = True
            return 1
        finally:
            self._settle_writes(outputs)  # the run's last checkpoint is on disk before the process can exit
            progress.close()
            outputs.close()

    def _log(self, metrics: PendingMetrics, logs: list[int], through: int, outputs, progress,
             read_all: bool = False, durable: bool = False) -> None:
        """Read the losses of the calls through step ``through`` (the host waits for them here), check them, and
        write the records of ``logs``; status.json too when there are any (fsynced when ``durable``). Nothing
        when there are no ``logs``, unless ``read_all`` (weights about to be sampled or saved)."""
        if not logs and not read_all:
            return
        for record in metrics.read(logs, through):
            outputs.log(record)
            progress.set_postfix(d_loss=f"{record['d_loss']:.3f}", g_loss=f"{record['g_loss']:.3f}",
                                 img_s=f"{record['images_per_sec']:.0f}")
        if logs:
            outputs.write_status("running", through, self.total_steps, durable=durable)

    def _settle_writes(self, outputs) -> None:
        """Let the checkpoint and grid writes in flight finish before the run reports how it ended. Their own
        errors, if any, are not raised: the error being handled is the one the run ends with."""
        self.checkpoint_writer.settle()
        outputs.settle_writes()

    def _agree_with_first_process(self, start_step: int) -> int:
        """With several processes, every one continues from process 0's weights, state and step (the others need
        no copy of the checkpoint)."""
        if self.process_count == 1:
            return start_step
        variables = [variable for group in self.variable_groups.values() for variable in group]
        shared = share_from_first_process([np.asarray(variable) for variable in variables]
                                          + [np.asarray(start_step, np.int64)])
        for variable, value in zip(variables, shared):
            variable.assign(value)
        return int(shared[-1])

    def _sync(self, train_step, step: int) -> None:
        """Bring the Keras variables up to date before they are saved or sampled."""
        train_step.sync()
        if self.generator_ema is not None and self._synced_step != step:
            # The raw generator's batch-norm statistics do not fit the averaged weights (a mismatch that makes
            # the average draw worse than the raw generator): measure the average's own, as BigGAN does.
            rng = np.random.default_rng([self.config["seed"], EMA_STATISTICS_NOISE, step])
            count = EMA_STATISTICS_BATCHES * self.config["batch_size"]
            labels = rng.integers(0, self.num_classes, count) if self.gan.generator_conditional else None
            if self._ema_statistics is None:
                self._ema_statistics = StandingStatistics(self.generator_ema)  # compiled once, at the first sync
            self._ema_statistics.recompute(latent_vectors(rng, count, self.config["latent_dim"]), labels,
                                           batches=EMA_STATISTICS_BATCHES)
        if self.shown_generator is not self.trained_generator:
            for shown, trained in zip(self.shown_generator.variables, self.trained_generator.variables):
                shown.assign(trained)
            normalize_spectral_kernels(self.shown_generator)
        self._synced_step = step

    def _inference_copy(self, generator: keras.Model) -> keras.Model:
        """The generator to sample and export. A backend that trains statelessly (JAX) trains spectrally
        normalized kernels without storing the normalized ones, which inference reads; a copy gets them, so the
        checkpoint keeps the trained values and resume stays exact. Elsewhere the generator itself."""
        if not trains_statelessly() or not count_spectral_layers(generator):
            return generator
        return builders.build_generator(self.config)

    def make_train_step(self):
        """The compiled call of this run's networks, optimizers, EMA generator, training state and data."""
        dataset = {"images": self.dataset.x, "labels": self.labels} if self.data_on_device else None
        return make_train_step(self.gan, self.generator_optimizer, self.discriminator_optimizer,
                               self.generator_ema, self.training_state, self.step_inputs, dataset, self.devices)

    def _data_on_device(self) -> bool:
        choice = self.config["data_placement"]
        if choice != "auto":
            return choice == "device"
        memory = device_memory_bytes()
        if memory is None and not accelerator_present():
            return True  # the "device" is the CPU: the images are in its memory already
        limit = DEVICE_DATA_SHARE * memory if memory else DEVICE_DATA_BYTES_UNKNOWN_MEMORY
        return self.dataset.x.nbytes <= limit

    def per_step_inputs(self, first_step: int, count: int) -> dict[str, np.ndarray]:
        """What the host sends for a call: the images' indices, or the images themselves (data on the host)."""
        indices = self.data_order.indices(first_step, count)
        if self.data_on_device:
            return {"indices": indices}
        return {"images": self.dataset.x[indices], "labels": self.labels[indices]}

    def call_length(self, step: int) -> int:
        """Steps in the call that starts at ``step``: steps_per_call, or 1 where a boundary (weights needed,
        an R1 step, the end) comes sooner. Each call length is a program compiled anew (seconds on a GPU), so
        steps before a boundary go one at a time: a run compiles two lengths at most, whatever its intervals."""
        # Grids and checkpoints spaced by minutes fall at the end of whichever call passes the time: no boundary.
        intervals = [self.config[key] for key in ("sample_interval", "checkpoint_interval")
                     if self.config.get(INTERVAL_MINUTES[key]) is None]
        if self.metric:
            intervals.append(self.config["eval_interval"])
        if self.gan.r1_gamma:
            intervals.append(self.config["r1_interval"])  # a regularized step starts its call
        next_boundary = min([self.total_steps] + [(step // interval + 1) * interval for interval in intervals])
        return self.steps_per_call if next_boundary - step >= self.steps_per_call else 1

    def _hooks_due(self, step: int, last_step: bool) -> set[str]:
        """The periodic work due after ``step``: each every its interval of steps, or, where the config gives
        sample_minutes / checkpoint_minutes, once that much time has passed since the last (or the start)."""
        now = time.monotonic()
        due = set()
        for name, key in (("samples", "sample_interval"), ("checkpoint", "checkpoint_interval"),
                          ("evaluation", "eval_interval")):
            minutes = self.config.get(INTERVAL_MINUTES.get(key, ""))
            if last_step or (step % self.config[key] == 0 if minutes is None
                             else now - self._last_done.get(name, now) >= 60 * minutes):
                due.add(name)
                self._last_done[name] = now
        return due

    def regularizes(self, step: int) -> bool:
        """Whether step ``step`` adds the lazy R1 penalty."""
        return bool(self.gan.r1_gamma) and step % self.config["r1_interval"] == 0

    def _save_checkpoint(self, step: int, slot: str = "last") -> None:
        """Copy the weights to the host and write them in the background (:class:`BackgroundWriter`)."""
        try:
            self.checkpoint_writer.save(self.variable_groups,
                                        {"step": step, "metric": self.metric, "best": self.best_value}, slot=slot)
        except NotFinite as error:
            raise TrainingDiverged(f"after step {step}, {error}") from None

    def _use_configured_learning_rates(self) -> None:
        """The optimizers' learning rates are variables that a checkpoint restores; the config's win, so that
        ``--resume RUN --set generator.optimizer.learning_rate=...`` changes them."""
        for role, optimizer in (("generator", self.generator_optimizer),
                                ("discriminator", self.discriminator_optimizer)):
            optimizer.learning_rate = self.config[role]["optimizer"]["learning_rate"]

    def _check_labels(self) -> None:
        if not self.conditional or not len(self.labels):
            return
        low, high = int(self.labels.min()), int(self.labels.max())
        if low < 0 or high >= self.num_classes:
            bad = low if low < 0 else high
            names = self.config.get("class_names") or []
            raise UserError(f"{self.config['data_path']}: label {bad} is outside the run's {self.num_classes} classes "
                            f"({', '.join(map(str, names[:10]))}{', ...' if len(names) > 10 else ''}); allowed: "
                            f"labels 0 to {self.num_classes - 1}, one per class name")

    def _check_samples(self, images: np.ndarray, step: int, outputs: RunOutputs, progress) -> None:
        """Warn, once per kind in the log and in status.json for as long as it lasts, when the grid looks like a
        failing run (:mod:`models.sample_health`)."""
        warning = self.sample_health.check(images, step)
        if warning and warning.kind != getattr(self.sample_warning, "kind", None):
            progress.write(warning.line, file=sys.stderr)
        self.sample_warning = warning
        outputs.set_warnings(self.hints + ([warning.line] if warning else []))

    def _divergence_message(self, error: TrainingDiverged) -> str:
        """One line: what diverged, the newest checkpoint it can resume from, and what to change first."""
        rates = {role: self.config[role]["optimizer"]["learning_rate"] for role in ("generator", "discriminator")}
        now = ", ".join(f"{role} {rate:g}" for role, rate in rates.items())
        lower = " ".join(f"--set {role}.optimizer.learning_rate={rate / 10:g}" for role, rate in rates.items())
        good = self.checkpoints.newest_finite()
        if good is None:
            return (f"training diverged: {error}; stopped before any checkpoint with finite values was saved; "
                    f"start a new run with lower learning rates (now {now}), e.g. {lower}")
        older = "" if good == self.checkpoints.path("last") else " (remove the newer checkpoint folders to resume it)"
        found = (f"training diverged: {error}; stopped; the last checkpoint whose every variable is finite is {good} "
                 f"(step {self.checkpoints.read_info(good)['step']}){older}")
        largest = self.checkpoints.largest_magnitude(good)
        if largest > OUT_OF_RANGE:
            return (f"{found}, but its values are already out of range (largest {largest:.3g}) and would diverge "
                    f"again whatever the learning rate: start a new run with lower learning rates (now {now}), "
                    f"e.g. {lower}")
        return (f"{found}; resuming it unchanged repeats this divergence: resume with lower learning rates (now "
                f"{now}), e.g. python -m models.train --resume {self.run_dir} {lower}")

    def _write_error_message(self, error: OSError, step: int) -> str:
        last = self.checkpoints.path("last")
        kept = (f"the last checkpoint {last} (step {self.checkpoints.read_info(last)['step']}) is intact"
                if last is not None else "no checkpoint had been saved yet")
        return (f"{self.run_dir}: could not write {error.filename or 'a file'} at step {step} ({error.strerror}); "
                f"{kept}; free space (or fix the folder's permissions) and continue with --resume {self.run_dir}")

    def _write_failed(self, outputs: RunOutputs, step: int, message: str) -> None:
        """status.json says ``failed``, if it can be written at all (a full disk may refuse this too)."""
        try:
            outputs.write_status("failed", step, self.total_steps, message)
        except OSError as error:
            print(f"could not mark {self.run_dir} failed in its status.json ({error.strerror})", file=sys.stderr)

    def _finish(self, outputs: RunOutputs) -> None:
        export_generator(self.shown_generator, self.run_dir / GENERATOR_FILE)
        outputs.plot_losses()
        outputs.make_progress_gif()

    def _make_evaluator(self):
        from evaluation.evaluator import Evaluator

        rng = np.random.default_rng([self.config["seed"], EVAL_NOISE])
        count = min(self.config["eval_samples"], len(self.dataset.x))
        chosen = np.sort(rng.choice(len(self.dataset.x), count, replace=False))
        real_labels = self.dataset.y[chosen] if self.dataset.y is not None else None
        return Evaluator(self.dataset.x[chosen], [self.metric], real_labels=real_labels,
                         class_names=self.dataset.class_names, progress=False)

    def _evaluate(self, evaluator, step: int, outputs: RunOutputs) -> None:
        from evaluation.metrics import is_better

        rng = np.random.default_rng([self.config["seed"], EVAL_NOISE, step])
        count = self.config["eval_samples"]
        labels = (default_labels(count, self.num_classes, self.config.get("class_shares"))
                  if self.conditional else None)
        fake_images = generate_uint8(self.shown_generator, latent_vectors(rng, count, self.config["latent_dim"]),
                                     self._generator_labels(labels), builders.output_activation(self.config))
        results = evaluator.evaluate(fake_images, fake_labels=labels)
        outputs.log({"step": step, **{name: float(value) for name, value in results.items()}})
        value = float(results[self.metric])
        if is_better(self.metric, value, self.best_value):
            self.best_value = value
            self._save_checkpoint(step, slot="best")


def internal_error_line(error: BaseException, step: int) -> str:
    """status.json's one line for an error no user input explains (a backend error, a bug)."""
    first_line = (str(error).strip().splitlines() or [""])[0][:300]
    return f"internal error at step {step}: {type(error).__name__}: {first_line}"


def steps_per_call(config: dict) -> int:
    """Training steps in one compiled call: the config's, else chosen for the device."""
    return config["steps_per_call"] or (STEPS_PER_CALL_ON_ACCELERATORS if accelerator_present() else 1)


def export_generator(generator: keras.Model, path: Path) -> None:
    """Save the generator as a .keras file atomically (Keras needs the suffix, so the temp name keeps it)."""
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    generator.save(partial)
    os.replace(partial, path)


def configure_determinism(config: dict) -> None:
    seed_everything(config["seed"], config["deterministic"])
