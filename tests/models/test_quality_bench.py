"""bench/quality.py: the speed column is each run's rate over its whole time budget."""
from __future__ import annotations

from tests.models.helpers import PROJECT_ROOT, load_script

BENCH = PROJECT_ROOT / "bench" / "quality.py"


def load_bench():
    return load_script(BENCH, "quality_bench")


def test_the_speed_is_the_runs_images_over_its_budget_not_its_last_interval():
    bench = load_bench()
    # 5,401 steps of 32 images in 6 minutes: the logos run whose last logged interval read 33 img/s.
    assert bench.budget_images_per_sec({"batch_size": 32, "time_limit_minutes": 6.0}, 5401) == 5401 * 32 / 360
    assert bench.budget_images_per_sec({"batch_size": 32, "time_limit_minutes": None}, 5401) is None


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
