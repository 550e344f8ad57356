#!/usr/bin/env bash
# Runs on a fresh cloud VM (setup-aws.sh / setup-gcp.sh call it over SSH): the system packages a
# Deep Learning image may lack (tmux, Python 3.11+ with venv), .venv from requirements.txt, and on a GPU
# machine the CUDA builds of TensorFlow and JAX (requirements-gpu.txt). Idempotent: a second run installs
# nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=infra/setup.sh
source infra/setup.sh

missing_system_packages() {
  local python
  command -v tmux >/dev/null 2>&1 || echo tmux
  if python=$(find_python 2>/dev/null); then
    "$python" -m ensurepip --version >/dev/null 2>&1 || echo "${python##*/}-venv"
  else
    echo python3.11 python3.11-venv
  fi
}

install_system_packages() {
  sudo apt-get update -qq &&
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# lspci too: a Deep Learning VM may still be installing its driver at boot when this runs.
has_nvidia_gpu() {
  has_working_gpu || lspci 2>/dev/null | grep -qi nvidia
}

read -ra packages <<<"$(missing_system_packages | tr '\n' ' ')"
if [ ${#packages[@]} -gt 0 ]; then
  step "Install system packages: ${packages[*]}" install_system_packages "${packages[@]}"
fi
step "Install Python packages into .venv" ensure_venv
if has_nvidia_gpu; then
  step "Install the CUDA builds of TensorFlow and JAX (requirements-gpu.txt)" ensure_gpu_packages
  # Each backend on the GPU: it is seen, it computes as NumPy does, and no LD_LIBRARY_PATH folder shadows the
  # wheels' CUDA libraries; else one line names the fix and the install stops.
  for backend in jax tensorflow; do
    step "Check that $backend computes on the GPU (infra.device_check)" .venv/bin/python -m infra.device_check \
      --backend "$backend"
  done
fi
echo "Installed. Train with: ./run-model.sh --tmux (see ./run-model.sh --help)"
