#!/usr/bin/env bash
# The GPU measurements the README reports, in one pass sized for a short loan of one GPU (under 8 minutes):
#   1. python -m infra.device_check: the backend sees the GPU, computes as NumPy does, and loads the wheels'
#      CUDA libraries (a failure here stops the script: nothing after it would mean anything);
#   2. bench/train_speed.py on configs/dcgan64_reference.json, JAX, batch 64 and 1024 x float32 and bfloat16:
#      per row the trainer, the trainer with samples/checkpoints/logs every OUTPUTS_EVERY steps, the bare step
#      and the fused bare step (lax.scan of the trainer's steps per call); then the default preset
#      (configs/logos_shapes.json) at its own batch, the figure step 3 is compared with;
#   3. a short real run of the default preset (run-model.sh's) for REAL_MINUTES, with its periodic work on;
#   4. only when TRAIN_MINUTES > 0: three runs trained side by side on the same GPU for TRAIN_MINUTES each: the
#      Fashion-MNIST preset and the two logo configs the quality bench compares (one RUN.tar.gz each).
# Scoring needs the FID network, so it happens afterwards wherever that file is (see the README):
#   tar xzf OUT/fashion.tar.gz; python -m models.evaluate --run fashion --samples 10000 --metrics fid,kid ...
#
# usage: bench/gpu.sh OUT_DIR [FASHION_MNIST_DIR]
#   OUT_DIR gets gpu.json and gpu.txt (everything measured: one JSON, one table), device.txt, speed.log,
#   speed.json, real.log, and with TRAIN_MINUTES train.log and one RUN.tar.gz per run (its folder without
#   checkpoints: config, metrics, loss plot, last grid, generator.keras, which models.evaluate --run samples).
# env: PYTHON (python3), RUNS_DIR (OUT_DIR/runs), SPEED_SECONDS (300: cap on step 2), SPEED_STEPS (200),
#   OUTPUTS_EVERY (100), REAL_MINUTES (1.5), TRAIN_MINUTES (0: step 4 left out)
set -u
case "${1:-}" in -h|--help) sed -n '2,21p' "$0" | cut -c3-; exit 0 ;; esac
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: bench/gpu.sh OUT_DIR [FASHION_MNIST_DIR] (--help for more)" >&2
    exit 2
fi
# Paths as given, from where the script was called; it then works from the repository's root.
out=$(realpath -m "$1")
fashion=$(realpath -m "${2:-${LOGOGAN_SHARED:-../shared}/data/fashion-mnist-8k}")
runs=$(realpath -m "${RUNS_DIR:-$out/runs}")
py=${PYTHON:-python3}
train_minutes=${TRAIN_MINUTES:-0}
# The folder is step 4's; one named on the command line must exist even when step 4 is left out.
if { [ "$train_minutes" != 0 ] || [ $# -eq 2 ]; } && [ ! -d "$fashion" ]; then
    echo "bench/gpu.sh: $fashion: no such folder; allowed: a folder of Fashion-MNIST's IDX gzip files (default \$LOGOGAN_SHARED/data/fashion-mnist-8k), or TRAIN_MINUTES=0" >&2
    exit 2
fi
cd "$(dirname "$0")/.." || exit 2
mkdir -p "$out" "$runs"
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1

echo "== 1. device check ($(date -u +%T))"
{ nvidia-smi -L; "$py" -m infra.device_check --backend jax; } 2>&1 | tee "$out/device.txt"
[ "${PIPESTATUS[0]}" = 0 ] || { echo "bench/gpu.sh: the device check failed (above); fix it first" >&2; exit 1; }

echo "== 2. train_speed ($(date -u +%T))"
speed_every=${OUTPUTS_EVERY:-100}
# shellcheck disable=SC2016  # $0-$3 are the inner shell's arguments, expanded there
timeout "${SPEED_SECONDS:-300}" bash -c '
    "$0" bench/train_speed.py --config configs/dcgan64_reference.json --backend jax --batch 64 1024 \
        --precision float32 bfloat16 --steps "$1" --warmup 30 --outputs-every "$2" --json "$3/speed.json" &&
    "$0" bench/train_speed.py --config configs/logos_shapes.json --backend jax --batch 32 --precision float32 \
        --steps "$1" --warmup 30 --outputs-every "$2" --json "$3/speed_default.json"' \
    "$py" "${SPEED_STEPS:-200}" "$speed_every" "$out" 2>&1 | tee "$out/speed.log"

echo "== 3. real run of the default preset, ${REAL_MINUTES:-1.5} min ($(date -u +%T))"
rm -rf "$runs/real"
"$py" -m models.train --config configs/logos_shapes.json --data data/simple_icons_56.npz --name real \
    --runs-dir "$runs" --steps 10000000 --no-progress --set time_limit_minutes="${REAL_MINUTES:-1.5}" \
    > "$out/real.log" 2>&1
echo "real: exit status $?" >> "$out/real.log"
tail -n 3 "$out/real.log"

if [ "$train_minutes" != 0 ]; then
    echo "== 4. trainings, $train_minutes min each, side by side ($(date -u +%T))"
    # Three trainings share the GPU: each takes memory as it needs it instead of JAX's default 75%.
    train() {
        local name=$1; shift
        XLA_PYTHON_CLIENT_PREALLOCATE=false "$py" -m models.train "$@" --name "$name" --runs-dir "$runs" \
            --steps 10000000 --no-progress --set time_limit_minutes="$train_minutes" > "$runs/$name.log" 2>&1
        echo "$name: exit status $?" >> "$runs/$name.log"
    }
    train fashion --config configs/fashion_small_data.json --data fashion_mnist --data-dir "$fashion" &
    train logos_dcgan --config configs/logos_dcgan.json &
    train logos_small_data --config configs/logos_small_data.json &
    wait
    for run in fashion logos_dcgan logos_small_data; do
        { echo "== $run"; tr '\r' '\n' < "$runs/$run.log" | tail -n 8; } >> "$out/train.log"
        grids=("$runs/$run"/samples/step_*.png)  # zero-padded step numbers: the glob's order is the steps'
        [ -e "${grids[-1]}" ] && cp "${grids[-1]}" "$runs/$run/last_grid.png"
        tar czf "$out/$run.tar.gz" -C "$runs" --exclude=checkpoints --exclude=tensorboard --exclude=samples \
            --exclude=progress.gif "$run" "$run.log"
    done
    cat "$out/train.log"
fi

"$py" bench/gpu_summary.py "$out" "$runs/real"
echo "== done ($(date -u +%T))"
