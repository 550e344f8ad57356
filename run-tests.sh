#!/usr/bin/env bash
# The whole test suite: installs what it needs into .venv, then runs pytest.
# Extra arguments go to pytest, e.g. ./run-tests.sh tests/models -k resume
# The tests run on pytest-xdist workers, one per core and at most 4 (each is a TensorFlow process of a few GB);
# LOGOGAN_TEST_WORKERS=N sets their number, 0 runs every test in one process, in order.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=infra/setup.sh
source infra/setup.sh

cores=$(nproc)
workers=${LOGOGAN_TEST_WORKERS:-$((cores < 4 ? cores : 4))}
if ! [[ $workers =~ ^[0-9]+$ ]]; then
  echo "LOGOGAN_TEST_WORKERS=$workers: expected a whole number of test workers (0 runs the tests in one process)" >&2
  exit 2
fi

step "Install Python packages into .venv" ensure_venv
export TF_CPP_MIN_LOG_LEVEL=2
step "Run the test suite" .venv/bin/python -m pytest --numprocesses "$workers" --dist loadscope --no-loadscope-reorder "$@"
