# shellcheck shell=bash
# Sourced by setup-aws.sh and setup-gcp.sh: what both cloud scripts do the same way.
# The caller sets DRY_RUN (0/1) before using cloud_run, and NODES (the number of VMs) before placeholder.

# shellcheck disable=SC2034  # STACK_TAG and REMOTE_DIR are read by the scripts that source this file
# Tag (AWS) / label (GCP) key that marks everything the scripts create, so --teardown finds exactly that.
STACK_TAG=logogan-stack
# Where the project lives on the VM, relative to the login user's home.
REMOTE_DIR=logogan
# Seconds between SSH attempts while a new VM boots, and how many attempts before giving up (~10 min).
SSH_RETRY_SECONDS=${SSH_RETRY_SECONDS:-10}
SSH_ATTEMPTS=60
# --nodes: the port process 0's VM serves JAX's distributed coordinator on (the port of the example in
# jax.distributed.initialize's documentation), and the most VMs one run may rent.
COORDINATOR_PORT=1234
MAX_NODES=64

# Commands are shown on the original stdout even inside $(...) captures.
exec 3>&1

die() {
  echo "${0##*/}: error: $*" >&2
  exit 2
}

# quote_words WORD...: the words as one command line that any POSIX shell (the VM's login shell too)
# splits back into exactly these words: plain words stay bare, every other one is single-quoted, so no
# redirect, substitution, glob or expansion survives.
quote_words() {
  local word quoted=()
  for word in "$@"; do
    quote_word "$word"
    quoted+=("$REPLY")
  done
  printf '%s\n' "${quoted[*]}"
}

# quote_word WORD: sets REPLY to WORD as quote_words writes it (no subshell per word).
quote_word() {
  if [[ $1 =~ ^[A-Za-z0-9_./:,@%+-][A-Za-z0-9_./:=,@%+-]*$ ]]; then
    REPLY=$1
  else
    REPLY="'${1//\'/\'\\\'\'}'"
  fi
}

# shell_quote WORD...: quote_words for showing a command; placeholders such as <instance-id> (dry-run
# values not known yet) stay readable. Never for what a shell runs: there <a> is a redirect.
shell_quote() {
  local word shown=()
  for word in "$@"; do
    if [[ $word =~ ^\<[a-z0-9-]+\>$ ]]; then
      shown+=("$word")
    else
      quote_word "$word"
      shown+=("$REPLY")
    fi
  done
  printf '%s\n' "${shown[*]}"
}

# cloud_run PLACEHOLDER COMMAND...: show COMMAND and run it; under --dry-run only show it, and print
# PLACEHOLDER in place of its output (empty: "nothing found", so a dry run shows the full create path).
cloud_run() {
  local placeholder=$1
  shift
  if [ "$DRY_RUN" = 1 ]; then
    shell_quote "$@" >&3
    if [ -n "$placeholder" ]; then echo "$placeholder"; fi
    return 0
  fi
  echo "\$ $(shell_quote "$@")" >&2
  "$@"
}

# The caller's public IPv4 address: the one address the VM's SSH port is opened to.
caller_ip() {
  local address
  address=$(curl -fsS --max-time 10 https://checkip.amazonaws.com) ||
    die "could not look up this machine's public IP address (curl https://checkip.amazonaws.com failed)"
  address=${address//[[:space:]]/}
  is_ipv4 "$address" || die "the public IP lookup answered '${address:0:40}', not an IPv4 address"
  echo "$address"
}

# is_ipv4 TEXT: four dot-separated decimal octets 0-255, without leading zeros (which some tools read as octal).
is_ipv4() {
  local octet octets
  [[ $1 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || return 1
  IFS=. read -ra octets <<<"$1"
  for octet in "${octets[@]}"; do
    if ! [[ $octet =~ ^(0|[1-9][0-9]*)$ ]] || [ "$octet" -gt 255 ]; then return 1; fi
  done
}

# wait_for_ssh COMMAND...: retry COMMAND (an ssh that runs `true`) until the VM answers.
wait_for_ssh() {
  local attempt
  if [ "$DRY_RUN" = 1 ]; then
    shell_quote "$@" >&3
    return 0
  fi
  echo "==> Waiting for SSH" >&2
  for ((attempt = 1; attempt <= SSH_ATTEMPTS; attempt++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep "$SSH_RETRY_SECONDS"
  done
  die "the VM did not answer SSH after $((SSH_ATTEMPTS * SSH_RETRY_SECONDS)) s; rerun to try again, or --teardown"
}

# send_project SSH_COMMAND...: stream the committed project (git archive HEAD) into ~/logogan on the VM.
# SSH_COMMAND must end with the remote command word; it gets "mkdir -p ... && tar -x ..." appended.
send_project() {
  local unpack="mkdir -p $REMOTE_DIR && tar -xzf - -C $REMOTE_DIR"
  if [ "$DRY_RUN" = 1 ]; then
    echo "git archive --format=tar.gz HEAD | $(shell_quote "$@" "$unpack")" >&3
    return 0
  fi
  echo "\$ git archive --format=tar.gz HEAD | $(shell_quote "$@" "$unpack")" >&2
  git archive --format=tar.gz HEAD | "$@" "$unpack"
}

# placeholder WHAT NODE: how a --dry-run shows a value of VM number NODE not known yet, e.g. <public-ip-1>;
# a one-VM run (the caller's NODES=1) shows <public-ip> as before.
placeholder() {
  if [ "$NODES" = 1 ]; then echo "<$1>"; else echo "<$1-$2>"; fi
}

# The remote commands, shared so both clouds run exactly the same thing on the VM.
remote_install_command() {
  echo "cd $REMOTE_DIR && ./infra/remote-install.sh"
}

remote_train_command() {
  echo "cd $REMOTE_DIR && ./run-model.sh --tmux $(quote_words "$@")"
}

# check_nodes COUNT TRAIN-ARGS...: COUNT is a whole number of VMs from 1 to MAX_NODES; with more than one VM
# the script sets the run's coordinator flags itself, so the training flags may not.
check_nodes() {
  local count=$1 word
  shift
  if ! [[ $count =~ ^[1-9][0-9]{0,2}$ ]] || [ "$count" -gt "$MAX_NODES" ]; then
    die "--nodes '${count:0:40}': expected a whole number of VMs from 1 to $MAX_NODES"
  fi
  [ "$count" -gt 1 ] || return 0
  for word in "$@"; do
    case $word in
      --coordinator | --coordinator=* | --num-processes | --num-processes=* | --process-id | --process-id=*)
        die "${word%%=*} after -- is set by --nodes (the first VM's private address, $count processes, one id per VM); leave it out" ;;
    esac
  done
}

# node_train_command VMS NODE COORDINATOR-IP TRAIN-ARGS...: the training command for VM number NODE of a
# run on VMS VMs (0 is the coordinator); one VM trains alone, with TRAIN-ARGS unchanged.
node_train_command() {
  local vms=$1 node=$2 coordinator=$3
  shift 3
  if [ "$vms" = 1 ]; then
    remote_train_command "$@"
  else
    remote_train_command "$@" --coordinator "$coordinator:$COORDINATOR_PORT" --num-processes "$vms" --process-id "$node"
  fi
}

remote_has_runs_command() {
  echo "test -d $REMOTE_DIR/runs"
}
