#!/usr/bin/env bash
# Train a LogoGAN model on this machine (laptop CPU or cloud GPU VM): install, fetch the dataset, train,
# and keep the run folder synced to S3 so a lost VM costs at most one sync interval.
set -euo pipefail

# Training steps on a machine without a GPU: about the compute of 1,500 steps of logos_dcgan (the earlier
# default), in which the default config trained 1,719 to 2,976 steps on 2 cores (README, bench runs s17-s19).
CPU_STEPS=2000
DEFAULT_DATA=data/simple_icons_56.npz
DEFAULT_CONFIG=logos_shapes
DEFAULT_SYNC_MINUTES=10
# A new run on a GPU spaces sample grids and checkpoints by minutes of training, not by the config's step
# intervals (set for a CPU's step rate, they would stop a GPU's fused calls every few seconds).
GPU_SAMPLE_MINUTES=2
GPU_CHECKPOINT_MINUTES=10
# Variables a tmux session gets from this shell even when its tmux server started earlier.
TMUX_ENVIRONMENT="AWS_PROFILE AWS_DEFAULT_REGION AWS_REGION AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID \
AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE \
AWS_EC2_METADATA_DISABLED KERAS_BACKEND CUDA_VISIBLE_DEVICES TF_CPP_MIN_LOG_LEVEL"

usage() {
  cat <<EOF
Usage: ./run-model.sh [options]

Installs .venv (requirements.txt), gets the dataset (builds the default one on first use, or pulls an
s3:// one into data/), trains with python -m models.train and prints where the results are. The run
is named CONFIG_DATE and lives in runs/CONFIG_DATE/. Running the same command again resumes that run
from its last checkpoint. With --results, the run folder is pushed to S3 every --sync-minutes and at
exit (also after a failure or Ctrl-C), and a run already under --results is pulled and resumed, so a
reclaimed spot VM loses at most one sync interval. Credentials for S3 come from your AWS profile, the
environment or the instance role.

On a machine without a working nvidia-smi it trains $CPU_STEPS steps (CPU_STEPS at the top of this script)
unless --steps is given. With a GPU (nvidia-smi -L works) it also installs requirements-gpu.txt (the CUDA
builds of TensorFlow and JAX; first time only), checks that the chosen backend sees the GPU (python -m
infra.device_check; if it does not, one line says so and the script stops with status 2 instead of training
on the CPU), prints the device that backend sees, and runs the config's full schedule. A new run on a GPU
writes a sample grid every $GPU_SAMPLE_MINUTES and a checkpoint every $GPU_CHECKPOINT_MINUTES minutes of training
(models.train --set sample_minutes=$GPU_SAMPLE_MINUTES --set checkpoint_minutes=$GPU_CHECKPOINT_MINUTES) in place
of the config's step intervals, which suit a CPU's step rate, unless the config sets sample_minutes or
checkpoint_minutes itself (GPU_SAMPLE_MINUTES and GPU_CHECKPOINT_MINUTES at the top of this script); a
resumed run keeps the spacing it started with.

Options (each has an environment variable, as in the logo walkthrough; a flag wins):
  --data PATH|s3://..  dataset: a .npz file, an s3:// URL (pulled into data/), a folder of images
                       (SVG, PNG, JPEG ... mixed; class subfolders become labels; built with
                       preprocessing.build's defaults and cached until the folder changes), an IDX
                       folder, fashion_mnist or mnist (env XTRAIN; default: $DEFAULT_DATA,
                       built if missing)
  --config NAME|PATH   config name in configs/ or a path to a .json config (env CODE; default:
                       $DEFAULT_CONFIG)
  --date TAG           run tag; the run is named CONFIG_TAG (env DATE; default: the current time,
                       YYYYmmdd-HHMMSS). Give the same tag to resume a run.
  --steps N            train N steps in total (env STEPS; default: the config's schedule with a GPU,
                       $CPU_STEPS without)
  --results s3://..    S3 prefix to sync the run folder to, as PREFIX/CONFIG_TAG/ (env RESULTS;
                       default: none, results stay in runs/)
  --sync-minutes N     minutes between syncs to --results, fractions allowed (env SYNC_MINUTES;
                       default: $DEFAULT_SYNC_MINUTES)
  --backend NAME       Keras backend, tensorflow or jax (env KERAS_BACKEND; default: jax with a GPU or
                       in a multi-VM run, tensorflow otherwise; a resumed run keeps its own). JAX is the
                       GPU default as the project's multi-device engine; which backend is faster on a
                       GPU has not been measured here yet (no GPU was at hand).
  --tmux               start the training in a detached tmux session named CONFIG_TAG, print how to
                       attach, and return; the pane stays open after training ends
  -h, --help           show this help

Several VMs training one run (JAX only; give all three on every VM, the same coordinator and count):
  --coordinator HOST:PORT  address of process 0, which the others connect to (env LOGOGAN_COORDINATOR)
  --num-processes N    how many processes (one per VM) join the run (env LOGOGAN_NUM_PROCESSES)
  --process-id I       this VM's process, 0 to N-1 (env LOGOGAN_PROCESS_ID); only process 0 writes
                       the run's files and syncs them to --results; the others only pull from it
  They are passed on to python -m models.train only when given.

Examples:
  ./run-model.sh
  ./run-model.sh --steps 200 --date quick
  XTRAIN=s3://my-bucket/datasets/simple_icons_56.npz RESULTS=s3://my-bucket/runs DATE=first \\
      ./run-model.sh --tmux
  ./run-model.sh --config configs/cgan_fashion_mnist.json --data fashion_mnist --date f1
  XTRAIN=~/my-logos ./run-model.sh --date mine      # a folder of SVG/PNG logos
  ./run-model.sh --backend tensorflow --date tf1
  ./run-model.sh --date two --coordinator 10.0.0.5:1234 --num-processes 2 --process-id 0   # on VM 1
  ./run-model.sh --date two --coordinator 10.0.0.5:1234 --num-processes 2 --process-id 1   # on VM 2
EOF
}

fail() {
  echo "${0##*/}: error: $*" >&2
  exit 2
}

data=${XTRAIN:-}
config=${CODE:-$DEFAULT_CONFIG}
tag=${DATE:-}
steps=${STEPS:-}
results=${RESULTS:-}
sync_minutes=${SYNC_MINUTES:-$DEFAULT_SYNC_MINUTES}
backend=${KERAS_BACKEND:-}
coordinator=${LOGOGAN_COORDINATOR:-}
num_processes=${LOGOGAN_NUM_PROCESSES:-}
process_id=${LOGOGAN_PROCESS_ID:-}
use_tmux=0

while [ $# -gt 0 ]; do
  case $1 in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
    --data | --config | --date | --steps | --results | --sync-minutes | --backend | --coordinator | \
      --num-processes | --process-id)
      [ $# -ge 2 ] || fail "$1 needs a value; see --help"
      case $1 in
        --data) data=$2 ;;
        --config) config=$2 ;;
        --date) tag=$2 ;;
        --steps) steps=$2 ;;
        --results) results=$2 ;;
        --sync-minutes) sync_minutes=$2 ;;
        --backend) backend=$2 ;;
        --coordinator) coordinator=$2 ;;
        --num-processes) num_processes=$2 ;;
        --process-id) process_id=$2 ;;
      esac
      shift 2
      ;;
    --tmux) use_tmux=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) fail "unknown argument '$1'; see --help" ;;
  esac
done

# Paths the caller gave are relative to where they ran this; the rest happens in the project folder.
if [ -n "$data" ] && [ -e "$data" ]; then data=$(realpath "$data"); fi
if [ -f "$config" ]; then config=$(realpath "$config"); fi
cd "$(dirname "$0")"
# shellcheck source=infra/setup.sh
source infra/setup.sh

if [ -f "$config" ]; then
  config_file=$config
elif [ -f "configs/$config.json" ]; then
  config_file=configs/$config.json
else
  shopt -s nullglob
  names=(configs/*.json)
  names=("${names[@]#configs/}")
  fail "config '$config' not found; give a name from configs/ (${names[*]%.json}) or a path to a .json file"
fi
config_name=$(basename "$config_file" .json)
tag=${tag:-$(date +%Y%m%d-%H%M%S)}
[[ $tag =~ ^[A-Za-z0-9_-]+$ ]] || fail "date tag '$tag': use letters, digits, '-' and '_' only (it names the run folder and the tmux session)"
[[ -z $steps || $steps =~ ^[1-9][0-9]*$ ]] || fail "steps '$steps': expected a positive whole number"
[[ -z $results || $results =~ ^s3://[^/]+ ]] || fail "results '$results': expected an S3 prefix such as s3://my-bucket/runs"
[[ $sync_minutes =~ ^([0-9]+([.][0-9]*)?|[.][0-9]+)$ && ! $sync_minutes =~ ^[0.]+$ ]] ||
  fail "sync minutes '$sync_minutes': expected a positive number of minutes, e.g. 10 or 0.5"
[[ -z $backend || $backend =~ ^(tensorflow|jax)$ ]] || fail "backend '$backend': expected tensorflow or jax"
multi_vm=0
if [ -n "$coordinator$num_processes$process_id" ]; then
  multi_vm=1
  missing=
  if [ -z "$coordinator" ]; then missing+=" --coordinator"; fi
  if [ -z "$num_processes" ]; then missing+=" --num-processes"; fi
  if [ -z "$process_id" ]; then missing+=" --process-id"; fi
  [ -z "$missing" ] || fail "a multi-VM run needs --coordinator, --num-processes and --process-id together (missing:$missing)"
  if ! [[ $coordinator =~ ^([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):([1-9][0-9]{0,4})$ ]] || ((BASH_REMATCH[2] > 65535)); then
    fail "coordinator '$coordinator': expected HOST:PORT, e.g. 10.0.0.5:1234 (port 1 to 65535)"
  fi
  [[ $num_processes =~ ^[1-9][0-9]*$ ]] || fail "num-processes '$num_processes': expected a positive whole number"
  if ! [[ $process_id =~ ^(0|[1-9][0-9]*)$ ]] || ((process_id >= num_processes)); then
    fail "process-id '$process_id': expected a whole number from 0 to $((num_processes - 1)) (--num-processes $num_processes)"
  fi
  [ "$backend" != tensorflow ] || fail "a multi-VM run (--coordinator) needs --backend jax; TensorFlow trains on one machine"
fi
run_name=${config_name}_$tag
run_dir=runs/$run_name
run_url=${results:+${results%/}/$run_name}
# Only process 0 of a multi-VM run writes the run's files, so only it pushes them to --results.
sync_url=$run_url
if [ "$multi_vm" = 1 ] && [ "$process_id" != 0 ]; then sync_url=; fi
multi_vm_flags=()
if [ "$multi_vm" = 1 ]; then
  multi_vm_flags=(--coordinator "$coordinator" --num-processes "$num_processes" --process-id "$process_id")
fi

# --tmux: the same command, without --tmux and with every setting explicit, in a detached session.
if [ "$use_tmux" = 1 ]; then
  command -v tmux >/dev/null 2>&1 || fail "--tmux needs tmux (Debian/Ubuntu: sudo apt-get install tmux)"
  if tmux has-session -t "=$run_name" 2>/dev/null; then
    echo "Run $run_name is already running in tmux. Attach: tmux attach -t $run_name"
    exit 0
  fi
  inner=(./run-model.sh --config "$config_file" --date "$tag" --sync-minutes "$sync_minutes")
  if [ -n "$data" ]; then inner+=(--data "$data"); fi
  if [ -n "$steps" ]; then inner+=(--steps "$steps"); fi
  if [ -n "$results" ]; then inner+=(--results "$results"); fi
  if [ -n "$backend" ]; then inner+=(--backend "$backend"); fi
  inner+=("${multi_vm_flags[@]}")
  # update-environment copies these variables from this shell (not from the tmux server's start).
  tmux start-server \; set-option -ga update-environment " $TMUX_ENVIRONMENT" \; \
    new-session -d -s "$run_name" -c "$PWD" "${inner[@]}" \; \
    set-option -w -t "$run_name" remain-on-exit on
  echo "Training $run_name in tmux session '$run_name'."
  echo "  Attach: tmux attach -t $run_name   (detach again: Ctrl-b d; stop: Ctrl-c in the session)"
  exit 0
fi

gpu=0
if has_working_gpu; then gpu=1; fi
step "Install Python packages into .venv" ensure_venv
if [ "$gpu" = 1 ]; then
  step "Install the CUDA builds of TensorFlow and JAX (requirements-gpu.txt)" ensure_gpu_packages
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
python=.venv/bin/python

s3() { "$python" -m preprocessing.s3 "$@"; }

if [ -z "$data" ]; then
  data=$DEFAULT_DATA
  if [ ! -f "$data" ]; then
    step "Build the default dataset $data" "$python" -m preprocessing.simple_icons --size 56 --out "$data"
  fi
elif [[ $data == s3://* ]]; then
  local_data=data/$(basename "$data")
  step "Fetch the dataset $data into $local_data" s3 pull "$data" "$local_data"
  data=$local_data
fi

# Whether --results holds this run (a listing error, e.g. a missing bucket, stops here with its line).
remote_run_exists() {
  local listing
  listing=$(s3 ls "$run_url/") || exit $?
  grep -q ' s3://' <<<"$listing"
}

# Resume: on a machine without the run folder (a new VM), a run already under --results is pulled
# first; a local run folder is at least as new as anything it synced, so it is kept as it is.
if [ -n "$run_url" ] && [ ! -d "$run_dir" ] && remote_run_exists; then
  step "Fetch run $run_name from $run_url" s3 pull "$run_url" "$run_dir"
fi
json_field() { # FILE KEY: the value of KEY in a JSON file, empty when either is missing
  "$python" -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$1" "$2" 2>/dev/null
}
json_has() { # FILE KEY: whether a JSON file has KEY (null included); false when it cannot be read
  "$python" -c 'import json, sys; sys.exit(sys.argv[2] not in json.load(open(sys.argv[1])))' "$1" "$2" 2>/dev/null
}
run_state=$(json_field "$run_dir/status.json" state) || run_state=
if [ "$run_state" = finished ]; then
  echo "Run $run_name is already finished."
  train=()
elif [ -f "$run_dir/config.json" ]; then
  echo "Resuming $run_name from its last checkpoint in $run_dir"
  # A resumed run keeps the backend it started with unless one is asked for.
  backend=${backend:-$(json_field "$run_dir/config.json" backend)} || true
  train=("$python" -m models.train --resume "$run_dir")
else
  train=("$python" -m models.train --config "$config_file" --data "$data" --name "$run_name" --runs-dir runs)
fi
# JAX is the GPU default as the project's multi-device engine (not yet measured against TensorFlow on a GPU).
if [ -z "$backend" ]; then
  if [ "$gpu" = 1 ] || [ "$multi_vm" = 1 ]; then backend=jax; else backend=tensorflow; fi
fi
export KERAS_BACKEND=$backend

if [ "$gpu" = 1 ]; then
  # Its one line already says what is wrong when the backend does not see the GPU.
  device=$("$python" -m infra.device_check --backend "$backend") || exit $?
  echo "$device; schedule: ${steps:-all} steps of $config_file"
  # A resumed run keeps the spacing its config.json saved; a config that sets either key keeps its own.
  if [[ ${train[*]} == *" --config "* ]] && ! json_has "$config_file" sample_minutes &&
    ! json_has "$config_file" checkpoint_minutes; then
    train+=(--set "sample_minutes=$GPU_SAMPLE_MINUTES" --set "checkpoint_minutes=$GPU_CHECKPOINT_MINUTES")
    echo "Sample grids every $GPU_SAMPLE_MINUTES min, checkpoints every $GPU_CHECKPOINT_MINUTES min of training"
  fi
else
  steps=${steps:-$CPU_STEPS}
  echo "Device: CPU (no working nvidia-smi); schedule: $steps steps"
fi
if [ ${#train[@]} -gt 0 ]; then
  train+=(--backend "$backend" "${multi_vm_flags[@]}")
  if [ -n "$steps" ]; then train+=(--steps "$steps"); fi
fi
if [ -n "$run_url" ] && [ -z "$sync_url" ]; then
  echo "Process $process_id of $num_processes: only process 0 syncs the run to $run_url"
fi

# Sync to S3: every sync_minutes in the background, and once more at exit whatever the outcome.
sync_pid=
# Quiet on success; a push can fail when a file changes while it uploads (the trainer writing), so it
# is tried again at once, up to SYNC_ATTEMPTS times.
SYNC_ATTEMPTS=3
push_results() {
  local attempt
  for ((attempt = 1; attempt < SYNC_ATTEMPTS; attempt++)); do
    s3 push "$run_dir" "$sync_url" >/dev/null 2>&1 && return 0
  done
  s3 push "$run_dir" "$sync_url" >/dev/null
}

sync_periodically() {
  local sleeper
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  while :; do
    sleep "${sync_minutes}m" &
    sleeper=$!
    wait "$sleeper"
    [ -d "$run_dir" ] || continue # the trainer has not made it yet
    push_results || echo "${0##*/}: warning: sync to $sync_url failed; retrying in $sync_minutes min" >&2
  done
}

final_sync() {
  trap - EXIT
  if [ -n "$sync_pid" ]; then
    kill "$sync_pid" 2>/dev/null || true
    wait "$sync_pid" 2>/dev/null || true
  fi
  if [ -n "$sync_url" ] && [ -d "$run_dir" ]; then
    echo "==> Sync $run_dir to $sync_url"
    push_results || { echo "${0##*/}: step failed: Sync $run_dir to $sync_url" >&2; return 1; }
  fi
}

on_exit() {
  local status=$?
  final_sync || status=1
  exit "$status"
}

# Passes TERM or Ctrl-C on to the trainer, which then saves a checkpoint and exits; the exit trap syncs.
train_pid=
stop_training() {
  if [ -z "$train_pid" ]; then exit 130; fi
  kill -TERM "$train_pid" 2>/dev/null || true
}

status=0
sync_status=0
if [ ${#train[@]} -gt 0 ]; then
  trap on_exit EXIT
  if [ -n "$sync_url" ]; then
    sync_periodically &
    sync_pid=$!
  fi
  echo "==> Train $run_name"
  trap stop_training INT TERM
  # In the background, so that a signal reaching this script is handled at once, not after training.
  "${train[@]}" &
  train_pid=$!
  while kill -0 "$train_pid" 2>/dev/null; do wait "$train_pid" || true; done
  wait "$train_pid" || status=$?
  trap - INT TERM
fi
final_sync || sync_status=1
case $status in
  0) ;;
  2) exit 2 ;; # bad input: the trainer's one line already says what is wrong
  130)
    echo "${0##*/}: training stopped; run the same command (same --date) to resume it" >&2
    exit 130
    ;;
  *)
    echo "${0##*/}: step failed: Train $run_name (exit status $status)" >&2
    exit "$status"
    ;;
esac
if [ "$sync_status" -ne 0 ]; then exit 1; fi

samples=("$run_dir"/samples/step_*.png)
echo
echo "Run folder:       $PWD/$run_dir"
if [ -e "${samples[-1]}" ]; then echo "Last sample grid: $PWD/${samples[-1]}"; fi
if [ -n "$sync_url" ]; then echo "Synced to:        $sync_url/"; fi
