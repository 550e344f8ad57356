"""Training speed of a config: generator steps per second after warm-up, on the current machine.

    python bench/train_speed.py --config configs/logos_dcgan.json --steps 20
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DESCRIPTION = """\
Training speed of a config: generator steps per second after warm-up, on the current machine.

Prints steps/s, images/s and how many steps fit in a given time budget (to pick run-model.sh's --steps).
"""
EPILOG = """\
examples:
  python bench/train_speed.py --config configs/logos_dcgan.json
  python bench/train_speed.py --config configs/logos_wgan_gp.json --backend jax --steps 10 --budget-minutes 10
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python bench/train_speed.py", description=DESCRIPTION,
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/logos_dcgan.json", help="training config (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first, incl. compilation (default: %(default)s)")
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow",
                        help="Keras backend (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a config option, as in models.train (repeatable)")
    parser.add_argument("--budget-minutes", type=float, default=10.0,
                        help="report how many steps fit in this many minutes (default: %(default)s)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tempfile

    from models import config as configs
    from models.train import image_shape_and_classes, load_data
    from models.training_loop import Trainer, configure_determinism

    raw = configs.load_config(args.config)
    for assignment in args.overrides:
        raw = configs.apply_override(raw, assignment)
    config = configs.resolve(raw, args.config)
    dataset = load_data(config)
    config["image_shape"], config["class_names"] = image_shape_and_classes(config, dataset)
    configure_determinism(config)
    trainer = Trainer(config, Path(tempfile.mkdtemp(prefix="train_speed-")), dataset, show_progress=False)
    train_step, batches = trainer.make_train_step(), trainer.batches
    start = time.perf_counter()
    for step in range(args.warmup):
        train_step(batches.batch(step), regularize=trainer.regularizes(step))
    warmup_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for step in range(args.warmup, args.warmup + args.steps):
        train_step(batches.batch(step), regularize=trainer.regularizes(step))
    seconds = time.perf_counter() - start
    steps_per_second = args.steps / seconds
    print(f"config {args.config}, backend {args.backend}, images {config['image_shape']}, batch "
          f"{config['batch_size']}, n_critic {config['n_critic']}, {os.cpu_count()} CPUs")
    print(f"warm-up {args.warmup} steps: {warmup_seconds:.1f} s")
    print(f"{steps_per_second:.2f} steps/s, {steps_per_second * config['batch_size']:.0f} images/s "
          f"({args.steps} steps in {seconds:.1f} s)")
    print(f"{int(steps_per_second * args.budget_minutes * 60)} steps fit in {args.budget_minutes:g} minutes "
          "(not counting start-up and compilation)")
    return 0


if __name__ == "__main__":
    from infra import cli

    cli.run(main)
