"""bench/quality.py: the speed column is each run's rate over its whole time budget, and --baseline-steps
gives every candidate the time the baseline took."""
from __future__ import annotations

import json

import pytest

from infra.errors import UserError
from tests.models.helpers import PROJECT_ROOT, load_script, make_dataset, tiny_config, write_config

BENCH = PROJECT_ROOT / "bench" / "quality.py"


def load_bench():
    return load_script(BENCH, "quality_bench")


def test_the_speed_is_the_runs_images_over_its_budget_not_its_last_interval():
    bench = load_bench()
    # 5,401 steps of 32 images in 6 minutes: the logos run whose last logged interval read 33 img/s.
    assert bench.budget_images_per_sec({"batch_size": 32, "time_limit_minutes": 6.0}, {"step": 5401}) == 5401 * 32 / 360
    assert bench.budget_images_per_sec({"batch_size": 32, "time_limit_minutes": None}, {"step": 5401}) is None
    # The time the loop really took, where the run recorded it, wins over the limit it was given.
    status = {"step": 1500, "training_seconds": 125.0}
    assert bench.budget_images_per_sec({"batch_size": 64, "time_limit_minutes": None}, status) == 1500 * 64 / 125


def test_the_table_shows_that_rate_and_a_dash_without_one():
    bench = load_bench()
    scores = {"kid": 0.0797, "kid_std": 0.0016, "fid": 137.7}
    rows = [("a.json", {"steps": 5401, "images_per_sec": 5401 * 32 / 360, **scores}),
            ("b.json", {"steps": 10, "images_per_sec": None, **scores, "class_accuracy": 0.9, "judge_accuracy": 0.8})]
    header, first, second = bench.table(rows).splitlines()
    assert header.split()[:3] == ["config", "steps", "img/s"]
    assert first.split() == ["a.json", "5401", "480", "79.7", "±", "1.6", "137.7", "-"]
    assert second.split() == ["b.json", "10", "-", "79.7", "±", "1.6", "137.7", "0.900", "(0.800)"]


def test_one_baseline_serves_several_candidates_each_with_its_own_run_and_ratios():
    bench = load_bench()
    assert bench.run_names("b.json", ["c.json"]) == {"baseline": "b.json", "candidate": "c.json"}
    assert bench.run_names("b.json", ["c.json", "c.json"]) == {
        "baseline": "b.json", "candidate1": "c.json", "candidate2": "c.json"}
    args = bench.build_parser().parse_args(["--baseline", "b.json", "--candidate", "c.json", "--candidate", "d.json",
                                            "--minutes", "1"])
    assert args.candidate == ["c.json", "d.json"]
    line = bench.ratios_line("candidate2", {"kid": 0.03, "fid": 60.0}, {"kid": 0.06, "fid": 100.0})
    assert line == "candidate2 / baseline: KID x0.50 (-50%), FID x0.60 (-40%)"


def test_baseline_steps_excludes_minutes_and_together_in_one_line(tmp_path, capsys):
    bench = load_bench()
    with pytest.raises(SystemExit) as error:
        bench.build_parser().parse_args(["--baseline", "b.json", "--candidate", "c.json", "--minutes", "1",
                                         "--baseline-steps", "10"])
    assert error.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(UserError, match="cannot be used with --together"):
        bench.main(["--baseline", "b.json", "--candidate", "c.json", "--baseline-steps", "10", "--together"])
    with pytest.raises(UserError, match="--baseline-steps at least 1"):
        bench.main(["--baseline", "b.json", "--candidate", "c.json", "--baseline-steps", "0"])
    (tmp_path / "status.json").write_text(json.dumps({"state": "finished", "step": 3}))
    with pytest.raises(UserError, match="no training_seconds"):
        bench.training_minutes(tmp_path)


def test_each_candidate_trains_for_the_time_the_baseline_took_for_its_steps(tmp_path, monkeypatch, capsys):
    bench = load_bench()
    config = write_config(tmp_path / "tiny.json", tiny_config(make_dataset(tmp_path / "squares.npz"),
                                                              tensorboard=False, sample_interval=2))
    # Scoring needs the FID network; what is under test here is the budget each run trained with.
    monkeypatch.setattr(bench, "score", lambda run_dir, samples, weights: {
        "steps": json.loads((run_dir / "status.json").read_text())["step"], "images_per_sec": 1.0,
        "real_images": 48, "generated_images": samples, "kid": 0.01, "kid_std": 0.001, "fid": 10.0})
    out = tmp_path / "out"
    assert bench.main(["--baseline", str(config), "--candidate", str(config), "--baseline-steps", "4",
                       "--out", str(out)]) == 0

    runs = out / "runs"
    baseline_status = json.loads((runs / "baseline" / "status.json").read_text())
    assert baseline_status["step"] == 4 and baseline_status["training_seconds"] > 0
    minutes = baseline_status["training_seconds"] / 60
    assert json.loads((runs / "baseline" / "config.json").read_text())["time_limit_minutes"] is None
    assert json.loads((runs / "candidate" / "config.json").read_text())["time_limit_minutes"] == pytest.approx(minutes)
    candidate_status = json.loads((runs / "candidate" / "status.json").read_text())
    assert candidate_status["training_seconds"] >= 60 * minutes * 0.99
    summary = json.loads((out / "results.json").read_text())
    assert summary["baseline_steps"] == 4 and summary["minutes"] == pytest.approx(minutes)
    assert "took for 4 steps" in capsys.readouterr().out
