#!/usr/bin/env bash
# The whole test suite: installs what it needs into .venv, then runs pytest.
# Extra arguments go to pytest, e.g. ./run-tests.sh tests/models -k resume
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=infra/setup.sh
source infra/setup.sh

step "Install Python packages into .venv" ensure_venv
export TF_CPP_MIN_LOG_LEVEL=2
step "Run the test suite" .venv/bin/python -m pytest "$@"
