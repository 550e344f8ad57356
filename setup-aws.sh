#!/usr/bin/env bash
# Rent a GPU VM on AWS EC2 for LogoGAN, or delete everything this script made (--teardown).
# Idempotent: a second run finds what the first made (by tag) and creates nothing new.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=infra/cloud.sh
source infra/cloud.sh

# AWS Deep Learning Base AMI with the NVIDIA driver and CUDA (Ubuntu 24.04, Python 3.12), looked up through
# its public SSM parameter so every run gets the current image.
AMI_PARAMETER=/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id
LOGIN_USER=ubuntu

usage() {
  cat <<'EOF'
Usage: ./setup-aws.sh [options] [--nodes N] [-- RUN-MODEL-FLAGS...]
       ./setup-aws.sh --teardown [--name NAME] [--region REGION] [--no-fetch]

Creates (or finds) a GPU VM on AWS EC2 ready to train LogoGAN: the current AWS Deep Learning Base AMI
(from its public SSM parameter), a key pair, a security group that allows SSH only from this machine's
public IP (/32), then copies the committed project (git archive HEAD) to ~/logogan on the VM and runs
its install (infra/remote-install.sh). Flags after `--` start training there in tmux:
./run-model.sh --tmux FLAGS. Everything it makes carries the tag logogan-stack=NAME.
With --nodes N it rents N such VMs for one data-parallel run (JAX's distributed runtime) instead.
Credentials come from your AWS profile (AWS_PROFILE, --profile) or role; nothing prints a key.

Options:
  --name NAME              name of the key pair, security group and instance, and the tag value
                           (default: logogan)
  --region REGION          AWS region (default: $AWS_DEFAULT_REGION, else us-east-1)
  --profile PROFILE        AWS CLI profile to use (default: $AWS_PROFILE or the default chain)
  --instance-type TYPE     EC2 instance type (default: g5.xlarge, one NVIDIA A10G); a multi-GPU type
                           (g5.12xlarge, p4d.24xlarge) needs nothing more: a run uses every GPU of a VM
  --nodes N                N VMs (1-64, default 1) in one cluster placement group NAME, their security
                           group also open on every TCP port to its own members (NCCL picks its ports);
                           the flags after `--` start one tmux session per VM, VM I adding
                           --coordinator FIRST-VM-PRIVATE-IP:1234 --num-processes N --process-id I
  --volume-gb N            root volume size in GiB (default: 100)
  --spot                   request a one-time spot instance (cheaper; AWS may reclaim it: train with
                           RESULTS=s3://... so run-model.sh resumes from the last sync)
  --instance-profile NAME  IAM instance profile for the VM, e.g. one allowed to read/write your bucket
                           (default: none)
  --key-file PATH          private key of the key pair (default: ~/.ssh/NAME.pem); written with mode 600
                           when the key pair is created, which refuses a PATH that already exists
  --dry-run                print every aws/ssh command instead of running it (the public IP is still
                           looked up); values not known yet show as <placeholders>
  --teardown               copy ~/logogan/runs back into ./runs (from the first VM, which alone writes
                           it), then delete the instances, placement group, security group and key pair
                           tagged logogan-stack=NAME (and the local key file)
  --no-fetch               with --teardown: do not copy runs/ back first
  -h, --help               show this help

Examples:
  ./setup-aws.sh --dry-run
  ./setup-aws.sh --spot --instance-profile logogan-s3 -- \
      --data s3://my-bucket/datasets/simple_icons_56.npz --results s3://my-bucket/runs --date first
  ./setup-aws.sh --nodes 2 --instance-type g5.12xlarge --instance-profile logogan-s3 -- \
      --data s3://my-bucket/datasets/simple_icons_56.npz --results s3://my-bucket/runs --date wide
  ./setup-aws.sh --teardown
EOF
}

NAME=logogan
REGION=${AWS_DEFAULT_REGION:-us-east-1}
INSTANCE_TYPE=g5.xlarge
VOLUME_GB=100
SPOT=0
INSTANCE_PROFILE=
KEY_FILE=
NODES=1
DRY_RUN=0
TEARDOWN=0
FETCH=1
TRAIN_ARGS=()

while [ $# -gt 0 ]; do
  case $1 in
    --name | --region | --profile | --instance-type | --volume-gb | --instance-profile | --key-file | --nodes)
      [ $# -ge 2 ] || die "$1 needs a value; see --help"
      case $1 in
        --name) NAME=$2 ;;
        --region) REGION=$2 ;;
        --profile) export AWS_PROFILE=$2 ;;
        --instance-type) INSTANCE_TYPE=$2 ;;
        --volume-gb) VOLUME_GB=$2 ;;
        --instance-profile) INSTANCE_PROFILE=$2 ;;
        --key-file) KEY_FILE=$2 ;;
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
[[ $VOLUME_GB =~ ^[1-9][0-9]*$ ]] || die "--volume-gb '$VOLUME_GB': expected a whole number of GiB, e.g. 100"
[ -n "$REGION" ] || die "--region is empty; give an AWS region such as us-east-1"
check_nodes "$NODES" "${TRAIN_ARGS[@]}"
KEY_FILE=${KEY_FILE:-$HOME/.ssh/$NAME.pem}
TAG_FILTER="Name=tag:$STACK_TAG,Values=$NAME"
LIVE_STATES=Name=instance-state-name,Values=pending,running,stopping,stopped

ec2() { cloud_run "$1" aws ec2 "${@:2}" --region "$REGION"; }

SSH=(ssh -i "$KEY_FILE" -o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=accept-new)

tags() { echo "ResourceType=$1,Tags=[{Key=$STACK_TAG,Value=$NAME},{Key=Name,Value=$NAME}]"; }

ensure_key_pair() {
  local existing
  existing=$(ec2 "" describe-key-pairs --filters "$TAG_FILTER" --query 'KeyPairs[].KeyName' --output text)
  if [ -n "$existing" ]; then
    [ -f "$KEY_FILE" ] || [ "$DRY_RUN" = 1 ] ||
      die "key pair '$NAME' exists but its private key $KEY_FILE is missing; pass --key-file, or --teardown and start again"
    echo "Key pair $NAME exists" >&2
    return 0
  fi
  # A new key pair gets a new private key; whatever file already has that name is someone's, kept as it is.
  if [ -e "$KEY_FILE" ] || [ -L "$KEY_FILE" ]; then
    die "--key-file $KEY_FILE already exists and the key pair '$NAME' is new; move that file away, or pass --key-file with a path that does not exist yet"
  fi
  if [ "$DRY_RUN" = 1 ]; then
    echo "$(shell_quote aws ec2 create-key-pair --key-name "$NAME" --key-type ed25519 \
      --tag-specifications "$(tags key-pair)" --query KeyMaterial --output text --region "$REGION") > $KEY_FILE" >&3
    return 0
  fi
  mkdir -p "$(dirname "$KEY_FILE")"
  # The private key goes straight into a file created 0600 (umask) that did not exist (noclobber: opened
  # with O_EXCL before aws runs, so a file appearing since the check above is not touched); never printed.
  local status=0
  (umask 077 && set -o noclobber && ec2 "" create-key-pair --key-name "$NAME" --key-type ed25519 \
    --tag-specifications "$(tags key-pair)" --query KeyMaterial --output text >"$KEY_FILE") || status=$?
  if [ "$status" != 0 ]; then
    # An empty file left by a failed create would block the next run; a key that arrived is kept.
    if [ -f "$KEY_FILE" ] && [ ! -s "$KEY_FILE" ]; then rm -f "$KEY_FILE"; fi
    exit "$status"
  fi
}

# Prints the security group id. SSH is allowed from the caller's /32 only; rules for older addresses go.
ensure_security_group() {
  local cidr=$1 group rules rule
  group=$(ec2 "" describe-security-groups --filters "$TAG_FILTER" --query 'SecurityGroups[].GroupId' --output text)
  if [ -z "$group" ]; then
    group=$(ec2 "<security-group-id>" create-security-group --group-name "$NAME" \
      --description "LogoGAN: SSH from one address (setup-aws.sh)" \
      --tag-specifications "$(tags security-group)" --query GroupId --output text)
    rules=
  else
    # shellcheck disable=SC2016  # the backquotes are JMESPath literals, not shell
    rules=$(ec2 "" describe-security-groups --group-ids "$group" \
      --query 'SecurityGroups[0].IpPermissions[?FromPort==`22`].IpRanges[].CidrIp' --output text)
  fi
  for rule in $rules; do
    if [ "$rule" != "$cidr" ]; then
      ec2 "" revoke-security-group-ingress --group-id "$group" --protocol tcp --port 22 --cidr "$rule" >/dev/null
    fi
  done
  if [[ " $rules " != *" $cidr "* ]]; then
    ec2 "" authorize-security-group-ingress --group-id "$group" --protocol tcp --port 22 --cidr "$cidr" >/dev/null
  fi
  echo "$group"
}

# --nodes: the group's own members may connect to each other on every TCP port, nobody else. The coordinator
# needs COORDINATOR_PORT only, but NCCL's collectives connect on ports of its own choosing.
ensure_peer_rule() {
  local group=$1 peers
  # shellcheck disable=SC2016  # the backquotes are JMESPath literals, not shell
  peers=$(ec2 "" describe-security-groups --group-ids "$group" \
    --query 'SecurityGroups[0].IpPermissions[?IpProtocol==`tcp` && FromPort==`0` && ToPort==`65535`].UserIdGroupPairs[].GroupId' \
    --output text)
  if [[ " $peers " != *" $group "* ]]; then
    ec2 "" authorize-security-group-ingress --group-id "$group" --protocol tcp --port 0-65535 \
      --source-group "$group" >/dev/null
  fi
}

# --nodes: one cluster placement group keeps the VMs on one low-latency network segment.
ensure_placement_group() {
  local existing
  existing=$(ec2 "" describe-placement-groups --filters "$TAG_FILTER" --query 'PlacementGroups[].GroupName' --output text)
  if [ -n "$existing" ]; then
    echo "Placement group $existing exists" >&2
  else
    ec2 "" create-placement-group --group-name "$NAME" --strategy cluster \
      --tag-specifications "$(tags placement-group)" >/dev/null
  fi
}

# Prints the instance ids on one line, first VM first: the NODES tagged ones (started if stopped), or NODES
# new ones from one launch (AWS places a cluster group's VMs best when they are asked for together).
ensure_instances() {
  local group=$1 found count=0 id state ids=() ami root_device node options=()
  # The launch index orders the VMs the same way on every run: VM 0 is the coordinator.
  found=$(ec2 "" describe-instances --filters "$TAG_FILTER" "$LIVE_STATES" \
    --query 'sort_by(Reservations[].Instances[], &AmiLaunchIndex)[].[InstanceId,State.Name]' --output text)
  if [ -n "$found" ]; then
    while read -r id state; do
      count=$((count + 1))
      ids+=("$id")
    done <<<"$found"
    [ "$count" = "$NODES" ] ||
      die "found $count VM(s) tagged $STACK_TAG=$NAME in $REGION, not the $NODES of --nodes $NODES; pass --nodes $count, or --teardown first"
    while read -r id state; do
      echo "Instance $id exists ($state)" >&2
      if [ "$state" = stopped ] || [ "$state" = stopping ]; then
        ec2 "" wait instance-stopped --instance-ids "$id"
        ec2 "" start-instances --instance-ids "$id" >/dev/null
      fi
    done <<<"$found"
    echo "${ids[*]}"
    return 0
  fi
  ami=$(cloud_run "<ami-id>" aws ssm get-parameter --name "$AMI_PARAMETER" \
    --query Parameter.Value --output text --region "$REGION")
  root_device=$(ec2 "<root-device>" describe-images --image-ids "$ami" --query 'Images[0].RootDeviceName' --output text)
  if [ "$SPOT" = 1 ]; then
    options+=(--instance-market-options 'MarketType=spot,SpotOptions={SpotInstanceType=one-time,InstanceInterruptionBehavior=terminate}')
  fi
  if [ -n "$INSTANCE_PROFILE" ]; then
    options+=(--iam-instance-profile "Name=$INSTANCE_PROFILE")
  fi
  if [ "$NODES" -gt 1 ]; then
    options+=(--placement "GroupName=$NAME")
  fi
  for ((node = 0; node < NODES; node++)); do ids+=("$(placeholder instance-id "$node")"); done
  ec2 "${ids[*]}" run-instances --image-id "$ami" --instance-type "$INSTANCE_TYPE" --count "$NODES" \
    --key-name "$NAME" --security-group-ids "$group" \
    --block-device-mappings "DeviceName=$root_device,Ebs={VolumeSize=$VOLUME_GB,VolumeType=gp3,DeleteOnTermination=true}" \
    --tag-specifications "$(tags instance)" "$(tags volume)" "${options[@]}" \
    --query 'Instances[].InstanceId' --output text
}

create() {
  local cidr group found ids=() unknown="" node id address private addresses=() privates=() host
  cidr="$(caller_ip)/32"
  ensure_key_pair
  group=$(ensure_security_group "$cidr")
  if [ "$NODES" -gt 1 ]; then
    ensure_peer_rule "$group"
    ensure_placement_group
  fi
  found=$(ensure_instances "$group")
  read -ra ids <<<"$found"
  ec2 "" wait instance-running --instance-ids "${ids[@]}"
  for ((node = 0; node < NODES; node++)); do
    unknown+="$(placeholder instance-id "$node") $(placeholder public-ip "$node") $(placeholder private-ip "$node")"$'\n'
  done
  found=$(ec2 "${unknown%$'\n'}" describe-instances --instance-ids "${ids[@]}" \
    --query 'sort_by(Reservations[].Instances[], &AmiLaunchIndex)[].[InstanceId,PublicIpAddress,PrivateIpAddress]' \
    --output text)
  ids=()
  while read -r id address private; do
    ids+=("$id")
    addresses+=("$address")
    privates+=("$private")
  done <<<"$found"
  # Every VM is installed before any trains: the other processes must join the coordinator within minutes.
  for ((node = 0; node < NODES; node++)); do
    host=$LOGIN_USER@${addresses[node]}
    wait_for_ssh "${SSH[@]}" -n "$host" true
    send_project "${SSH[@]}" "$host"
    cloud_run "" "${SSH[@]}" -n "$host" "$(remote_install_command)"
  done
  if [ ${#TRAIN_ARGS[@]} -gt 0 ]; then
    for ((node = 0; node < NODES; node++)); do
      cloud_run "" "${SSH[@]}" -n "$LOGIN_USER@${addresses[node]}" \
        "$(node_train_command "$NODES" "$node" "${privates[0]}" "${TRAIN_ARGS[@]}")"
    done
  fi
  if [ "$NODES" -gt 1 ]; then
    nodes_ready "$cidr"
    return 0
  fi
  id=${ids[0]}
  address=${addresses[0]}
  cat <<EOF

VM ready: $id ($INSTANCE_TYPE, $REGION), SSH from $cidr only.
  Log in:          ssh -i $KEY_FILE $LOGIN_USER@$address
  Start training:  cd $REMOTE_DIR && ./run-model.sh --tmux --results s3://BUCKET/runs --date TAG
  Watch training:  ssh -t -i $KEY_FILE $LOGIN_USER@$address tmux attach
  When done:       ./setup-aws.sh --teardown --name $NAME --region $REGION
EOF
}

# The closing summary of a --nodes run; reads create's ids, addresses and privates.
nodes_ready() {
  local cidr=$1 node
  echo
  echo "$NODES VMs ready ($INSTANCE_TYPE, $REGION, placement group $NAME), SSH from $cidr only; they reach each other on every TCP port."
  echo "  Coordinator:     ${privates[0]}:$COORDINATOR_PORT (VM 0)"
  for ((node = 0; node < NODES; node++)); do
    echo "  VM $node:            ${ids[node]}  ssh -i $KEY_FILE $LOGIN_USER@${addresses[node]}"
  done
  echo "  Start training:  on VM I: cd $REMOTE_DIR && ./run-model.sh --tmux --results s3://BUCKET/runs --date TAG" \
    "--coordinator ${privates[0]}:$COORDINATOR_PORT --num-processes $NODES --process-id I"
  echo "  Watch training:  ssh -t -i $KEY_FILE $LOGIN_USER@${addresses[0]} tmux attach   (VM 0 writes the run folder)"
  echo "  When done:       ./setup-aws.sh --teardown --name $NAME --region $REGION"
}

# Copy runs/ back from a running instance before it is deleted (results synced to S3 are safe anyway).
fetch_runs() {
  local host=$LOGIN_USER@$1 status=0
  cloud_run "" "${SSH[@]}" -n "$host" "$(remote_has_runs_command)" || status=$?
  case $status in
    0) cloud_run "" scp -r -i "$KEY_FILE" -o BatchMode=yes -o StrictHostKeyChecking=accept-new \
         "$host:$REMOTE_DIR/runs" . ||
         die "could not copy runs/ back from $host; nothing was deleted (use --no-fetch to delete anyway)" ;;
    1) echo "No runs/ on $host to copy back" >&2 ;;
    *) die "could not reach $host to copy runs/ back; nothing was deleted (use --no-fetch to delete anyway)" ;;
  esac
}

teardown() {
  local found ids=() id address state index placement group key
  found=$(ec2 "" describe-instances --filters "$TAG_FILTER" "$LIVE_STATES" \
    --query 'Reservations[].Instances[].[InstanceId,State.Name,PublicIpAddress,AmiLaunchIndex]' --output text)
  if [ "$DRY_RUN" = 1 ]; then found="<instance-id> running <public-ip>"; fi
  while read -r id state address index; do
    [ -n "$id" ] || continue
    ids+=("$id")
    # Of a --nodes run only VM 0 (launch index 0) writes the run folder; the others' copies would overwrite it.
    if [ "$FETCH" = 1 ] && [ "$state" = running ] && [ "${index:-0}" = 0 ]; then fetch_runs "$address"; fi
  done <<<"$found"
  if [ ${#ids[@]} -gt 0 ]; then
    ec2 "" terminate-instances --instance-ids "${ids[@]}" >/dev/null
    ec2 "" wait instance-terminated --instance-ids "${ids[@]}"
  fi
  # A placement group can go once its instances are terminated.
  placement=$(ec2 "$NAME" describe-placement-groups --filters "$TAG_FILTER" --query 'PlacementGroups[].GroupName' --output text)
  for id in $placement; do
    ec2 "" delete-placement-group --group-name "$id"
  done
  group=$(ec2 "<security-group-id>" describe-security-groups --filters "$TAG_FILTER" --query 'SecurityGroups[].GroupId' --output text)
  for id in $group; do
    ec2 "" delete-security-group --group-id "$id"
  done
  key=$(ec2 "$NAME" describe-key-pairs --filters "$TAG_FILTER" --query 'KeyPairs[].KeyName' --output text)
  for id in $key; do
    ec2 "" delete-key-pair --key-name "$id" >/dev/null
  done
  if [ -n "$key" ]; then cloud_run "" rm -f "$KEY_FILE"; fi
  if [ "$DRY_RUN" = 0 ]; then
    echo "Deleted: ${#ids[@]} instance(s), $(wc -w <<<"$placement") placement group(s), $(wc -w <<<"$group") security group(s)," \
      "$(wc -w <<<"$key") key pair(s) tagged $STACK_TAG=$NAME in $REGION."
  fi
}

if [ "$TEARDOWN" = 1 ]; then teardown; else create; fi
