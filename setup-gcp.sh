#!/usr/bin/env bash
# Rent a GPU VM on Google Compute Engine for LogoGAN, or delete everything this script made (--teardown).
# Idempotent: a second run finds what the first made (by name and label) and creates nothing new.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=infra/cloud.sh
source infra/cloud.sh

usage() {
  cat <<'EOF'
Usage: ./setup-gcp.sh [options] [-- RUN-MODEL-FLAGS...]
       ./setup-gcp.sh --teardown [--name NAME] [--project PROJECT] [--no-fetch]

Creates (or finds) a GPU VM on Google Compute Engine ready to train LogoGAN: a Deep Learning VM image
(family from deeplearning-platform-release) that installs the NVIDIA driver at first boot, one
accelerator, and a firewall rule NAME-ssh that allows SSH only from this machine's public IP (/32) to
VMs tagged NAME. Then it copies the committed project (git archive HEAD) to ~/logogan on the VM and runs
its install (infra/remote-install.sh). Flags after `--` start training there in tmux:
./run-model.sh --tmux FLAGS. The VM carries the label logogan-stack=NAME.
Credentials come from your gcloud login or service account; nothing prints a key.

Options:
  --name NAME            name of the VM, its network tag and label value; the firewall rule is NAME-ssh
                         (default: logogan)
  --project PROJECT      Google Cloud project (default: gcloud's configured project)
  --zone ZONE            zone (default: us-central1-a)
  --machine-type TYPE    machine type (default: n1-standard-8)
  --accelerator TYPE     GPU type, one per VM (default: nvidia-tesla-t4; "none" for machine types
                         with built-in GPUs such as g2-standard-8)
  --image-family FAMILY  Deep Learning VM image family (default: common-cu128-ubuntu-2204-nvidia-570;
                         list: gcloud compute images list --project deeplearning-platform-release)
  --disk-gb N            boot disk size in GB (default: 100)
  --spot                 a Spot VM (cheaper; Google may reclaim it: train with RESULTS=s3://... so
                         run-model.sh resumes from the last sync)
  --service-account SA   service account for the VM (default: the project's default one)
  --dry-run              print every gcloud command instead of running it (the public IP is still
                         looked up); values not known yet show as <placeholders>
  --teardown             copy ~/logogan/runs back into ./runs, then delete the VM labelled
                         logogan-stack=NAME and the firewall rule NAME-ssh
  --no-fetch             with --teardown: do not copy runs/ back first
  -h, --help             show this help

Examples:
  ./setup-gcp.sh --dry-run
  ./setup-gcp.sh --project my-project --spot -- --data fashion_mnist --date first
  ./setup-gcp.sh --teardown --project my-project
EOF
}

NAME=logogan
ZONE=us-central1-a
MACHINE_TYPE=n1-standard-8
ACCELERATOR=nvidia-tesla-t4
IMAGE_FAMILY=common-cu128-ubuntu-2204-nvidia-570
DISK_GB=100
SPOT=0
SERVICE_ACCOUNT=
DRY_RUN=0
TEARDOWN=0
FETCH=1
TRAIN_ARGS=()

while [ $# -gt 0 ]; do
  case $1 in
    --name | --project | --zone | --machine-type | --accelerator | --image-family | --disk-gb | --service-account)
      [ $# -ge 2 ] || die "$1 needs a value; see --help"
      case $1 in
        --name) NAME=$2 ;;
        --project) export CLOUDSDK_CORE_PROJECT=$2 ;;
        --zone) ZONE=$2 ;;
        --machine-type) MACHINE_TYPE=$2 ;;
        --accelerator) ACCELERATOR=$2 ;;
        --image-family) IMAGE_FAMILY=$2 ;;
        --disk-gb) DISK_GB=$2 ;;
        --service-account) SERVICE_ACCOUNT=$2 ;;
      esac
      shift 2
      ;;
    --spot) SPOT=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    --teardown) TEARDOWN=1; shift ;;
    --no-fetch) FETCH=0; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; TRAIN_ARGS=("$@"); break ;;
    *) die "unknown argument '$1'; see --help" ;;
  esac
done

[[ $NAME =~ ^[a-z][a-z0-9-]{0,39}$ ]] || die "--name '$NAME': use 1-40 lowercase letters, digits or '-', starting with a letter"
[[ $DISK_GB =~ ^[1-9][0-9]*$ ]] || die "--disk-gb '$DISK_GB': expected a whole number of GB, e.g. 100"
FIREWALL_RULE=$NAME-ssh

compute() { cloud_run "$1" gcloud compute "${@:2}"; }
# gcloud compute ssh makes and installs its own key (~/.ssh/google_compute_engine) on first use. It
# forwards stdin, so calls that send nothing read /dev/null.
SSH=(gcloud compute ssh "$NAME" "--zone=$ZONE" --quiet)

# SSH from the caller's /32 only; the rule is updated when the caller's address changed.
ensure_firewall_rule() {
  local cidr=$1 ranges
  ranges=$(compute "" firewall-rules list "--filter=name=$FIREWALL_RULE" '--format=value(sourceRanges.list())')
  if [ -z "$ranges" ]; then
    compute "" firewall-rules create "$FIREWALL_RULE" --network=default --direction=INGRESS --action=ALLOW \
      --rules=tcp:22 "--source-ranges=$cidr" "--target-tags=$NAME" \
      "--description=LogoGAN: SSH from one address (setup-gcp.sh)"
  elif [ "$ranges" != "$cidr" ]; then
    compute "" firewall-rules update "$FIREWALL_RULE" "--source-ranges=$cidr"
  else
    echo "Firewall rule $FIREWALL_RULE exists" >&2
  fi
}

# The labelled VM (started if stopped), or a new one.
ensure_instance() {
  local found name zone status options=()
  found=$(compute "" instances list "--filter=labels.$STACK_TAG=$NAME" '--format=value(name,zone.basename(),status)')
  if [ -n "$found" ]; then
    read -r name zone status <<<"$found"
    [ "$zone" = "$ZONE" ] || die "VM $name already exists in zone $zone; pass --zone $zone"
    echo "VM $name exists ($status)" >&2
    if [ "$status" = TERMINATED ] || [ "$status" = SUSPENDED ]; then
      compute "" instances start "$NAME" "--zone=$ZONE"
    fi
    return 0
  fi
  if [ "$ACCELERATOR" != none ]; then
    options+=("--accelerator=type=$ACCELERATOR,count=1")
  fi
  if [ "$SPOT" = 1 ]; then
    options+=(--provisioning-model=SPOT --instance-termination-action=DELETE)
  fi
  if [ -n "$SERVICE_ACCOUNT" ]; then
    options+=("--service-account=$SERVICE_ACCOUNT" --scopes=cloud-platform)
  fi
  compute "" instances create "$NAME" "--zone=$ZONE" "--machine-type=$MACHINE_TYPE" \
    "--image-family=$IMAGE_FAMILY" --image-project=deeplearning-platform-release \
    --maintenance-policy=TERMINATE "--boot-disk-size=${DISK_GB}GB" --metadata=install-nvidia-driver=True \
    "--labels=$STACK_TAG=$NAME" "--tags=$NAME" "${options[@]}"
}

create() {
  local cidr
  cidr="$(caller_ip)/32"
  ensure_firewall_rule "$cidr"
  ensure_instance
  wait_for_ssh "${SSH[@]}" --command=true </dev/null
  send_project "${SSH[@]}" --command
  cloud_run "" "${SSH[@]}" "--command=$(remote_install_command)" </dev/null
  if [ ${#TRAIN_ARGS[@]} -gt 0 ]; then
    cloud_run "" "${SSH[@]}" "--command=$(remote_train_command "${TRAIN_ARGS[@]}")" </dev/null
  fi
  cat <<EOF

VM ready: $NAME ($MACHINE_TYPE, $ACCELERATOR, $ZONE), SSH from $cidr only.
  Log in:          gcloud compute ssh $NAME --zone=$ZONE
  Start training:  cd $REMOTE_DIR && ./run-model.sh --tmux --results s3://BUCKET/runs --date TAG
  Watch training:  gcloud compute ssh $NAME --zone=$ZONE -- -t tmux attach
  When done:       ./setup-gcp.sh --teardown --name $NAME
EOF
}

# Copy runs/ back from the running VM before it is deleted (results synced to S3 are safe anyway).
fetch_runs() {
  local name=$1 zone=$2 status=0
  cloud_run "" gcloud compute ssh "$name" "--zone=$zone" --quiet "--command=$(remote_has_runs_command)" </dev/null ||
    status=$?
  case $status in
    0) cloud_run "" gcloud compute scp --recurse "--zone=$zone" --quiet "$name:$REMOTE_DIR/runs" . ||
         die "could not copy runs/ back from $name; nothing was deleted (use --no-fetch to delete anyway)" ;;
    1) echo "No runs/ on $name to copy back" >&2 ;;
    *) die "could not reach $name to copy runs/ back; nothing was deleted (use --no-fetch to delete anyway)" ;;
  esac
}

teardown() {
  local found name zone status deleted=0 ranges
  found=$(compute "<name> <zone> RUNNING" instances list "--filter=labels.$STACK_TAG=$NAME" '--format=value(name,zone.basename(),status)')
  while read -r name zone status; do
    [ -n "$name" ] || continue
    if [ "$FETCH" = 1 ] && [ "$status" = RUNNING ]; then fetch_runs "$name" "$zone"; fi
    compute "" instances delete "$name" "--zone=$zone" --quiet
    deleted=$((deleted + 1))
  done <<<"$found"
  ranges=$(compute "<source-ranges>" firewall-rules list "--filter=name=$FIREWALL_RULE" '--format=value(sourceRanges.list())')
  if [ -n "$ranges" ]; then
    compute "" firewall-rules delete "$FIREWALL_RULE" --quiet
  fi
  if [ "$DRY_RUN" = 0 ]; then
    echo "Deleted: $deleted VM(s) labelled $STACK_TAG=$NAME and $([ -n "$ranges" ] && echo 1 || echo 0) firewall rule ($FIREWALL_RULE)."
  fi
}

if [ "$TEARDOWN" = 1 ]; then teardown; else create; fi
