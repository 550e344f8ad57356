"""Training speed that tells the truth: the project's trainer beside a bare compiled step of the same networks.

    python bench/train_speed.py --config configs/logos_dcgan.json --batch 64 --precision float32 --steps 20

For each backend, in one process, and each (precision, batch size):

- trainer: ``models.training_loop.Trainer(...).run()`` for warm-up + timed steps, samples, checkpoints and
  evaluation pushed past the end, TensorBoard off; images/s comes from the ``images_per_sec`` of the records
  in the run's ``metrics.jsonl`` after the warm-up (the first records hold compilation). Nothing else of the
  trainer is read, so the bench measures whatever the trainer does, old or new.
- trainer_outputs (``--outputs-every N``): the same trainer with its periodic work on, as in a user's run:
  sample grids, checkpoints and log records (TensorBoard on) every N steps. Its first two rounds are warm-up
  (the first grid compiles the generator's inference), so each timed record holds one round of outputs.
- bare: the same networks and optimizers (``models.builders.build_gan``) and the same uint8 images put on the
  device once; one compiled call per step that gathers a random batch and draws the noise on the device
  (JAX: ``stateless_call`` + ``value_and_grad`` + ``stateless_apply`` in one ``jax.jit`` with donated state;
  TensorFlow: ``tf.function`` with GradientTape, the faster of XLA and plain graph). The config's loss,
  n_critic, gradient penalty and weight clipping; the discriminator scores real and generated batches
  separately and the generator step draws fresh noise, as the trainer's step does.

- bare_fused: the bare step's ``steps_per_call`` steps (the trainer's: the config's, else 8 on an accelerator and
  1 on a CPU) in one compiled call, ``lax.scan`` on JAX and a ``tf.while_loop`` (``tf.range`` in a
  ``tf.function``) on TensorFlow: the fastest the device runs these networks, with no launch between steps.

All count generator steps x batch size per second (a step holds n_critic discriminator updates).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra import cli  # noqa: E402  (after the path insert, so the script runs from anywhere)
from infra.errors import UserError  # noqa: E402
from models.config.limits import BACKENDS, PRECISIONS  # noqa: E402

DEFAULT_BATCHES = (64, 256, 1024)
DEFAULT_PRECISIONS = ("float32", "bfloat16")
TIMED_RECORDS = 4  # trainer log records over the timed steps: enough to average, few enough to stay cheap
SYNTHETIC_IMAGES = 2048
SYNTHETIC_CLASSES = 10
NAMED_SHAPES = {"fashion_mnist": (28, 28, 1), "mnist": (28, 28, 1)}
DEFAULT_OUTPUTS_EVERY = 20
COLUMNS = ("backend", "device", "batch", "precision", "calls", "trainer img/s", "outputs img/s", "bare img/s",
           "fused img/s", "trainer/bare", "trainer/fused", "outputs/trainer")
TABLE_HEADER = (f"{COLUMNS[0]:<11} {COLUMNS[1]:<24} {COLUMNS[2]:>6} {COLUMNS[3]:<9} {COLUMNS[4]:>5} "
                f"{COLUMNS[5]:>13} {COLUMNS[6]:>13} {COLUMNS[7]:>10} {COLUMNS[8]:>11} {COLUMNS[9]:>12} "
                f"{COLUMNS[10]:>13} {COLUMNS[11]:>15}")

DESCRIPTION = """\
Training speed of a config: the project's trainer (models.training_loop.Trainer) beside a bare compiled step of
the same networks, optimizers and data, in one process per backend, for each batch size and precision.

Prints one row per (backend, batch, precision): the device, the steps per compiled call, the trainer's
images/s (from its metrics.jsonl, warm-up records dropped), the same trainer with samples, checkpoints and logs
every --outputs-every steps, the bare step's images/s (one step per call), the fused bare step's (the trainer's
steps per call in one compiled loop), and the ratios trainer/bare, trainer/fused and outputs/trainer. Images/s counts generator steps x batch
size. The config's data is used when present; otherwise synthetic uint8 images of the config's size (the
output says so). With more than one accelerator on JAX it also measures the trainer on all of them (the config's
'devices') and prints the scaling efficiency, img/s on N devices / (N x img/s on 1), at the same global batch.

The bare step does the config's loss, n_critic, gradient penalty and weight clipping; it leaves out augmentation,
R1, LeCam, the EMA generator and top-k training, and the output says so when the config uses them. Each
backend's first line names its device, the data and the load average (on a shared machine the figures are lower
bounds).

The defaults (3 batch sizes x 2 precisions x 2 backends) are meant for a GPU; on a CPU pick one batch and
float32 (bfloat16 is emulated on most CPUs and slower than float32 there).
"""
EPILOG = """\
examples:
  python bench/train_speed.py --config configs/logos_dcgan.json --batch 64 --precision float32 --steps 20
  python bench/train_speed.py --config configs/cgan_fashion_mnist.json --data-dir ../shared/data/fashion-mnist-8k \\
      --backend jax --batch 64 --precision float32
  python bench/train_speed.py --config configs/dcgan64_reference.json --backend jax --steps 200 --warmup 20 \\
      --json bench/out/train_speed.json
  python bench/train_speed.py --config configs/logos_wgan_gp.json --batch 64 128 --steps 10 --set seed=1

Only what is measured is printed: the bare step is the speed the hardware gives these networks with no training
loop around them, so trainer/bare near 1 means the loop costs nothing.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python bench/train_speed.py", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/logos_dcgan.json", metavar="FILE",
                        help="training config (default: %(default)s)")
    parser.add_argument("--backend", choices=(*BACKENDS, "both"), default="both",
                        help="Keras backend; both runs each in its own process (default: %(default)s)")
    parser.add_argument("--batch", dest="batches", type=int, nargs="+", default=list(DEFAULT_BATCHES), metavar="N",
                        help="batch sizes (default: %s)" % " ".join(map(str, DEFAULT_BATCHES)))
    parser.add_argument("--precision", dest="precisions", nargs="+", default=list(DEFAULT_PRECISIONS),
                        metavar="P", help=f"precisions, of {', '.join(PRECISIONS)} "
                                          f"(default: {' '.join(DEFAULT_PRECISIONS)})")
    parser.add_argument("--steps", type=int, default=20,
                        help="timed generator steps of each measurement (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=5,
                        help="untimed steps first, compilation included (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a config option, as in models.train (repeatable)")
    parser.add_argument("--data", metavar="SOURCE", help="training data, overrides the config's data_path")
    parser.add_argument("--data-dir", metavar="DIR", help="local copy of fashion_mnist / mnist, as in models.train")
    parser.add_argument("--outputs-every", type=int, default=DEFAULT_OUTPUTS_EVERY, metavar="N",
                        help="also time the trainer with sample grids, checkpoints and log records every N steps "
                             "(the 'outputs' column); 0 leaves it out (default: %(default)s)")
    parser.add_argument("--json", dest="json_path", metavar="FILE",
                        help="also write the rows to FILE as JSON (img/s in trainer, trainer_outputs, bare, "
                             "bare_fused)")
    return parser


# --- input checks (before Keras loads) ---

def check_arguments(args) -> None:
    from models.config import MAX_BATCH_SIZE

    for batch in args.batches:
        if not 1 <= batch <= MAX_BATCH_SIZE:
            raise UserError(f"--batch {batch}: must be 1 to {MAX_BATCH_SIZE}")
    for precision in args.precisions:
        if precision not in PRECISIONS:
            raise UserError(f"--precision {precision}: not a precision; allowed: {', '.join(PRECISIONS)}")
    if args.steps < 1:
        raise UserError(f"--steps {args.steps}: must be at least 1")
    if args.warmup < 1:
        raise UserError(f"--warmup {args.warmup}: must be at least 1 (the first step compiles)")
    if args.outputs_every < 0:
        raise UserError(f"--outputs-every {args.outputs_every}: must be 0 (leave it out) or a number of steps")
    if args.json_path:
        from infra.output_paths import check_output_file

        check_output_file(args.json_path, "--json")


def load_raw_config(args) -> dict:
    """The config with --set, --data and --data-dir applied, checked by resolving it once."""
    from models import config as configs

    raw = configs.load_config(args.config)
    for assignment in args.overrides:
        raw = configs.apply_override(raw, assignment)
    if args.data:
        raw["data_path"] = args.data
    if args.data_dir:
        raw["data_dir"] = args.data_dir
    configs.resolve({**raw, "batch_size": args.batches[0], "precision": args.precisions[0]}, args.config)
    for key in ("class_loss_weight", "reconstruction_weight"):
        if raw.get(key):
            # The bare step is the plain GAN step; timing a trainer with more work against it would flatter neither.
            raise UserError(f"{args.config}: {key} is not in the bare step this bench compares against; "
                            f"allowed: 0 (remove it, or pass --set {key}=0)")
    if not raw.get("data_path"):
        raise UserError(f"{args.config}: no training data; set data_path in the config or pass --data")
    return raw


# --- data ---

def bench_dataset(config: dict):
    """(dataset, note): the config's images, or synthetic uint8 images of its size when they are absent."""
    from models.data import NAMED_DATASETS
    from models.train import load_data

    source = config["data_path"]
    local = not (source in NAMED_DATASETS or source.startswith("s3://"))
    if local and not Path(source).exists():
        return synthetic_dataset(config, f"{source} is absent")
    try:
        dataset = load_data(config)
    except UserError as error:
        if local:
            raise
        return synthetic_dataset(config, str(error))
    return dataset, f"{source}: {len(dataset.x)} images of {'x'.join(map(str, dataset.image_shape))}"


def synthetic_dataset(config: dict, reason: str):
    import numpy as np

    from models import networks
    from preprocessing.dataset import Dataset

    shape = synthetic_shape(config)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (SYNTHETIC_IMAGES, *shape), dtype=np.uint8)
    labelled = networks.needs_labels(config) or config["data_path"] in NAMED_SHAPES
    y = rng.integers(0, SYNTHETIC_CLASSES, SYNTHETIC_IMAGES) if labelled else None
    names = [str(index) for index in range(SYNTHETIC_CLASSES)] if labelled else None
    note = (f"synthetic data ({reason}): {SYNTHETIC_IMAGES} random uint8 images of {'x'.join(map(str, shape))}"
            + (f", {SYNTHETIC_CLASSES} classes" if labelled else ""))
    return Dataset(x=x, y=y, class_names=names, meta={"source": "synthetic"}), note


def synthetic_shape(config: dict) -> tuple[int, int, int]:
    """The config's image size; else the named dataset's, or the size a packed file's name ends in (_56.npz)."""
    source = config["data_path"]
    height, width, channels = NAMED_SHAPES.get(source, (None, None, 3))
    if height is None:
        match = re.search(r"_(\d+)$", Path(source).stem)
        height = width = int(match.group(1)) if match else None
    if config["image_size"]:
        height = width = config["image_size"]
    if height is None:
        raise UserError(f"{source}: absent, and the config gives no image size to make synthetic images of; "
                        "pass --set image_size=N or --data with a dataset that exists")
    return height, width, channels


# --- precision ---

@contextlib.contextmanager
def dtype_policy(name: str | None):
    """Keras' global dtype policy set to ``name`` while the block runs (nothing when None)."""
    import keras

    if name is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def policy_the_bench_sets(config: dict) -> str | None:
    """None when models.builders builds the config's precision itself; else the mixed policy that gives it.

    The precision option is newer than some builders: one that ignores it would compare a float32 trainer with
    a float32 bare step under a bfloat16 label."""
    from models import builders

    precision = config["precision"]
    if precision == "float32":
        return None
    generator = builders.build_generator(config)
    if any(getattr(layer, "compute_dtype", None) == precision for layer in generator.layers):
        return None
    return f"mixed_{precision}"


# --- the trainer ---

def trainer_images_per_second(config: dict, dataset, warmup: int, steps: int,
                              outputs_every: int | None = None) -> tuple[float | None, str]:
    """The trainer's images/s over the records after the warm-up steps, and how many records that was.

    ``outputs_every``: sample grids, checkpoints and records (TensorBoard on) every that many steps; else they
    are pushed past the end. A record's time holds the outputs of the step before it (they follow its read),
    so the warm-up spans two rounds: the first grid, which compiles the generator's inference, is not timed."""
    from infra.atomic import write_json
    from models import training_loop

    # Records at whole calls: a call cut short is another program to compile, which would land in the timing.
    per_call = training_loop.steps_per_call(config) if hasattr(training_loop, "steps_per_call") else 1
    if outputs_every:
        interval = outputs_every
        warmup_steps = max(math.ceil(warmup / interval), 2) * interval
    else:
        interval = math.ceil(max(steps // TIMED_RECORDS, 1) / per_call) * per_call
        warmup_steps = math.ceil(warmup / interval) * interval
    total = warmup_steps + math.ceil(steps / interval) * interval
    beyond = total + 1
    periodic = interval if outputs_every else beyond
    with tempfile.TemporaryDirectory(prefix="train_speed-") as folder:
        run_dir = Path(folder) / "run"
        run_dir.mkdir()
        config = {**config, "steps": total, "epochs": None, "log_interval": interval, "sample_interval": periodic,
                  "checkpoint_interval": periodic, "eval_interval": beyond, "metric_evaluate": "none",
                  "tensorboard": bool(outputs_every), "time_limit_minutes": None, "runs_dir": folder,
                  "name": "run"}
        write_json(run_dir / "config.json", config)
        if hasattr(training_loop, "configure_determinism"):  # what models.train does before training
            training_loop.configure_determinism(config)
        trainer = training_loop.Trainer(config, run_dir, dataset, show_progress=False)
        status = trainer.run(resume=False)
        del trainer
        if status != 0:
            raise RuntimeError(f"the trainer stopped with status {status}")
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return images_per_second_after(records, warmup_steps, config["batch_size"])


def images_per_second_after(records: list[dict], warmup_steps: int, batch_size: int) -> tuple[float | None, str]:
    """Images over seconds of the speed records past ``warmup_steps``; each record covers the steps since the
    previous one, so the rate holds whatever interval the trainer logged at."""
    images = seconds = 0.0
    previous_step, timed = 0, 0
    for record in sorted((r for r in records if "images_per_sec" in r), key=lambda r: r["step"]):
        if record["step"] > warmup_steps and record["images_per_sec"] > 0:
            record_images = (record["step"] - previous_step) * batch_size
            images += record_images
            seconds += record_images / record["images_per_sec"]
            timed += 1
        previous_step = record["step"]
    if not timed:
        return None, "no trainer record after the warm-up"
    return images / seconds, f"{timed} records"


# --- the bare step ---

def bare_step_leaves_out(config: dict) -> list[str]:
    """The config's training features the bare step does not compute."""
    features = {"augmentation": bool(config["augment"].get("policy")), "R1": bool(config["r1_gamma"]),
                "LeCam": bool(config["lecam_weight"]), "the EMA generator": config["ema_kimg"] is not None,
                "top-k training": config.get("top_k_fraction", 1.0) < 1.0}
    return [name for name, used in features.items() if used]


def bare_images_per_second(config: dict, dataset, warmup: int, steps: int, per_call: int = 1) -> float:
    """The bare step's img/s, ``per_call`` steps to a compiled call (whole calls: ``steps`` and ``warmup`` are
    rounded up); on TensorFlow the faster of its XLA and its plain-graph compilation (XLA is slower on a CPU),
    so the ratio is against the best a bare step does on this machine."""
    import keras

    from models import builders

    variants = [{}] if keras.backend.backend() == "jax" else [{"jit_compile": True}, {"jit_compile": False}]
    warmup_calls, calls = math.ceil(warmup / per_call), math.ceil(steps / per_call)
    best = 0.0
    for options in variants:
        gan, generator_optimizer, discriminator_optimizer = builders.build_gan(config)
        step = {"jax": BareJaxStep, "tensorflow": BareTensorFlowStep}[keras.backend.backend()](
            gan, generator_optimizer, discriminator_optimizer, config, dataset, per_call=per_call, **options)
        step.run(warmup_calls)
        start = time.perf_counter()
        step.run(calls)
        best = max(best, calls * per_call * config["batch_size"] / (time.perf_counter() - start))
        keras.backend.clear_session()
    return best


class BareStep:
    """What both backends share: the step's sizes and losses, from the config and the GAN it built."""

    def __init__(self, gan, generator_optimizer, discriminator_optimizer, config: dict, dataset, per_call: int = 1):
        from models import builders, networks
        from models.images import OUTPUT_RANGES

        self.gan, self.generator_optimizer, self.discriminator_optimizer = (
            gan, generator_optimizer, discriminator_optimizer)
        self.batch_size, self.latent_dim, self.n_critic = config["batch_size"], config["latent_dim"], config["n_critic"]
        self.num_classes = builders.num_classes(config) or 1
        self.low, self.high = OUTPUT_RANGES[builders.output_activation(config)]
        self.images = dataset.x
        self.labels = dataset.y if networks.needs_labels(config) else None
        self.seed = config["seed"]
        self.per_call = per_call  # steps in one compiled call; more than 1 loops on the device

    def to_model_range(self, images):
        from keras import ops

        return ops.cast(images, "float32") * ((self.high - self.low) / 255.0) + self.low

    def discriminator_loss(self, real_scores, fake_scores, gradients=None):
        from models import losses

        loss = losses.discriminator_loss(self.gan.loss, real_scores, fake_scores, self.gan.label_smoothing)
        if gradients is not None:
            loss = loss + self.gan.lambda_gp * losses.gradient_penalty(gradients)
        return loss

    def generator_loss(self, fake_scores):
        from models import losses

        return losses.generator_loss(self.gan.loss, fake_scores)


def loss_scale_position(optimizer) -> int | None:
    """Where a float16 LossScaleOptimizer keeps its dynamic scale among its variables (None: no loss scaling)."""
    scale = getattr(optimizer, "dynamic_scale", None)
    if scale is None:
        return None
    return next(position for position, variable in enumerate(optimizer.variables) if variable is scale)


class BareJaxStep(BareStep):
    def __init__(self, *args, per_call: int = 1):
        super().__init__(*args, per_call=per_call)
        import jax

        generator, discriminator = self.gan.generator, self.gan.discriminator
        self.state = {
            "g_trainable": [v.value for v in generator.trainable_variables],
            "g_non_trainable": [v.value for v in generator.non_trainable_variables],
            "d_trainable": [v.value for v in discriminator.trainable_variables],
            "d_non_trainable": [v.value for v in discriminator.non_trainable_variables],
            "g_optimizer": [v.value for v in self.generator_optimizer.variables],
            "d_optimizer": [v.value for v in self.discriminator_optimizer.variables],
            "key": jax.random.PRNGKey(self.seed),
        }
        self.data = (jax.device_put(self.images),
                     jax.device_put(self.labels.astype("int32")) if self.labels is not None else None)
        self.compiled = jax.jit(self.step if per_call == 1 else self.steps, donate_argnums=0)
        self.scale_positions = {"g": loss_scale_position(self.generator_optimizer),
                                "d": loss_scale_position(self.discriminator_optimizer)}

    def scaled(self, loss, state, key: str):
        """The loss float16's loss scaling differentiates (its scale read from the traced optimizer state)."""
        position = self.scale_positions[key]
        return loss if position is None else loss * state[f"{key}_optimizer"][position]

    def run(self, calls: int) -> None:
        losses = None
        for _ in range(calls):
            self.state, losses = self.compiled(self.state, self.data)
        losses[0].block_until_ready()
        losses[1].block_until_ready()

    def steps(self, state, data):
        """``per_call`` steps in one ``lax.scan``; the losses of each."""
        import jax

        return jax.lax.scan(lambda carry, _: self.step(carry, data), state, None, length=self.per_call)

    def step(self, state, data):
        import jax
        import jax.numpy as jnp

        from models import losses

        gan, batch = self.gan, self.batch_size
        images, labels = data
        state = dict(state)

        def generate(g_trainable, g_non_trainable, z, y):
            return gan.generator.stateless_call(g_trainable, g_non_trainable, gan.generator_inputs(z, y),
                                                training=True)

        def discriminate(d_trainable, d_non_trainable, x, y):
            return gan.discriminator.stateless_call(d_trainable, d_non_trainable, gan.discriminator_inputs(x, y),
                                                    training=True)

        for _ in range(self.n_critic):
            state["key"], index_key, noise_key, label_key, mix_key = jax.random.split(state["key"], 5)
            index = jax.random.randint(index_key, (batch,), 0, images.shape[0])
            real = self.to_model_range(jnp.take(images, index, axis=0))
            real_labels = jnp.take(labels, index) if labels is not None else jnp.zeros((batch,), jnp.int32)
            z = jax.random.normal(noise_key, (batch, self.latent_dim))
            fake_labels = jax.random.randint(label_key, (batch,), 0, self.num_classes)

            def d_loss(d_trainable, g_non_trainable, d_non_trainable):
                fake, g_non_trainable = generate(state["g_trainable"], g_non_trainable, z, fake_labels)
                real_scores, d_non_trainable = discriminate(d_trainable, d_non_trainable, real, real_labels)
                fake_scores, d_non_trainable = discriminate(d_trainable, d_non_trainable, fake, fake_labels)
                gradients = None
                if gan.lambda_gp:
                    mixed = losses.interpolate(real, fake, jax.random.uniform(mix_key, (batch, 1, 1, 1)))
                    gradients = jax.grad(lambda x: jnp.sum(
                        discriminate(d_trainable, d_non_trainable, x, real_labels)[0]))(mixed)
                loss = self.discriminator_loss(real_scores, fake_scores, gradients)
                return self.scaled(loss, state, "d"), (g_non_trainable, d_non_trainable, loss)

            (_, (state["g_non_trainable"], state["d_non_trainable"], d_value)), gradients = jax.value_and_grad(
                d_loss, has_aux=True)(state["d_trainable"], state["g_non_trainable"], state["d_non_trainable"])
            state["d_trainable"], state["d_optimizer"] = self.discriminator_optimizer.stateless_apply(
                state["d_optimizer"], gradients, state["d_trainable"])
            if gan.clip_value:
                state["d_trainable"] = losses.clip_weights(state["d_trainable"], gan.clip_value)

        state["key"], noise_key, label_key = jax.random.split(state["key"], 3)
        z = jax.random.normal(noise_key, (batch, self.latent_dim))
        fake_labels = jax.random.randint(label_key, (batch,), 0, self.num_classes)

        def g_loss(g_trainable, g_non_trainable, d_non_trainable):
            fake, g_non_trainable = generate(g_trainable, g_non_trainable, z, fake_labels)
            fake_scores, d_non_trainable = discriminate(state["d_trainable"], d_non_trainable, fake, fake_labels)
            loss = self.generator_loss(fake_scores)
            return self.scaled(loss, state, "g"), (g_non_trainable, d_non_trainable, loss)

        (_, (state["g_non_trainable"], state["d_non_trainable"], g_value)), gradients = jax.value_and_grad(
            g_loss, has_aux=True)(state["g_trainable"], state["g_non_trainable"], state["d_non_trainable"])
        state["g_trainable"], state["g_optimizer"] = self.generator_optimizer.stateless_apply(
            state["g_optimizer"], gradients, state["g_trainable"])
        return state, (d_value, g_value)


class BareTensorFlowStep(BareStep):
    def __init__(self, *args, per_call: int = 1, jit_compile: bool = True):
        super().__init__(*args, per_call=per_call)
        import tensorflow as tf

        self.tf = tf
        # Eager tensors on the device, captured by the compiled function as inputs (not baked-in constants).
        self.data_images = tf.constant(self.images)
        self.data_labels = tf.constant(self.labels.astype("int32")) if self.labels is not None else None
        self.random = tf.random.Generator.from_seed(self.seed)
        self.compiled = tf.function(self.step if per_call == 1 else self.steps, jit_compile=jit_compile)

    def run(self, calls: int) -> None:
        losses = None
        for _ in range(calls):
            losses = self.compiled()
        float(losses[0]), float(losses[1])  # a read waits for every queued step

    def steps(self):
        """``per_call`` steps in one ``tf.while_loop`` (autograph turns the loop over ``tf.range`` into one); the
        last step's losses."""
        tf = self.tf
        d_value, g_value = tf.constant(0.0), tf.constant(0.0)
        for _ in tf.range(self.per_call):
            d_value, g_value = self.step()
            d_value, g_value = tf.cast(d_value, tf.float32), tf.cast(g_value, tf.float32)
        return d_value, g_value

    def step(self):
        tf, gan, batch = self.tf, self.gan, self.batch_size
        from models import losses

        generator, discriminator = gan.generator, gan.discriminator
        count = tf.shape(self.data_images, out_type=tf.int32)[0]
        d_value = None
        for _ in range(self.n_critic):
            index = self.random.uniform((batch,), 0, count, dtype=tf.int32)
            real = self.to_model_range(tf.gather(self.data_images, index))
            real_labels = (tf.gather(self.data_labels, index) if self.data_labels is not None
                           else tf.zeros((batch,), tf.int32))
            z = self.random.normal((batch, self.latent_dim))
            fake_labels = self.random.uniform((batch,), 0, self.num_classes, dtype=tf.int32)
            weights = self.random.uniform((batch, 1, 1, 1))
            with tf.GradientTape() as tape:
                fake = generator(gan.generator_inputs(z, fake_labels), training=True)
                real_scores = discriminator(gan.discriminator_inputs(real, real_labels), training=True)
                fake_scores = discriminator(gan.discriminator_inputs(fake, fake_labels), training=True)
                gradients = None
                if gan.lambda_gp:
                    mixed = losses.interpolate(real, fake, weights)
                    with tf.GradientTape() as inner:
                        inner.watch(mixed)
                        scores = discriminator(gan.discriminator_inputs(mixed, real_labels), training=True)
                    gradients = inner.gradient(scores, mixed)
                d_value = self.discriminator_loss(real_scores, fake_scores, gradients)
                scaled = self.discriminator_optimizer.scale_loss(d_value)  # float16: the dynamic loss scale
            variables = discriminator.trainable_variables
            self.discriminator_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
            if gan.clip_value:
                for weight, clipped in zip(variables, losses.clip_weights(variables, gan.clip_value)):
                    weight.assign(clipped)
        z = self.random.normal((batch, self.latent_dim))
        fake_labels = self.random.uniform((batch,), 0, self.num_classes, dtype=tf.int32)
        with tf.GradientTape() as tape:
            fake = generator(gan.generator_inputs(z, fake_labels), training=True)
            g_value = self.generator_loss(discriminator(gan.discriminator_inputs(fake, fake_labels), training=True))
            scaled = self.generator_optimizer.scale_loss(g_value)
        variables = generator.trainable_variables
        self.generator_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return d_value, g_value


# --- one backend ---

def device_name(backend: str) -> tuple[str, int]:
    """What the backend trains on, e.g. 'NVIDIA H100 80GB HBM3' or 'cpu (2 cores)', and how many accelerators."""
    cpu = f"cpu ({os.cpu_count()} cores)"
    if backend == "jax":
        import jax

        accelerators = [device for device in jax.devices() if device.platform != "cpu"]
        return (accelerators[0].device_kind if accelerators else cpu), len(accelerators)
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return cpu, 0
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU"), len(gpus)


def measure_backend(args, backend: str) -> list[dict]:
    from models.train import select_backend

    select_backend(backend, {})
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from models import config as configs
    from models import training_loop
    from models.train import image_shape_and_classes

    raw = load_raw_config(args)
    resolved = configs.resolve(raw, args.config)
    dataset, data_note = bench_dataset(resolved)
    import keras

    device, accelerators = device_name(backend)
    determinism = (f"; op determinism {'on' if raw.get('deterministic', True) else 'off'} (the config's "
                   "'deterministic')" if backend == "tensorflow" else "")
    print(f"{backend}: {device}; {args.config} (n_critic {resolved['n_critic']}); {data_note}{determinism}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    left_out = bare_step_leaves_out(resolved)
    if left_out:
        print(f"  the bare step leaves out {', '.join(left_out)}: trainer/bare overstates the loop's cost", flush=True)
    print(TABLE_HEADER, flush=True)
    knows_devices = "devices" in configs.schema()["properties"]
    rows, scaling = [], []
    for precision in args.precisions:
        for batch in args.batches:
            settings = {"batch_size": batch, "precision": precision, **({"devices": 1} if knows_devices else {})}
            config = configs.resolve({**raw, **settings}, args.config)
            config["image_shape"], config["class_names"] = image_shape_and_classes(config, dataset)
            policy = policy_the_bench_sets(config)
            if policy:
                print(f"  models.builders does not apply precision {precision}: the bench sets Keras' {policy} "
                      "policy around the trainer's and the bare step's networks", flush=True)
            per_call = training_loop.steps_per_call(config)
            with dtype_policy(policy):
                trainer, records = trainer_images_per_second(config, dataset, args.warmup, args.steps)
                keras.backend.clear_session()
                trainer_outputs = None
                if args.outputs_every:
                    trainer_outputs, _ = trainer_images_per_second(config, dataset, args.warmup, args.steps,
                                                                   outputs_every=args.outputs_every)
                    keras.backend.clear_session()
                bare = bare_images_per_second(config, dataset, args.warmup, args.steps)
                keras.backend.clear_session()
                bare_fused = bare_images_per_second(config, dataset, args.warmup, args.steps, per_call=per_call)
                keras.backend.clear_session()
            row = {"backend": backend, "device": device, "batch": batch, "precision": precision,
                   "steps_per_call": per_call, "trainer": trainer, "trainer_outputs": trainer_outputs,
                   "outputs_every": args.outputs_every or None, "bare": bare, "bare_fused": bare_fused,
                   "ratio": trainer / bare if trainer else None,
                   "fused_ratio": trainer / bare_fused if trainer else None,
                   "outputs_ratio": trainer_outputs / trainer if trainer and trainer_outputs else None,
                   "config": args.config, "n_critic": config["n_critic"], "data": data_note,
                   "trainer_records": records, "steps": args.steps, "warmup": args.warmup}
            rows.append(row)
            print(format_row(row), flush=True)
            if accelerators > 1 and backend == "jax" and knows_devices and trainer:
                config = {**config, "devices": "all"}
                with dtype_policy(policy):
                    on_all, _ = trainer_images_per_second(config, dataset, args.warmup, args.steps)
                    keras.backend.clear_session()
                scaling.append({**row, "devices": accelerators, "trainer_all": on_all,
                                "efficiency": on_all / (accelerators * trainer) if on_all else None})
    print_scaling(backend, accelerators, knows_devices, scaling)
    return rows + [{**entry, "kind": "scaling"} for entry in scaling]


def print_scaling(backend: str, accelerators: int, knows_devices: bool, scaling: list[dict]) -> None:
    if accelerators == 0:
        print(f"{backend}: scaling not measured: no accelerator, only the CPU (virtual CPU devices would share the "
              "same cores)")
    elif accelerators == 1:
        print(f"{backend}: scaling not measured: one accelerator")
    elif backend != "jax":
        print(f"{backend}: scaling not measured: TensorFlow trains on one device")
    elif not knows_devices:
        print(f"{backend}: scaling not measured: this trainer has no 'devices' option")
    else:
        print(f"\nscaling, same global batch ({accelerators} devices):")
        print(f"{'backend':<11} {'batch':>6} {'precision':<9} {'1 device':>10} {'all':>10} {'efficiency':>10}")
        for entry in scaling:
            print(f"{entry['backend']:<11} {entry['batch']:>6} {entry['precision']:<9} {speed(entry['trainer']):>10} "
                  f"{speed(entry['trainer_all']):>10} {fmt(entry['efficiency'], '.2f'):>10}")


# --- output ---

def fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def speed(value) -> str:
    """Images/s: whole numbers, with two decimals below 100 (a slow CPU row would otherwise read 1 or 2)."""
    return fmt(value, ".0f" if value is not None and value >= 100 else ".2f")


def format_row(row: dict) -> str:
    return (f"{row['backend']:<11} {row['device']:<24} {row['batch']:>6} {row['precision']:<9} "
            f"{row['steps_per_call']:>5} {speed(row['trainer']):>13} {speed(row['trainer_outputs']):>13} "
            f"{speed(row['bare']):>10} {speed(row['bare_fused']):>11} {fmt(row['ratio'], '.2f'):>12} "
            f"{fmt(row['fused_ratio'], '.2f'):>13} {fmt(row['outputs_ratio'], '.2f'):>15}")


def print_table(rows: list[dict]) -> None:
    print(f"\nall backends:\n{TABLE_HEADER}")
    for row in rows:
        if row.get("kind") != "scaling":
            print(format_row(row))


def run_both(args) -> tuple[list[dict], int]:
    """Each backend in its own process (Keras picks its backend once per process); their rows, and the worst exit
    status."""
    rows, status = [], 0
    for backend in BACKENDS:
        with tempfile.TemporaryDirectory(prefix="train_speed-") as folder:
            out = Path(folder) / "rows.json"
            command = [sys.executable, str(Path(__file__).resolve()), "--backend", backend, "--config", args.config,
                       "--batch", *map(str, args.batches), "--precision", *args.precisions,
                       "--steps", str(args.steps), "--warmup", str(args.warmup),
                       "--outputs-every", str(args.outputs_every), "--json", str(out)]
            for assignment in args.overrides:
                command += ["--set", assignment]
            command += ["--data", args.data] if args.data else []
            command += ["--data-dir", args.data_dir] if args.data_dir else []
            result = subprocess.run(command)
            if result.returncode != 0:
                print(f"{backend}: the bench failed (exit status {result.returncode})", file=sys.stderr)
                status = status or (result.returncode if result.returncode > 0 else 1)  # < 0: killed by a signal
            if out.exists():
                rows += json.loads(out.read_text())
    return rows, status


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    check_arguments(args)
    load_raw_config(args)  # a bad config or --set is reported before any backend starts
    if args.backend == "both":
        rows, status = run_both(args)
        print_table(rows)
    else:
        rows, status = measure_backend(args, args.backend), 0
    if args.json_path:
        from infra.atomic import write_json

        write_json(Path(args.json_path), rows)
    return status


if __name__ == "__main__":
    cli.run(main)
