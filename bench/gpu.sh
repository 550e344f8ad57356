#!/usr/bin/env bash
# The GPU measurements the README reports, in one pass sized for a short loan of one GPU (about 8 minutes):
#   1. bench/train_speed.py on configs/dcgan64_reference.json, JAX, batch 64/256/1024 x float32/bfloat16
#      (the trainer beside a bare compiled step), alone on the GPU;
#   2. three runs trained side by side on the same GPU for TRAIN_MINUTES each: the Fashion-MNIST preset
#      (the longest run the loan affords) and the two logo configs the quality bench compares.
# Scoring needs the FID network, so it happens afterwards wherever that file is (see the README):
#   tar xzf OUT/fashion.tar.gz; python -m models.evaluate --run fashion --samples 10000 --metrics fid,kid ...
#
# usage: bench/gpu.sh OUT_DIR [FASHION_MNIST_DIR]
#   OUT_DIR gets device.txt, speed.log, speed.json, train.log and one RUN.tar.gz per run (its folder without
#   checkpoints: config, metrics, loss plot, last grid, generator.keras, which models.evaluate --run samples).
# env: PYTHON (python3), RUNS_DIR (OUT_DIR/runs), SPEED_SECONDS (240: cap on step 1), TRAIN_MINUTES (4), SPEED_STEPS (300)
set -u
case "${1:-}" in -h|--help) sed -n '2,13p' "$0" | cut -c3-; exit 0 ;; esac
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: bench/gpu.sh OUT_DIR [FASHION_MNIST_DIR] (--help for more)" >&2
    exit 2
fi
# Paths as given, from where the script was called; it then works from the repository's root.
out=$(realpath -m "$1")
fashion=$(realpath -m "${2:-${LOGOGAN_SHARED:-../shared}/data/fashion-mnist-8k}")
runs=$(realpath -m "${RUNS_DIR:-$out/runs}")
py=${PYTHON:-python3}
[ -d "$fashion" ] || { echo "bench/gpu.sh: $fashion: no such folder; allowed: a folder of Fashion-MNIST's IDX gzip files (default \$LOGOGAN_SHARED/data/fashion-mnist-8k)" >&2; exit 2; }
cd "$(dirname "$0")/.." || exit 2
mkdir -p "$out" "$runs"
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
# Three trainings share the GPU in step 2: each takes memory as it needs it instead of JAX's default 75%.
export XLA_PYTHON_CLIENT_PREALLOCATE=false

{ nvidia-smi -L; "$py" -c 'import jax, keras; print("jax", jax.__version__, "keras", keras.__version__, jax.devices())'
} 2>&1 | tee "$out/device.txt"

echo "== 1. train_speed ($(date -u +%T))"
timeout "${SPEED_SECONDS:-240}" "$py" bench/train_speed.py --config configs/dcgan64_reference.json --backend jax \
    --batch 64 256 1024 --precision float32 bfloat16 --steps "${SPEED_STEPS:-300}" --warmup 30 \
    --json "$out/speed.json" 2>&1 | tee "$out/speed.log"

echo "== 2. trainings, ${TRAIN_MINUTES:-4} min each, side by side ($(date -u +%T))"
# Grids and checkpoints at CPU intervals would stop a fast GPU every few seconds; these only set how often.
train() {
    local name=$1; shift
    "$py" -m models.train "$@" --name "$name" --runs-dir "$runs" --steps 10000000 --no-progress \
        --set time_limit_minutes="${TRAIN_MINUTES:-4}" --set sample_interval=5000 --set checkpoint_interval=100000 \
        > "$runs/$name.log" 2>&1
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
echo "== done ($(date -u +%T))"
