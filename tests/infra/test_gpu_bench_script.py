"""bench/gpu.sh: its help, and bad arguments refused in one line before anything runs or is written."""
from __future__ import annotations

import subprocess

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
