"""bench/gpu.sh: its help, and bad arguments refused in one line before anything runs or is written."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.models.helpers import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "bench" / "gpu.sh"


def run_script(*args: str, cwd=PROJECT_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_help_names_the_arguments_outputs_and_settings():
    result = run_script("--help")
    assert result.returncode == 0
    for word in ("usage: bench/gpu.sh OUT_DIR [FASHION_MNIST_DIR]", "speed.json", "RUN.tar.gz", "TRAIN_MINUTES",
                 "SPEED_SECONDS", "RUNS_DIR"):
        assert word in result.stdout


def test_missing_or_extra_arguments_are_one_line_and_status_2():
    for args in ((), ("a", "b", "c")):
        result = run_script(*args)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.splitlines() == ["usage: bench/gpu.sh OUT_DIR [FASHION_MNIST_DIR] (--help for more)"]


def test_a_missing_fashion_folder_is_named_and_nothing_is_written(tmp_path):
    result = run_script(str(tmp_path / "out"), "no-such-folder", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert f"{tmp_path / 'no-such-folder'}: no such folder; allowed:" in line
    assert not (tmp_path / "out").exists()


def test_help_names_the_new_steps_and_outputs():
    result = run_script("--help")
    for word in ("infra.device_check", "gpu.json", "gpu.txt", "REAL_MINUTES", "OUTPUTS_EVERY", "fused bare step"):
        assert word in result.stdout


def test_the_script_runs_the_check_the_benches_and_the_real_run_then_summarizes(tmp_path):
    # A Python that records each command instead of running it (the summary itself runs for real) and an
    # nvidia-smi that lists one GPU: the order, the arguments and the one JSON and one table are checked.
    log = tmp_path / "calls.jsonl"
    python = tmp_path / "python"
    python.write_text(f"#!{sys.executable}\n"
                      "import json, os, sys\n"
                      f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
                      "if sys.argv[1:2] == ['bench/gpu_summary.py']:\n"
                      f"    os.execv({sys.executable!r}, [{sys.executable!r}] + sys.argv[1:])\n"
                      "if sys.argv[1:3] == ['-m', 'infra.device_check']:\n"
                      "    print('Device: 1 GPU (NVIDIA H100) seen by jax; conv, matmul and sum match NumPy; jax 0.4')\n")
    python.chmod(0o755)
    nvidia_smi = tmp_path / "bin" / "nvidia-smi"
    nvidia_smi.parent.mkdir()
    nvidia_smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3'\n")
    nvidia_smi.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python), "PATH": f"{nvidia_smi.parent}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls[0] == ["-m", "infra.device_check", "--backend", "jax"]
    speed = calls[1]
    assert speed[:3] == ["bench/train_speed.py", "--config", "configs/dcgan64_reference.json"]
    assert speed[speed.index("--batch") + 1:speed.index("--precision")] == ["64", "1024"]
    assert speed[speed.index("--precision") + 1:speed.index("--steps")] == ["float32", "bfloat16"]
    assert speed[speed.index("--outputs-every") + 1] == "100"
    assert calls[2][:3] == ["bench/train_speed.py", "--config", "configs/logos_shapes.json"]
    assert calls[3][:4] == ["-m", "models.train", "--config", "configs/logos_shapes.json"]
    assert "time_limit_minutes=1.5" in calls[3]
    assert calls[4][0] == "bench/gpu_summary.py" and len(calls) == 5  # no side-by-side trainings by default
    summary = json.loads((tmp_path / "out" / "gpu.json").read_text())
    assert summary["device"].splitlines()[0] == "GPU 0: NVIDIA H100 80GB HBM3"
    assert summary["speed"] == [] and summary["real_over_bench_trainer"] is None  # nothing ran: not measured
    assert "speed: not measured" in (tmp_path / "out" / "gpu.txt").read_text()


def test_the_summary_compares_the_real_run_with_the_bench_trainer(tmp_path):
    from tests.models.helpers import load_script

    summary_module = load_script(PROJECT_ROOT / "bench" / "gpu_summary.py", "gpu_summary")
    out, run = tmp_path / "out", tmp_path / "real"
    out.mkdir()
    run.mkdir()
    row = {"backend": "jax", "config": "configs/dcgan64_reference.json", "batch": 64, "precision": "float32",
           "steps_per_call": 8, "trainer": 20000.0, "trainer_outputs": 19000.0, "bare": 14000.0,
           "bare_fused": 21000.0, "outputs_ratio": 0.95}
    (out / "speed.json").write_text(json.dumps([row, {**row, "kind": "scaling"}]))
    (out / "speed_default.json").write_text(json.dumps([{**row, "config": "configs/logos_shapes.json",
                                                         "batch": 32, "trainer": 10000.0}]))
    (run / "config.json").write_text(json.dumps({"batch_size": 32, "steps_per_call": None}))
    (run / "status.json").write_text(json.dumps({"state": "finished", "step": 300}))
    # The first record holds compilation; the next two: 100 steps x 32 images in 0.4 s, then in 0.4 s.
    records = [{"step": 100, "images_per_sec": 100.0}, {"step": 200, "images_per_sec": 8000.0},
               {"step": 300, "images_per_sec": 8000.0}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    summary = summary_module.summarize(out, run)
    assert [r["config"] for r in summary["speed"]] == ["configs/dcgan64_reference.json", "configs/logos_shapes.json"]
    assert summary["real"]["images_per_sec"] == 8000.0 and summary["real"]["note"] == "2 records"
    assert summary["real_over_bench_trainer"] == 0.8
    text = summary_module.table(summary)
    assert "dcgan64_reference" in text and " 0.95" in text and "real/bench 0.80" in text
