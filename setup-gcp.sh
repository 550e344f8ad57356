#!/usr/bin/env bash
# Rent a GPU VM on Google Compute Engine for LogoGAN, or delete everything this script made (--teardown).
# Idempotent: a second run finds what the first made (by name and label) and creates nothing new.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=infra/cloud.sh
source infra/cloud.sh

usage() {
  cat <<'EOF'
Usage: ./setup-gcp.sh [options] [--nodes N] [-- RUN-MODEL-FLAGS...]
       ./setup-gcp.sh --teardown [--name NAME] [--project PROJECT] [--no-fetch]

Creates (or finds) a GPU VM on Google Compute Engine ready to train LogoGAN: a Deep Learning VM image
(family from deeplearning-platform-release) that installs the NVIDIA driver at first boot, one
accelerator, and a firewall rule NAME-ssh that allows SSH only from this machine's public IP (/32) to
VMs tagged NAME. Then it copies the committed project (git archive HEAD) to ~/logogan on the VM and runs
its install (infra/remote-install.sh). Flags after `--` start training there in tmux:
./run-model.sh --tmux FLAGS. The VM carries the label logogan-stack=NAME.
With --nodes N it rents N such VMs for one data-parallel run (JAX's distributed runtime) instead.
Credentials come from your gcloud login or service account; nothing prints a key.

Options:
  --name NAME            name of the VM, its network tag and label value; the firewall rule is NAME-ssh
                         (default: logogan)
  --project PROJECT      Google Cloud project (default: gcloud's configured project)
  --zone ZONE            zone (default: us-central1-a)
  --machine-type TYPE    machine type (default: n1-standard-8)
  --accelerator TYPE     GPU type, one per VM (default: nvidia-tesla-t4, or none for the machine types
                         with GPUs built in: a2-*, a3-*, a4-*, g2-*, ...; "none" leaves it out). A
                         multi-GPU type (a2-highgpu-4g) needs nothing more: a run uses every GPU of a VM
  --nodes N              N VMs NAME-0 ... NAME-<N-1> (1-64, default 1) in ZONE, and a firewall rule
                         NAME-internal that opens every TCP port between VMs tagged NAME only (NCCL
                         picks its ports); the flags after `--` start one tmux session per VM, VM I
                         adding --coordinator NAME-0'S-INTERNAL-IP:1234 --num-processes N --process-id I
  --image-family FAMILY  Deep Learning VM image family (default: common-cu128-ubuntu-2204-nvidia-570;
                         list: gcloud compute images list --project deeplearning-platform-release)
  --disk-gb N            boot disk size in GB (default: 100)
  --spot                 a Spot VM (cheaper; Google may reclaim it: train with RESULTS=s3://... so
                         run-model.sh resumes from the last sync)
  --service-account SA   service account for the VM (default: the project's default one)
  --dry-run              print every gcloud command instead of running it (the public IP is still
                         looked up); values not known yet show as <placeholders>
  --teardown             copy ~/logogan/runs back into ./runs (from NAME or NAME-0, which alone writes
                         it), then delete the VMs labelled logogan-stack=NAME and the firewall rules
                         NAME-ssh and NAME-internal
  --no-fetch             with --teardown: do not copy runs/ back first
  -h, --help             show this help

Examples:
  ./setup-gcp.sh --dry-run
  ./setup-gcp.sh --project my-project --spot -- --data fashion_mnist --date first
  ./setup-gcp.sh --project my-project --nodes 2 --machine-type a2-highgpu-4g --zone us-central1-f -- \
      --data fashion_mnist --date wide
  ./setup-gcp.sh --teardown --project my-project
EOF
}

NAME=logogan
ZONE=us-central1-a
MACHINE_TYPE=n1-standard-8
ACCELERATOR=
IMAGE_FAMILY=common-cu128-ubuntu-2204-nvidia-570
DISK_GB=100
SPOT=0
SERVICE_ACCOUNT=
NODES=1
DRY_RUN=0
TEARDOWN=0
FETCH=1
TRAIN_ARGS=()

while [ $# -gt 0 ]; do
  case $1 in
    --name | --project | --zone | --machine-type | --accelerator | --image-family | --disk-gb | --service-account | --nodes)
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
        --nodes) NODES=$2 ;;
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
check_nodes "$NODES" "${TRAIN_ARGS[@]}"
FIREWALL_RULE=$NAME-ssh
INTERNAL_RULE=$NAME-internal
# Accelerator-optimized machine types come with their GPUs; the others get one T4 unless told otherwise.
if [ -z "$ACCELERATOR" ]; then
  if [[ $MACHINE_TYPE =~ ^(a[2-9]x?|g[2-9])- ]]; then ACCELERATOR=none; else ACCELERATOR=nvidia-tesla-t4; fi
fi
# The VMs: NAME alone, or NAME-0 ... NAME-<N-1> with --nodes (NAME-0 is the coordinator).
VMS=("$NAME")
if [ "$NODES" -gt 1 ]; then
  VMS=()
  for ((node = 0; node < NODES; node++)); do VMS+=("$NAME-$node"); done
fi

compute() { cloud_run "$1" gcloud compute "${@:2}"; }
# gcloud compute ssh makes and installs its own key (~/.ssh/google_compute_engine) on first use. It
# forwards stdin, so calls that send nothing read /dev/null. vm_ssh VM sets SSH to the command for VM.
vm_ssh() { SSH=(gcloud compute ssh "$1" "--zone=$ZONE" --quiet); }

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

# --nodes: VMs tagged NAME may connect to each other on every TCP port, nobody else. The coordinator needs
# COORDINATOR_PORT only, but NCCL's collectives connect on ports of its own choosing.
ensure_internal_rule() {
  local existing
  existing=$(compute "" firewall-rules list "--filter=name=$INTERNAL_RULE" '--format=value(name)')
  if [ -n "$existing" ]; then
    echo "Firewall rule $INTERNAL_RULE exists" >&2
    return 0
  fi
  compute "" firewall-rules create "$INTERNAL_RULE" --network=default --direction=INGRESS --action=ALLOW \
    --rules=tcp "--source-tags=$NAME" "--target-tags=$NAME" \
    "--description=LogoGAN: TCP between the VMs of one run (setup-gcp.sh --nodes)"
}

# The labelled VMs (started if stopped), or NODES new ones from one call, all in ZONE.
ensure_instances() {
  local found name zone status count=0 options=()
  found=$(compute "" instances list "--filter=labels.$STACK_TAG=$NAME" '--format=value(name,zone.basename(),status)')
  if [ -n "$found" ]; then
    while read -r name zone status; do
      count=$((count + 1))
      [ "$zone" = "$ZONE" ] || die "VM $name already exists in zone $zone; pass --zone $zone"
      [[ " ${VMS[*]} " == *" $name "* ]] ||
        die "VM $name is labelled $STACK_TAG=$NAME but is not one of the --nodes $NODES VMs (${VMS[*]}); pass the --nodes it was made with, or --teardown first"
    done <<<"$found"
    [ "$count" = "$NODES" ] ||
      die "found $count VM(s) labelled $STACK_TAG=$NAME, not the $NODES of --nodes $NODES; pass --nodes $count, or --teardown first"
    while read -r name zone status; do
      echo "VM $name exists ($status)" >&2
      if [ "$status" = TERMINATED ] || [ "$status" = SUSPENDED ]; then
        compute "" instances start "$name" "--zone=$ZONE"
      fi
    done <<<"$found"
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
  compute "" instances create "${VMS[@]}" "--zone=$ZONE" "--machine-type=$MACHINE_TYPE" \
    "--image-family=$IMAGE_FAMILY" --image-project=deeplearning-platform-release \
    --maintenance-policy=TERMINATE "--boot-disk-size=${DISK_GB}GB" --metadata=install-nvidia-driver=True \
    "--labels=$STACK_TAG=$NAME" "--tags=$NAME" "${options[@]}"
}

create() {
  local cidr coordinator="" node
  cidr="$(caller_ip)/32"
  ensure_firewall_rule "$cidr"
  if [ "$NODES" -gt 1 ]; then ensure_internal_rule; fi
  ensure_instances
  if [ "$NODES" -gt 1 ]; then
    coordinator=$(compute "<private-ip-0>" instances describe "${VMS[0]}" "--zone=$ZONE" \
      '--format=value(networkInterfaces[0].networkIP)')
  fi
  # Every VM is installed before any trains: the other processes must join the coordinator within minutes.
  for ((node = 0; node < NODES; node++)); do
    vm_ssh "${VMS[node]}"
    wait_for_ssh "${SSH[@]}" --command=true </dev/null
    send_project "${SSH[@]}" --command
    cloud_run "" "${SSH[@]}" "--command=$(remote_install_command)" </dev/null
  done
  if [ ${#TRAIN_ARGS[@]} -gt 0 ]; then
    for ((node = 0; node < NODES; node++)); do
      vm_ssh "${VMS[node]}"
      cloud_run "" "${SSH[@]}" "--command=$(node_train_command "$NODES" "$node" "$coordinator" "${TRAIN_ARGS[@]}")" </dev/null
    done
  fi
  if [ "$NODES" -gt 1 ]; then
    nodes_ready "$cidr" "$coordinator"
    return 0
  fi
  cat <<EOF

VM ready: $NAME ($MACHINE_TYPE, $ACCELERATOR, $ZONE), SSH from $cidr only.
  Log in:          gcloud compute ssh $NAME --zone=$ZONE
  Start training:  cd $REMOTE_DIR && ./run-model.sh --tmux --results s3://BUCKET/runs --date TAG
  Watch training:  gcloud compute ssh $NAME --zone=$ZONE -- -t tmux attach
  When done:       ./setup-gcp.sh --teardown --name $NAME
EOF
}

# The closing summary of a --nodes run.
nodes_ready() {
  local cidr=$1 coordinator=$2 node
  echo
  echo "$NODES VMs ready ($MACHINE_TYPE, $ACCELERATOR, $ZONE), SSH from $cidr only; $INTERNAL_RULE opens every TCP port between them."
  echo "  Coordinator:     $coordinator:$COORDINATOR_PORT (${VMS[0]})"
  for ((node = 0; node < NODES; node++)); do
    echo "  VM $node:            gcloud compute ssh ${VMS[node]} --zone=$ZONE"
  done
  echo "  Start training:  on VM I: cd $REMOTE_DIR && ./run-model.sh --tmux --results s3://BUCKET/runs --date TAG" \
    "--coordinator $coordinator:$COORDINATOR_PORT --num-processes $NODES --process-id I"
  echo "  Watch training:  gcloud compute ssh ${VMS[0]} --zone=$ZONE -- -t tmux attach   (${VMS[0]} writes the run folder)"
  echo "  When done:       ./setup-gcp.sh --teardown --name $NAME"
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
  local found name zone status deleted=0 rule existing rules=()
  found=$(compute "<name> <zone> RUNNING" instances list "--filter=labels.$STACK_TAG=$NAME" '--format=value(name,zone.basename(),status)')
  # Runs are copied back before any VM goes. Of a --nodes run only NAME-0 writes the run folder; the
  # others' copies would overwrite it.
  while read -r name zone status; do
    if [ -n "$name" ] && [ "$FETCH" = 1 ] && [ "$status" = RUNNING ] && ! [[ $name =~ ^$NAME-[1-9][0-9]*$ ]]; then
      fetch_runs "$name" "$zone"
    fi
  done <<<"$found"
  while read -r name zone status; do
    [ -n "$name" ] || continue
    compute "" instances delete "$name" "--zone=$zone" --quiet
    deleted=$((deleted + 1))
  done <<<"$found"
  for rule in "$FIREWALL_RULE" "$INTERNAL_RULE"; do
    existing=$(compute "$rule" firewall-rules list "--filter=name=$rule" '--format=value(name)')
    if [ -n "$existing" ]; then
      compute "" firewall-rules delete "$rule" --quiet
      rules+=("$rule")
    fi
  done
  if [ "$DRY_RUN" = 0 ]; then
    echo "Deleted: $deleted VM(s) labelled $STACK_TAG=$NAME and ${#rules[@]} firewall rule(s)${rules[*]:+ (${rules[*]})}."
  fi
}

if [ "$TEARDOWN" = 1 ]; then teardown; else create; fi
