"""Training speed that tells the truth: the project's trainer beside a bare compiled step of the same networks.

    python bench/train_speed.py --config configs/logos_dcgan.json --batch 64 --precision float32 --steps 20

For each backend, in one process, and each (precision, batch size):

- trainer: ``models.training_loop.Trainer(...).run()`` for warm-up + timed steps, samples, checkpoints and
  evaluation pushed past the end, TensorBoard off; images/s comes from the ``images_per_sec`` of the records
  in the run's ``metrics.jsonl`` after the warm-up (the first records hold compilation). Nothing else of the
  trainer is read, so the bench measures whatever the trainer does.
- trainer_outputs (``--outputs-every N``): the same trainer with its periodic work on, as in a user's run:
  sample grids, checkpoints and log records (TensorBoard on) every N steps. Its first two rounds are warm-up
  (the first grid compiles the generator's inference), so each timed record holds one round of outputs.
- bare: bench/bare_steps.py's step of the same networks and optimizers (``models.builders.build_gan``) and the
  same uint8 images put on the device once, one step per compiled call, written by hand per backend with no
  training loop around it (on TensorFlow the faster of XLA and plain graph).
- bare_fused: the bare step's ``steps_per_call`` steps (the trainer's: the config's, else 8 on an accelerator and
  1 on a CPU) in one compiled call: the fastest the device runs these networks, with no launch between steps.

All count generator steps x batch size per second (a step holds n_critic discriminator updates).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bare_steps import bare_images_per_second, bare_step_leaves_out  # noqa: E402  (after the path insert)
from infra import cli  # noqa: E402
from infra.device_check import device_name  # noqa: E402
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
steps per call in one compiled loop), and the ratios trainer/bare, trainer/fused and outputs/trainer.
Images/s counts generator steps x batch size. The bare steps are bench/bare_steps.py's. The config's data is used when present; otherwise synthetic uint8 images of the config's size (the
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
    per_call = training_loop.steps_per_call(config)
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
        training_loop.configure_determinism(config)  # what models.train does before training
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


# --- one backend ---

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
    rows, scaling = [], []
    for precision in args.precisions:
        for batch in args.batches:
            config = configs.resolve({**raw, "batch_size": batch, "precision": precision, "devices": 1}, args.config)
            config["image_shape"], config["class_names"] = image_shape_and_classes(config, dataset)
            per_call = training_loop.steps_per_call(config)
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
            if accelerators > 1 and backend == "jax" and trainer:
                config = {**config, "devices": "all"}
                on_all, _ = trainer_images_per_second(config, dataset, args.warmup, args.steps)
                keras.backend.clear_session()
                scaling.append({**row, "devices": accelerators, "trainer_all": on_all,
                                "efficiency": on_all / (accelerators * trainer) if on_all else None})
    print_scaling(backend, accelerators, scaling)
    return rows + [{**entry, "kind": "scaling"} for entry in scaling]


def print_scaling(backend: str, accelerators: int, scaling: list[dict]) -> None:
    if accelerators == 0:
        print(f"{backend}: scaling not measured: no accelerator, only the CPU (virtual CPU devices would share the "
              "same cores)")
    elif accelerators == 1:
        print(f"{backend}: scaling not measured: one accelerator")
    elif backend != "jax":
        print(f"{backend}: scaling not measured: TensorFlow trains on one device")
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
