#!/usr/bin/env bash
# Runs on a fresh cloud VM (setup-aws.sh / setup-gcp.sh call it over SSH): the system packages a
# Deep Learning image may lack (tmux, Python 3.11+ with venv), .venv from requirements.txt, and on a GPU
# machine TensorFlow's CUDA libraries. Idempotent: a second run installs nothing new.
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

# Installs the CUDA wheels that match the pinned TensorFlow (tensorflow[and-cuda]).
install_tensorflow_cuda() {
  local pin
  pin=$(grep -E '^tensorflow==' requirements.txt) || {
    echo "requirements.txt pins no tensorflow version" >&2
    return 1
  }
  .venv/bin/python -m pip install --quiet "tensorflow[and-cuda]==${pin#tensorflow==}"
}

has_nvidia_gpu() {
  nvidia-smi -L >/dev/null 2>&1 || lspci 2>/dev/null | grep -qi nvidia
}

read -ra packages <<<"$(missing_system_packages | tr '\n' ' ')"
if [ ${#packages[@]} -gt 0 ]; then
  step "Install system packages: ${packages[*]}" install_system_packages "${packages[@]}"
fi
step "Install Python packages into .venv" ensure_venv
if has_nvidia_gpu; then
  step "Install TensorFlow's CUDA libraries" install_tensorflow_cuda
fi
echo "Installed. Train with: ./run-model.sh --tmux (see ./run-model.sh --help)"
