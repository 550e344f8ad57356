"""run-tests.sh: its one setting, and how its pytest-xdist workers share out the suite (tests/conftest.py)."""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys

from tests import s3_server
from tests.conftest import work_unit
from tests.infra.cli_stub import PROJECT_ROOT


def test_a_bad_worker_count_is_refused_before_anything_is_installed(tmp_path):
    for name in ("run-tests.sh", "infra/setup.sh"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, tmp_path / name)
    result = subprocess.run([str(tmp_path / "run-tests.sh")], env={"PATH": "/usr/bin:/bin", "LOGOGAN_TEST_WORKERS": "two"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "LOGOGAN_TEST_WORKERS=two: expected a whole number of test workers (0 runs the tests in one process)"]
    assert not (tmp_path / ".venv").exists()


def test_work_units_are_files_shared_fixture_folders_and_the_jax_parts():
    assert work_unit("tests/models/test_train.py::test_a[1]") == "tests/models/test_train.py"
    assert work_unit("tests/serve/test_jobs.py::test_b") == work_unit("tests/serve/test_access.py::test_c") == "tests/serve/"
    assert work_unit("tests/evaluation/test_metrics.py::test_d") == "tests/evaluation/"
    jax_part = "tests/models/test_backends.py::test_trainer_tests_pass_on_jax[presets-and-generation]"
    assert work_unit(jax_part) == jax_part
    assert work_unit("tests/models/test_backends.py::test_each_loss_trains[x]") == "tests/models/test_backends.py"


def test_the_jax_parts_come_first_and_each_unit_stays_together():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests/infra/test_atomic.py", "tests/models/test_backends.py", "tests/preprocessing/test_geometry.py"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    nodeids = [line for line in result.stdout.splitlines() if "::" in line]
    jax_parts = [nodeid for nodeid in nodeids if "test_trainer_tests_pass_on_jax[" in nodeid]
    assert len(jax_parts) >= 2 and nodeids[:len(jax_parts)] == jax_parts
    units = [work_unit(nodeid) for nodeid in nodeids]
    runs = [unit for index, unit in enumerate(units) if index == 0 or unit != units[index - 1]]
    assert len(runs) == len(set(runs)), runs  # no unit is split by another's tests


def test_each_file_runs_on_one_worker():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--numprocesses", "2", "--dist", "loadscope",
         "--no-loadscope-reorder", "tests/infra/test_atomic.py", "tests/preprocessing/test_geometry.py"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    workers_of: dict[str, set[str]] = {}
    for worker, nodeid in re.findall(r"^\[(gw\d+)\] \[ *\d+%\] PASSED (\S+)", result.stdout, re.MULTILINE):
        workers_of.setdefault(nodeid.partition("::")[0], set()).add(worker)
    assert set(workers_of) == {"tests/infra/test_atomic.py", "tests/preprocessing/test_geometry.py"}
    assert all(len(workers) == 1 for workers in workers_of.values()), workers_of


def test_the_s3_server_starts_on_fresh_ports_when_a_worker_beside_it_took_one(tmp_path_factory, monkeypatch):
    with socket.socket() as taken:
        taken.bind((s3_server.LOOPBACK, 0))
        taken.listen()
        probed, free_ports = [], s3_server._free_ports

        def ports_of_which_the_first_set_is_taken(count):
            ports = free_ports(count)
            probed.append([taken.getsockname()[1], *ports[1:]] if not probed else ports)
            return probed[-1]

        monkeypatch.setattr(s3_server, "_free_ports", ports_of_which_the_first_set_is_taken)
        running = s3_server.start_server_on_free_ports(tmp_path_factory)
    try:
        assert len(probed) == 2 and running.ports == probed[1]
        client = running.server.client()
        client.put_object(Bucket=s3_server.READY_BUCKET, Key="k", Body=b"v")
        assert client.get_object(Bucket=s3_server.READY_BUCKET, Key="k")["Body"].read() == b"v"
    finally:
        s3_server.stop_server(running)
