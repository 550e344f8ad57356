"""Quality at equal compute: train a baseline and candidates for the same wall-clock minutes, then score them.

    python bench/quality.py --baseline configs/logos_dcgan.json --candidate configs/logos_small_data.json \\
        --minutes 6.5 --out bench/out/logos
    python bench/quality.py --baseline configs/logos_dcgan.json --candidate configs/logos_small_data.json \\
        --baseline-steps 1500 --out bench/out/logos

Each config trains in its own process for --minutes (models.train's time_limit_minutes), one after the other
on the current machine, or with --together all at once, each on an equal share of the cores: fair even when
something else loads the machine. With --baseline-steps N instead, the baseline trains N steps first and the
time its training loop took is every candidate's budget: the compute of a fixed schedule (run-model.sh's CPU
schedule was 1,500 steps of logos_dcgan, the logo target's budget), whatever the machine's speed that day.
--candidate may be given several times: one baseline run then serves them all. Then 2,000 images of each
run's generator (the EMA one when the config has it) are scored against the run's whole training set with the
canonical FID network: KID (x10^3, ± std over subsets), FID and, for conditional runs, class accuracy beside
the class judge's own accuracy on held-out real images.
Prints a table (steps, images trained per second over the budget, the scores) and each candidate's ratios
to the baseline; writes results.json and side_by_side.png (the last sample grid of each run) under --out.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DESCRIPTION = ("Train a baseline and one or more candidate configs for the same wall-clock minutes, then compare "
               "KID, FID and class accuracy.")
EPILOG = """\
examples:
  python bench/quality.py --baseline configs/logos_dcgan.json --candidate configs/logos_small_data.json \\
      --minutes 6.5 --out bench/out/logos
  python bench/quality.py --baseline configs/cgan_fashion_mnist.json --candidate configs/fashion_small_data.json \\
      --data fashion_mnist --data-dir ../shared/data/fashion-mnist-8k --minutes 18 --out bench/out/fashion

The FID network: --inception-weights, else $LOGOGAN_INCEPTION_WEIGHTS, else fid/inception-2015-12-05.pt in
$LOGOGAN_SHARED (default ../shared), else the downloaded copy (as python -m models.evaluate).
"""
HUGE_STEPS = 10**7  # the time limit, not the step count, ends each run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python bench/quality.py", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, metavar="CONFIG", help="the config to beat")
    parser.add_argument("--candidate", required=True, action="append", metavar="CONFIG",
                        help="a config under test; repeat it to test several against the same baseline run")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float, help="training wall-clock budget of each config")
    budget.add_argument("--baseline-steps", type=int, metavar="N",
                        help="train the baseline N steps; the minutes that took are each candidate's budget "
                             "(one after the other only)")
    parser.add_argument("--data", help="training data for every config (default: each config's data_path)")
    parser.add_argument("--data-dir", help="local copy of fashion_mnist / mnist, as in models.train")
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default=None,
                        help="Keras backend of every run (default: each config's)")
    parser.add_argument("--samples", type=int, default=2000, help="generated images scored per run (default: 2000)")
    parser.add_argument("--inception-weights", metavar="PATH", help="the FID network archive (see below)")
    parser.add_argument("--out", default="bench/out/quality", help="folder for runs and results (default: %(default)s)")
    parser.add_argument("--together", action="store_true",
                        help="train all configs at the same time, sharing the cores (fair on a busy machine)")
    parser.add_argument("--skip-training", action="store_true",
                        help="score the runs already in --out again instead of training them")
    return parser


def start_training(config: str, name: str, args, runs_dir: Path, minutes: float | None,
                   steps: int | None = None) -> subprocess.Popen:
    """Start training one config in its own process, to stop at the time limit (or after ``steps``)."""
    command = [sys.executable, "-m", "models.train", "--config", config, "--name", name, "--runs-dir", str(runs_dir),
               "--steps", str(steps or HUGE_STEPS), "--no-progress"]
    if minutes is not None:
        command += ["--set", f"time_limit_minutes={minutes}"]
    for flag, value in (("--data", args.data), ("--data-dir", args.data_dir), ("--backend", args.backend)):
        if value:
            command += [flag, value]
    length = f"{steps} steps" if steps else f"{minutes:g} min"
    print(f"training {config} for {length} ...", file=sys.stderr, flush=True)
    return subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1], stderr=subprocess.PIPE, text=True)


def finish_training(config: str, process: subprocess.Popen) -> None:
    _, stderr = process.communicate()
    if process.returncode != 0:
        from infra.errors import UserError

        last_line = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        raise UserError(f"{config}: training failed with status {process.returncode}: {last_line}")


def train(config: str, name: str, args, runs_dir: Path, minutes: float | None, steps: int | None = None) -> None:
    finish_training(config, start_training(config, name, args, runs_dir, minutes, steps))


def training_minutes(run_dir: Path) -> float:
    """How long a finished run's training loop took (status.json's training_seconds), in minutes."""
    from infra.errors import UserError
    from models.run_folder import read_status

    seconds = read_status(run_dir)[0].get("training_seconds")
    if not isinstance(seconds, (int, float)) or seconds <= 0:
        raise UserError(f"{run_dir}: status.json has no training_seconds; train it again with this bench")
    return seconds / 60


def score(run_dir: Path, samples: int, inception_weights: str | None) -> dict:
    from evaluation.evaluator import Evaluator
    from models.evaluate import run_real_images, sample_run

    fake, fake_labels, config = sample_run(run_dir, "last", samples, seed=0)
    real, real_labels, class_names = run_real_images(config)
    metrics = ["fid", "kid"] + (["class_accuracy"] if fake_labels is not None else [])
    evaluator = Evaluator(real, metrics, real_labels=real_labels, class_names=class_names,
                          inception_weights=inception_weights, progress=False)
    results = evaluator.evaluate(fake, fake_labels)
    if fake_labels is not None:
        results["judge_accuracy"] = evaluator.class_judge.real_accuracy
    status = json.loads((run_dir / "status.json").read_text())
    steps = status["step"]
    return {"steps": steps, "images_per_sec": budget_images_per_sec(config, status), "real_images": len(real),
            "generated_images": len(fake), **{name: float(value) for name, value in results.items()}}


def budget_images_per_sec(config: dict, status: dict) -> float | None:
    """Images trained per second of the run's training loop (status.json's training_seconds, else its time
    limit): its rate over the whole budget, start-up included. (The last logged interval's rate is no measure
    of a run: a run ended by the limit spends that interval partly on its final checkpoint and standing
    statistics.) None when the run records neither."""
    seconds = status.get("training_seconds") or 60 * (config.get("time_limit_minutes") or 0)
    return status["step"] * config["batch_size"] / seconds if seconds else None


def last_grid(run_dir: Path) -> Path:
    return sorted((run_dir / "samples").glob("step_*.png"))[-1]


def side_by_side(grids: list[tuple[str, Path]], out: Path) -> None:
    """The runs' last sample grids next to each other, each under its name."""
    from PIL import Image, ImageDraw

    images = [Image.open(path).convert("RGB") for _, path in grids]
    title_height, gap = 24, 12
    width = sum(image.width for image in images) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (width, title_height + max(image.height for image in images)), "white")
    draw, left = ImageDraw.Draw(canvas), 0
    for (title, _), image in zip(grids, images):
        draw.text((left + 4, 6), title, fill="black")
        canvas.paste(image, (left, title_height))
        left += image.width + gap
    canvas.save(out)


def run_names(baseline: str, candidates: list[str]) -> dict[str, str]:
    """Run folder name -> config: "baseline", then "candidate" (one) or "candidate1", "candidate2", ..."""
    if len(candidates) == 1:
        return {"baseline": baseline, "candidate": candidates[0]}
    return {"baseline": baseline, **{f"candidate{index}": config for index, config in enumerate(candidates, 1)}}


def ratios_line(name: str, result: dict, baseline: dict) -> str:
    kid_ratio, fid_ratio = result["kid"] / baseline["kid"], result["fid"] / baseline["fid"]
    return (f"{name} / baseline: KID x{kid_ratio:.2f} ({100 * (kid_ratio - 1):+.0f}%), "
            f"FID x{fid_ratio:.2f} ({100 * (fid_ratio - 1):+.0f}%)")


def table(rows: list[tuple[str, dict]]) -> str:
    lines = [f"{'config':<40}{'steps':>8}{'img/s':>8}{'KID x1e3':>18}{'FID':>9}{'class acc (judge)':>20}"]
    for config, result in rows:
        kid = f"{1e3 * result['kid']:.1f} ± {1e3 * result['kid_std']:.1f}"
        accuracy = (f"{result['class_accuracy']:.3f} ({result['judge_accuracy']:.3f})"
                    if "class_accuracy" in result else "-")
        speed = f"{result['images_per_sec']:.0f}" if result["images_per_sec"] else "-"
        lines.append(f"{config:<40}{result['steps']:>8}{speed:>8}{kid:>18}{result['fid']:>9.1f}{accuracy:>20}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from infra.errors import UserError
    from models import config as configs

    too_small = ((args.minutes is not None and args.minutes <= 0)
                 or (args.baseline_steps is not None and args.baseline_steps < 1))
    if too_small or args.samples < 2:
        raise UserError("--minutes must be above 0, --baseline-steps at least 1 and --samples at least 2")
    if args.baseline_steps and args.together:
        raise UserError("--baseline-steps times the baseline before the candidates train; it cannot be used "
                        "with --together (use --minutes)")
    for config in (args.baseline, *args.candidate):
        configs.load_config(config)  # a missing or broken config is one line before anything trains
    out, inception_weights = Path(args.out), args.inception_weights
    runs_dir = out / "runs"
    names = run_names(args.baseline, args.candidate)
    minutes = args.minutes
    if not args.skip_training:
        for name, config in names.items():
            if (runs_dir / name).exists():
                raise UserError(f"{runs_dir / name}: exists; use another --out, or --skip-training to score it again")
        if args.together:
            processes = {name: start_training(config, name, args, runs_dir, minutes) for name, config in names.items()}
            for name, process in processes.items():
                finish_training(names[name], process)
        else:
            if args.baseline_steps:
                train(args.baseline, "baseline", args, runs_dir, None, args.baseline_steps)
                minutes = training_minutes(runs_dir / "baseline")
            for name, config in names.items():
                if name != "baseline" or not args.baseline_steps:
                    train(config, name, args, runs_dir, minutes)
    elif args.baseline_steps:
        minutes = training_minutes(runs_dir / "baseline")
    os.environ.setdefault("KERAS_BACKEND", args.backend or "tensorflow")
    results = {name: score(runs_dir / name, args.samples, inception_weights) for name in names}
    rows = [(names[name], results[name]) for name in names]
    sharing = "all at once, sharing" if args.together else "one after the other, each on"
    timed = f" (the time {args.baseline} took for {args.baseline_steps} steps)" if args.baseline_steps else ""
    print(f"budget {minutes:g} min of training per config{timed} ({sharing} {os.cpu_count()} CPUs); "
          f"{args.samples} generated images vs the {results['baseline']['real_images']} training images")
    print(table(rows))
    for name in names:
        if name != "baseline":
            print(ratios_line(name, results[name], results["baseline"]))
    side_by_side([(f"{name}: {names[name]}", last_grid(runs_dir / name)) for name in names], out / "side_by_side.png")
    summary = {"minutes": minutes, "baseline_steps": args.baseline_steps, "configs": names, "results": results}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {out / 'side_by_side.png'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    from infra import cli

    cli.run(main)
