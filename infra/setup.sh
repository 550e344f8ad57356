# shellcheck shell=bash
# Sourced by run-model.sh and run-tests.sh: the one install both need, idempotent.
# Creates .venv with Python 3.11+ on first use and installs requirements.txt whenever it changed (and, on
# a GPU machine, requirements-gpu.txt: ensure_gpu_packages).

# step DESCRIPTION COMMAND...: run a step, and on failure name it and stop the script with the
# command's own exit status (2 for bad input, 130 for Ctrl-C, ...).
step() {
  local description=$1 status=0
  shift
  echo "==> ${description}"
  "$@" || status=$?
  if [ "$status" -ne 0 ]; then
    echo "${0##*/}: step failed: ${description}" >&2
    exit "$status"
  fi
}

find_python() {
  local candidate
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "Python 3.11 or newer is needed (found none on PATH)" >&2
  return 1
}

ensure_venv() {
  local python stamp wanted
  if ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
    python=$(find_python) || return 1
    rm -rf .venv
    "$python" -m venv .venv || {
      echo "could not create .venv; on Debian/Ubuntu: apt-get install python3-venv" >&2
      return 1
    }
  fi
  stamp=.venv/.requirements.sha256
  wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip &&
      .venv/bin/python -m pip install --quiet -r requirements.txt &&
      echo "$wanted" >"$stamp"
  fi
}

# Whether this machine has an NVIDIA GPU that its driver answers for.
has_working_gpu() {
  nvidia-smi -L >/dev/null 2>&1
}

# On top of ensure_venv: the CUDA builds of TensorFlow and JAX (requirements-gpu.txt), installed again only
# when it or requirements.txt changed.
ensure_gpu_packages() {
  local stamp wanted
  stamp=.venv/.requirements-gpu.sha256
  wanted=$(cat requirements.txt requirements-gpu.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    .venv/bin/python -m pip install --quiet -r requirements-gpu.txt &&
      echo "$wanted" >"$stamp"
  fi
}
