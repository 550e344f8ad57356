"""bench/gpu.sh's last step: everything it measured in one JSON (gpu.json) and one table (gpu.txt).

    python bench/gpu_summary.py OUT_DIR REAL_RUN_DIR

Reads OUT_DIR/device.txt, speed.json and speed_default.json (bench/train_speed.py's rows) and the real run's
metrics.jsonl and status.json; a part that is missing is reported as not measured, never guessed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra import cli  # noqa: E402  (after the path insert, so the script runs from anywhere)
from infra.atomic import write_json, write_text  # noqa: E402

NOT_MEASURED = "not measured"
HEADER = (f"{'config':<26} {'batch':>5} {'precision':<9} {'calls':>5} {'trainer':>9} {'outputs':>9} {'bare':>9} "
          f"{'fused':>9} {'tr/fused':>8} {'out/tr':>7}")


def read_rows(path: Path) -> list[dict]:
    try:
        return [row for row in json.loads(path.read_text()) if row.get("kind") != "scaling"]
    except (OSError, ValueError):
        return []


def real_run_speed(run_dir: Path, batch_size: int | None) -> dict:
    """The real run's images/s over its records after the first (which holds compilation)."""
    from bench.train_speed import images_per_second_after

    try:
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
        status = json.loads((run_dir / "status.json").read_text())
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return {"images_per_sec": None, "note": f"{run_dir}: no finished run to read"}
    speeds = [record for record in records if "images_per_sec" in record]
    if len(speeds) < 2:
        return {"images_per_sec": None, "note": "fewer than 2 speed records", "state": status.get("state")}
    speed, note = images_per_second_after(speeds, speeds[0]["step"], batch_size or config["batch_size"])
    return {"images_per_sec": speed, "note": note, "state": status.get("state"), "step": status.get("step"),
            "batch": config["batch_size"], "steps_per_call": config.get("steps_per_call")}


def cell(value, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def table(summary: dict) -> str:
    lines = [summary["device"] or "device: " + NOT_MEASURED, "", HEADER]
    for row in summary["speed"]:
        fused_ratio = row["trainer"] / row["bare_fused"] if row.get("trainer") and row.get("bare_fused") else None
        lines.append(f"{Path(row['config']).stem:<26} {row['batch']:>5} {row['precision']:<9} "
                     f"{row.get('steps_per_call', '-'):>5} {cell(row.get('trainer')):>9} "
                     f"{cell(row.get('trainer_outputs')):>9} {cell(row.get('bare')):>9} "
                     f"{cell(row.get('bare_fused')):>9} {cell(fused_ratio, '.2f'):>8} "
                     f"{cell(row.get('outputs_ratio'), '.2f'):>7}")
    if not summary["speed"]:
        lines.append(f"speed: {NOT_MEASURED}")
    real = summary["real"]
    ratio = summary["real_over_bench_trainer"]
    lines += ["", f"real run of the default preset: {cell(real['images_per_sec'])} img/s ({real['note']}); "
                  f"bench trainer {cell(summary['bench_trainer_default'])} img/s; real/bench "
                  f"{cell(ratio, '.2f') if ratio is not None else NOT_MEASURED}"]
    return "\n".join(lines) + "\n"


def summarize(out: Path, real_run: Path) -> dict:
    device_file = out / "device.txt"
    device = device_file.read_text().strip() if device_file.is_file() else None
    speed = read_rows(out / "speed.json")
    default_rows = read_rows(out / "speed_default.json")
    bench_trainer = default_rows[0]["trainer"] if default_rows else None
    real = real_run_speed(real_run, None)
    ratio = real["images_per_sec"] / bench_trainer if real["images_per_sec"] and bench_trainer else None
    return {"device": device, "speed": speed + default_rows, "real": real,
            "bench_trainer_default": bench_trainer, "real_over_bench_trainer": ratio}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/gpu_summary.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="bench/gpu.sh's OUT_DIR")
    parser.add_argument("real_run", type=Path, help="the run folder of bench/gpu.sh's real run")
    args = parser.parse_args(argv)
    summary = summarize(args.out, args.real_run)
    write_json(args.out / "gpu.json", summary)
    text = table(summary)
    write_text(args.out / "gpu.txt", text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    cli.run(main)
