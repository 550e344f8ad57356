"""Train a GAN from a JSON config, or resume a run: ``python -m models.train --help``."""
from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path
from typing import Sequence

from infra import cli, quiet
from infra.errors import UserError
from infra.output_paths import check_output_folder
from models import process_supervisor
from models.config.limits import BACKENDS, MIN_IMAGE_SIZE
from models.run_folder import lock_run_folder, unlock_run_folder
HEARTBEAT_SECONDS = 60

DESCRIPTION = "Train a GAN from a JSON config, or resume a run."

EPILOG = """\
examples:
  python -m models.train --config configs/logos_dcgan.json
  python -m models.train --config configs/logos_dcgan.json --steps 300 --name logos-short \\
      --set generator.optimizer.learning_rate=1e-4 --set batch_size=32
  python -m models.train --config configs/cgan_fashion_mnist.json --data fashion_mnist --backend jax
  python -m models.train --config configs/logos_shapes.json --data my-logos/
  python -m models.train --resume runs/logos-short --steps 600
  python -m models.train --list-options

A run writes runs/NAME/: config.json (every option as used), status.json, metrics.jsonl, samples/,
loss.png, progress.gif, tensorboard/, checkpoints/last (and best), and generator.keras when finished.
Ctrl-C or SIGTERM saves a checkpoint and exits with status 130; --resume continues exactly.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models.train", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="FILE", help="JSON config of a new run (see --list-options)")
    source.add_argument("--resume", metavar="RUN_DIR",
                        help="continue the run in this folder from its last checkpoint")
    source.add_argument("--list-options", action="store_true",
                        help="print every config option with its type, default and meaning, then exit")
    parser.add_argument("--data", metavar="SOURCE",
                        help="training data, overrides data_path: a .npz file, s3://bucket/key.npz, a folder of "
                             "images (PNG, JPEG, SVG ... mixed; class subfolders become labels; built with "
                             "preprocessing.build's defaults at the config's image_size, else 56 px, and cached "
                             "in the user cache folder until the folder changes), an IDX gzip folder, "
                             "fashion_mnist or mnist (default: the config's data_path)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="local copy of fashion_mnist / mnist IDX files (default: the config's data_dir, "
                             "then $LOGOGAN_DATA_DIR)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override one config option, e.g. generator.optimizer.learning_rate=1e-4; VALUE is "
                             "JSON (numbers, true, null, [..]) or else a string; repeatable")
    parser.add_argument("--steps", type=int, metavar="N",
                        help="train to N generator steps in total (replaces the config's steps/epochs)")
    parser.add_argument("--name", help="run folder name (default: <generator>_<discriminator>_<timestamp>)")
    parser.add_argument("--runs-dir", metavar="DIR", help="folder of run folders (default: the config's runs_dir, "
                                                          "'runs')")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="Keras backend (default: $KERAS_BACKEND, then the config's backend, then tensorflow)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    quiet.add_verbose_argument(parser)
    several = parser.add_argument_group(
        "several processes (VMs) training one run, JAX only",
        "Start the same command on every VM with its own --process-id; all need the data and the same --name "
        "(or --resume RUN_DIR). Process 0 alone writes the run folder; the others start from its checkpoint.")
    several.add_argument("--coordinator", metavar="HOST:PORT", default=os.environ.get("LOGOGAN_COORDINATOR"),
                         help="address of process 0, which the others connect to (env LOGOGAN_COORDINATOR)")
    several.add_argument("--num-processes", type=int, metavar="N", default=_int_env("LOGOGAN_NUM_PROCESSES"),
                         help="how many processes train together (env LOGOGAN_NUM_PROCESSES)")
    several.add_argument("--process-id", type=int, metavar="I", default=_int_env("LOGOGAN_PROCESS_ID"),
                         help="this process's number, 0 to N-1 (env LOGOGAN_PROCESS_ID)")
    several.add_argument("--heartbeat-seconds", type=int, metavar="S", default=HEARTBEAT_SECONDS,
                         help="a process that has not been heard from for this long is taken as dead and the others "
                              "stop with an error (default: %(default)s)")
    return parser


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    if not value.isdigit():
        raise UserError(f"{name}={value!r}: not a whole number")
    return int(value)


def check_processes(args) -> bool:
    """Whether this process is one of several; a one-line UserError for an incomplete or bad set of flags."""
    given = [args.coordinator is not None, args.num_processes is not None, args.process_id is not None]
    if not any(given):
        return False
    if not all(given):
        raise UserError("--coordinator, --num-processes and --process-id go together; give all three (or none)")
    host, _, port = args.coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--coordinator {args.coordinator!r}: allowed: HOST:PORT, e.g. 10.0.0.5:1234")
    if args.num_processes < 1:
        raise UserError(f"--num-processes {args.num_processes}: must be at least 1")
    if not 0 <= args.process_id < args.num_processes:
        raise UserError(f"--process-id {args.process_id}: allowed: 0 to {args.num_processes - 1}")
    if args.heartbeat_seconds < 1:
        raise UserError(f"--heartbeat-seconds {args.heartbeat_seconds}: must be at least 1")
    return True


def select_backend(requested: str | None, config: dict) -> str:
    """Set KERAS_BACKEND before anything imports Keras; the flag beats the environment beats the config."""
    backend = requested or os.environ.get("KERAS_BACKEND") or config.get("backend") or "tensorflow"
    if backend not in BACKENDS:
        raise UserError(f"backend {backend!r} is not supported; allowed: {', '.join(BACKENDS)}")
    loaded = sys.modules.get("keras")
    if loaded is not None and loaded.backend.backend() != backend:
        raise UserError(f"Keras is already running on {loaded.backend.backend()}; start a new process for {backend}")
    os.environ["KERAS_BACKEND"] = backend
    return backend


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps {args.steps}: must be at least 1")
    if args.list_options:
        select_backend(args.backend, {})
        from models.config import option_lines

        print("\n".join(option_lines()))
        return 0
    if not args.config and not args.resume:
        raise UserError("give --config FILE for a new run, --resume RUN_DIR to continue one, or --list-options")
    if args.name is not None:
        check_run_name(args.name, "--name")
    several_processes = check_processes(args)
    if several_processes and not args.resume and args.name is None:
        raise UserError("--coordinator: give every process the same --name (a default name holds the start time, "
                        "which differs between processes)")
    if several_processes and not process_supervisor.is_child():
        return process_supervisor.run_supervised(list(sys.argv[1:] if argv is None else argv))

    from models import config as configs  # Keras-free: bad input is reported before Keras loads

    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.json").is_file():
            raise UserError(f"{run_dir}: not a run folder (no config.json); allowed: a folder made by models.train")
        source, raw = str(run_dir / "config.json"), configs.load_config(run_dir / "config.json")
    else:
        source, raw = args.config, configs.load_config(args.config)
    raw["backend"] = select_backend(args.backend, raw)
    for assignment in args.overrides:
        raw = configs.apply_override(raw, assignment)
    if args.data:
        raw["data_path"] = args.data
    if args.data_dir:
        raw["data_dir"] = args.data_dir
    if args.steps is not None:
        raw["steps"], raw["epochs"] = args.steps, None
    if not args.resume:
        raw.update({key: value for key, value in (("name", args.name), ("runs_dir", args.runs_dir)) if value})
    config = configs.resolve(raw, source)
    if several_processes:
        if config["backend"] != "jax":
            raise UserError("--coordinator: several processes train together on the JAX backend only; "
                            "add --backend jax")
        from models.backends import start_distributed

        start_distributed(args.coordinator, args.num_processes, args.process_id, args.heartbeat_seconds)
    first_process = not several_processes or args.process_id == 0
    if config["name"] is not None:
        check_run_name(config["name"], f"{source}: name")
    if args.resume:
        check_output_folder(run_dir, "--resume")
        if first_process:
            lock_run_folder(run_dir)  # held until the trainer ends: a second trainer of the folder is refused
    else:
        check_output_folder(config["runs_dir"], "--runs-dir")
    if not config["data_path"]:
        raise UserError(f"{source}: no training data; set data_path in the config or pass --data")
    dataset = load_data(config)
    if args.resume:
        check_same_images(config, dataset, run_dir)
    else:
        config["image_shape"], config["class_names"] = image_shape_and_classes(config, dataset)
        settle_palette(config, dataset)
        settle_background(config, dataset)
        run_dir = new_run_dir(config) if first_process else Path(config["runs_dir"]) / config["name"]

    from infra.atomic import write_json
    from models.backends import describe_devices, keep_compiled_programs
    from models.training_loop import Trainer, configure_determinism

    keep_compiled_programs()
    configure_determinism(config)
    trainer = Trainer(config, run_dir, dataset, show_progress=not args.no_progress and first_process)
    config["trained_on"] = describe_devices(trainer.devices)
    if first_process:
        write_json(run_dir / "config.json", config)
    print(f"run folder: {run_dir}\ntraining on {config['trained_on']}, {config['backend']}", file=sys.stderr)
    status = trainer.run(resume=bool(args.resume))
    if trainer.lost_process:
        # The runtime's clean exit waits on every process at a barrier; with one gone it would abort after the
        # heartbeat timeout with a stack dump. The run folder is written; leave at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def check_run_name(name: str, source: str) -> None:
    """A run is one folder inside the runs folder; '.', '..' or a path would put its files somewhere else."""
    if name in ("", ".", "..") or any(character in name for character in "/\\\0"):
        raise UserError(f"{source} {name!r}: a run name must be one folder name inside --runs-dir, not '.', '..' or "
                        "a path; allowed: letters, digits, '.', '_' and '-'")


def load_data(config: dict):
    from models.data import load_training_data, with_clusters

    dataset = load_training_data(config["data_path"], config["data_dir"], config["image_size"])
    height, width = dataset.image_shape[:2]
    if min(height, width) < MIN_IMAGE_SIZE:
        raise UserError(f"{config['data_path']}: images of {height}x{width} px are too small to train on; use "
                        f"{MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} px or more (rebuild with preprocessing.build --size 56, "
                        "or set image_size)")
    return with_clusters(dataset, config["data_clusters"])


def image_shape_and_classes(config: dict, dataset) -> tuple[list[int], list[str] | None]:
    from models.networks import needs_labels

    if not needs_labels(config):
        return list(dataset.image_shape), None
    if dataset.y is None:
        raise UserError(f"{config['data_path']}: has no labels, but a conditional (cgan) network needs them; use a "
                        "labelled dataset or unconditional networks")
    class_names = dataset.class_names or [str(index) for index in range(int(dataset.y.max()) + 1)]
    if dataset.meta.get("clusters"):  # samples draw the clusters in the data's proportions
        import numpy as np

        shares = np.bincount(dataset.y, minlength=len(class_names)) / len(dataset.y)
        config["class_shares"] = [round(float(share), 6) for share in shares]
    return list(dataset.image_shape), class_names


def settle_palette(config: dict, dataset) -> None:
    """generator.palette 'auto' becomes AUTO_PALETTE_MULTI entries when at least MULTI_COLOUR_SHARE of the images
    have a mark of two or more colours, else AUTO_PALETTE_SINGLE (a mark of one colour on its background, where
    more entries only let the generator paint colours the data has not); said in one line, saved in config.json."""
    if config["generator"].get("palette") != "auto":
        return
    from models.config.defaults import AUTO_PALETTE_MULTI, AUTO_PALETTE_SINGLE, MULTI_COLOUR_SHARE
    from models.data import multi_colour_share

    share = multi_colour_share(dataset.x)
    multi = share >= MULTI_COLOUR_SHARE
    config["generator"]["palette"] = AUTO_PALETTE_MULTI if multi else AUTO_PALETTE_SINGLE
    print(f"palette auto: {config['generator']['palette']} ({share:.0%} of the images have a mark of two or more "
          f"colours, {'at least' if multi else 'under'} {MULTI_COLOUR_SHARE:.0%})", file=sys.stderr)


def settle_background(config: dict, dataset) -> None:
    """generator.palette_background 'auto' becomes the data's shared border colour, or null (learned per image)
    when the images do not share one; said in one line, and saved so in config.json."""
    if config["generator"].get("palette_background") != "auto":
        return
    from models.data import BACKGROUND_SHARE, shared_background

    colour, share = shared_background(dataset.x)
    config["generator"]["palette_background"] = colour
    if colour:
        print(f"palette_background auto: {colour} ({share:.0%} of the images lie on it)", file=sys.stderr)
    else:
        print(f"palette_background auto: null, learned per image (the most common border colour frames only "
              f"{share:.0%} of the images, under {BACKGROUND_SHARE:.0%})", file=sys.stderr)


def check_same_images(config: dict, dataset, run_dir: Path) -> None:
    if list(dataset.image_shape) != list(config["image_shape"]):
        raise UserError(f"{config['data_path']}: images are {list(dataset.image_shape)} but run {run_dir} was "
                        f"trained on {config['image_shape']}; resume with the same data")


def new_run_dir(config: dict) -> Path:
    name = config["name"] or "{}_{}_{}".format(config["generator"]["choice"], config["discriminator"]["choice"],
                                               datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    config["name"] = name
    run_dir = Path(config["runs_dir"]) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    lock_run_folder(run_dir)  # a trainer writing the folder, or started at the same moment, refuses this one
    if (run_dir / "config.json").exists():
        unlock_run_folder(run_dir)
        raise UserError(f"{run_dir}: a run with this name exists; continue it with --resume {run_dir} or pick "
                        "another --name")
    return run_dir


if __name__ == "__main__":
    cli.run(main)
