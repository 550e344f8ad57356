"""The training loop: batches, steps, logging, samples, evaluation, checkpoints, clean stops.

Step ``s`` (counting from 0) draws everything random from the run's seed and ``s`` alone: its real
batches come from the permutation of epoch ``e`` seeded by (seed, e), its noise from (seed, s). With
the networks' own random state (dropout seeds, BatchNorm statistics) inside the checkpoint, a resumed
run repeats exactly the steps an uninterrupted one would have taken.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import time
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from infra.errors import UserError
from models import augment, builders, networks
from models.backends import make_train_step
from models.checkpoints import Checkpoints
from models.images import image_grid, to_model_range
from models.networks.spectral import count_spectral_layers, normalize_spectral_kernels
from models.outputs import RunOutputs
from models.run_folder import GENERATOR_FILE
from models.sampling import generate_uint8, latent_vectors, recompute_batch_norm_statistics

# Purposes of the random streams derived from the seed; distinct so no two streams coincide.
DATA_ORDER, STEP_NOISE, SAMPLE_NOISE, EVAL_NOISE, AUGMENT_NOISE, EMA_STATISTICS_NOISE = range(6)
EMA_STATISTICS_BATCHES = 16


class BatchSource:
    """The batches of every step, a pure function of (seed, step)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None, num_classes: int | None, config: dict):
        self.images = images
        self.labels = labels
        self.num_classes = num_classes or 1
        self.batch_size = config["batch_size"]
        self.n_critic = config["n_critic"]
        self.latent_dim = config["latent_dim"]
        self.seed = config["seed"]
        self.augment_uniforms = augment.uniforms_per_image(config["augment"]["policy"])
        self.ema_kimg, self.ema_rampup = config["ema_kimg"], config["ema_rampup"]
        self.output_activation = builders.output_activation(config)
        self.batches_per_epoch = max(len(images) // self.batch_size, 1)
        self._order_epoch, self._order = None, None

    def steps_for_epochs(self, epochs: int) -> int:
        return math.ceil(epochs * self.batches_per_epoch / self.n_critic)

    def _indices(self, batch_number: int) -> np.ndarray:
        epoch, position = divmod(batch_number, self.batches_per_epoch)
        if epoch != self._order_epoch:
            order = np.random.default_rng([self.seed, DATA_ORDER, epoch]).permutation(len(self.images))
            # Fewer images than a batch: repeat the shuffled images to fill it.
            self._order = np.resize(order, max(len(order), self.batch_size))
            self._order_epoch = epoch
        return self._order[position * self.batch_size:(position + 1) * self.batch_size]

    def ema_beta(self, step: int) -> float:
        """How much of the EMA generator step ``step`` keeps: half of it every ema_kimg thousand images,
        the half-life ramped up with the images seen (StyleGAN2-ADA)."""
        half_life_images = self.ema_kimg * 1000
        if self.ema_rampup is not None:
            half_life_images = min(half_life_images, (step + 1) * self.batch_size * self.ema_rampup)
        return 0.5 ** (self.batch_size / max(half_life_images, 1e-8))

    def batch(self, step: int) -> dict[str, np.ndarray]:
        indices = [self._indices(step * self.n_critic + critic_step) for critic_step in range(self.n_critic)]
        rng = np.random.default_rng([self.seed, STEP_NOISE, step])
        critic_shape, batch_shape = (self.n_critic, self.batch_size), (self.batch_size,)
        real_labels = (np.zeros(critic_shape, np.int32) if self.labels is None
                       else np.stack([self.labels[index] for index in indices]).astype(np.int32))
        batch = {
            "real_images": np.stack([to_model_range(self.images[index], self.output_activation) for index in indices]),
            "real_labels": real_labels,
            "critic_latent_vectors": latent_vectors(rng, self.n_critic * self.batch_size, self.latent_dim)
            .reshape(*critic_shape, self.latent_dim),
            "critic_fake_labels": rng.integers(0, self.num_classes, critic_shape, dtype=np.int32),
            "mixing_weights": rng.uniform(size=(*critic_shape, 1, 1, 1)).astype(np.float32),
            "random_latent_vectors": latent_vectors(rng, self.batch_size, self.latent_dim),
            "fake_labels": rng.integers(0, self.num_classes, batch_shape, dtype=np.int32),
        }
        if self.augment_uniforms:
            # A stream of its own, so turning augmentation on leaves every other draw of the step unchanged.
            augment_rng = np.random.default_rng([self.seed, AUGMENT_NOISE, step])
            per_image = (self.augment_uniforms,)
            batch["augment_real"] = augment_rng.random((*critic_shape, *per_image), dtype=np.float32)
            batch["augment_fake"] = augment_rng.random((*critic_shape, *per_image), dtype=np.float32)
            batch["augment_generated"] = augment_rng.random((*batch_shape, *per_image), dtype=np.float32)
        if self.ema_kimg is not None:
            batch["ema_beta"] = np.asarray(self.ema_beta(step), np.float32)  # a 0-d array: no retrace per value
        return batch


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
        self.batches = BatchSource(dataset.x, dataset.y if self.conditional else None, self.num_classes, config)
        self.total_steps = (config["steps"] if config["steps"] is not None
                            else self.batches.steps_for_epochs(config["epochs"]))
        self.sample_inputs = self._sample_inputs()
        self.metric = None if config["metric_evaluate"] == "none" else config["metric_evaluate"]
        self.best_value = None

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

    def sample_grid(self) -> np.ndarray:
        noise, labels = self.sample_inputs
        images = generate_uint8(self.shown_generator, noise, self._generator_labels(labels),
                                builders.output_activation(self.config))
        return image_grid(images, columns=self.config["sample_columns"])

    def run(self, resume: bool) -> int:
        """Train to ``total_steps``; returns the exit status (0 finished, 130 stopped by a signal)."""
        start_step = 0
        if resume and self.checkpoints.path("last") is not None:
            info = self.checkpoints.restore(self.variable_groups)
            start_step, self.best_value = info["step"], info.get("best")
            if start_step > self.total_steps:
                raise UserError(f"{self.run_dir}: its checkpoint is at step {start_step}, past the {self.total_steps} "
                                f"steps asked for; give --steps {start_step} or more")
        outputs = RunOutputs(self.run_dir, tensorboard=self.config["tensorboard"])
        if resume:
            outputs.drop_metrics_after(start_step)
        train_step = self.make_train_step()
        deadline = (None if self.config["time_limit_minutes"] is None
                    else time.monotonic() + 60 * self.config["time_limit_minutes"])
        evaluator = self._make_evaluator() if self.metric else None
        outputs.write_status("running", start_step, self.total_steps, "resumed" if start_step else "started")
        progress = tqdm(total=self.total_steps, initial=start_step, unit="step", desc="training",
                        disable=not self.show_progress, file=sys.stderr, dynamic_ncols=True)
        step, saved_step = start_step, start_step
        interval_start, interval_steps = time.perf_counter(), 0
        try:
            with StopRequest() as stop:
                while step < self.total_steps and stop.signal_name is None:
                    step_losses = train_step(self.batches.batch(step), regularize=self.regularizes(step))
                    bad = [name for name, value in step_losses.items() if not math.isfinite(value)]
                    if bad:
                        raise TrainingDiverged(f"{bad[0]} is {step_losses[bad[0]]} at step {step + 1}")
                    step += 1
                    interval_steps += 1
                    progress.update(1)
                    out_of_time = deadline is not None and time.monotonic() >= deadline
                    last_step = step == self.total_steps or out_of_time
                    if step % self.config["log_interval"] == 0 or last_step:
                        elapsed = time.perf_counter() - interval_start
                        record = {"step": step, **step_losses,
                                  "images_per_sec": round(interval_steps * self.config["batch_size"] / elapsed, 2)}
                        outputs.log(record)
                        outputs.write_status("running", step, self.total_steps)
                        progress.set_postfix(d_loss=f"{record['d_loss']:.3f}", g_loss=f"{record['g_loss']:.3f}",
                                             img_s=f"{record['images_per_sec']:.0f}")
                        interval_start, interval_steps = time.perf_counter(), 0
                    if step % self.config["sample_interval"] == 0 or last_step:
                        self._sync(train_step, step)
                        outputs.save_samples(step, self.sample_grid())
                    if evaluator is not None and (step % self.config["eval_interval"] == 0 or last_step):
                        self._sync(train_step, step)
                        self._evaluate(evaluator, step, outputs)
                    if step % self.config["checkpoint_interval"] == 0 or last_step:
                        self._sync(train_step, step)
                        self._save_checkpoint(step)
                        saved_step = step
                    if out_of_time:
                        print(f"\ntime limit of {self.config['time_limit_minutes']:g} minutes reached at step {step}",
                              file=sys.stderr)
                        break
            if stop.signal_name is not None:
                if saved_step != step:
                    self._sync(train_step, step)
                    self._save_checkpoint(step)
                outputs.write_status("interrupted", step, self.total_steps,
                                     f"stopped by {stop.signal_name}; resume with --resume {self.run_dir}")
                print(f"\nstopped by {stop.signal_name} at step {step}; checkpoint saved; resume with "
                      f"python -m models.train --resume {self.run_dir}", file=sys.stderr)
                return 130
            self._finish(outputs)
            outputs.write_status("finished", step, self.total_steps, f"exported {self.run_dir / GENERATOR_FILE}")
            return 0
        except TrainingDiverged as error:
            last = self.checkpoints.path("last")
            kept = (f"the last good checkpoint is {last} (step {self.checkpoints.read_info(last)['step']})"
                    if last else "no checkpoint was saved before it")
            message = f"training diverged: {error}; stopped, {kept}"
            outputs.write_status("failed", step, self.total_steps, message)
            raise UserError(message) from None
        finally:
            progress.close()
            outputs.close()

    def _sync(self, train_step, step: int) -> None:
        """Bring the Keras variables up to date before they are saved or sampled."""
        train_step.sync()
        if self.generator_ema is not None and self._synced_step != step:
            # The raw generator's batch-norm statistics do not fit the averaged weights (a mismatch that makes
            # the average draw worse than the raw generator): measure the average's own, as BigGAN does.
            rng = np.random.default_rng([self.config["seed"], EMA_STATISTICS_NOISE, step])
            count = EMA_STATISTICS_BATCHES * self.config["batch_size"]
            labels = rng.integers(0, self.num_classes, count) if self.gan.generator_conditional else None
            recompute_batch_norm_statistics(self.generator_ema, latent_vectors(rng, count, self.config["latent_dim"]),
                                            labels, batches=EMA_STATISTICS_BATCHES)
        if self.shown_generator is not self.trained_generator:
            for shown, trained in zip(self.shown_generator.variables, self.trained_generator.variables):
                shown.assign(trained)
            normalize_spectral_kernels(self.shown_generator)
        self._synced_step = step

    def _inference_copy(self, generator: keras.Model) -> keras.Model:
        """The generator to sample and export. JAX trains spectrally normalized kernels without storing the
        normalized ones, which inference reads; a copy gets them, so the checkpoint keeps the trained values
        and resume stays exact. Elsewhere the generator itself."""
        if keras.backend.backend() != "jax" or not count_spectral_layers(generator):
            return generator
        return builders.build_generator(self.config)

    def make_train_step(self):
        """The compiled step of this run's networks, optimizers, EMA generator and training state."""
        return make_train_step(self.gan, self.generator_optimizer, self.discriminator_optimizer,
                               self.generator_ema, self.training_state)

    def regularizes(self, step: int) -> bool:
        """Whether step ``step`` adds the lazy R1 penalty."""
        return bool(self.gan.r1_gamma) and step % self.config["r1_interval"] == 0

    def _save_checkpoint(self, step: int, slot: str = "last") -> None:
        self.checkpoints.save(self.variable_groups, {"step": step, "metric": self.metric, "best": self.best_value},
                              slot=slot)

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
        labels = np.arange(count) % self.num_classes if self.conditional else None
        fake_images = generate_uint8(self.shown_generator, latent_vectors(rng, count, self.config["latent_dim"]),
                                     self._generator_labels(labels), builders.output_activation(self.config))
        results = evaluator.evaluate(fake_images, fake_labels=labels)
        outputs.log({"step": step, **{name: float(value) for name, value in results.items()}})
        value = float(results[self.metric])
        if is_better(self.metric, value, self.best_value):
            self.best_value = value
            self._save_checkpoint(step, slot="best")


def export_generator(generator: keras.Model, path: Path) -> None:
    """Save the generator as a .keras file atomically (Keras needs the suffix, so the temp name keeps it)."""
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    generator.save(partial)
    os.replace(partial, path)


def configure_determinism(config: dict) -> None:
    keras.utils.set_random_seed(config["seed"])
    if config["deterministic"] and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
