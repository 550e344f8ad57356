"""setup-aws.sh against stub aws/ssh/scp/curl: the exact command sequences, the /32 rule, no secrets shown."""
from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest

from tests.infra.cloud_stubs import (
    CALLER_IP, HOSTILE_ARGS, args_of, argv_on_the_vm, dry_run_trace, make_cloud_stubs, option, trace,
)

KEY_MATERIAL = "-----BEGIN OPENSSH PRIVATE KEY-----\nSTUB-PRIVATE-KEY-DO-NOT-PRINT\n-----END OPENSSH PRIVATE KEY-----\n"
GROUP = "sg-0a1b2c3d"
INSTANCE = "i-0123456789abcdef0"
AMI = "ami-0fedcba987654321"
VM_ADDRESS = "198.51.100.20"
PRIVATE_ADDRESS = "172.31.5.10"

REMOTE_INSTALL = "ssh: cd logogan && ./infra/remote-install.sh"
UNPACK = "ssh: mkdir -p logogan && tar -xzf - -C logogan"
CREATE_STEPS = [
    "aws ec2 describe-key-pairs",
    "aws ec2 create-key-pair",
    "aws ec2 describe-security-groups",
    "aws ec2 create-security-group",
    "aws ec2 authorize-security-group-ingress",
    "aws ec2 describe-instances",
    "aws ssm get-parameter",
    "aws ec2 describe-images",
    "aws ec2 run-instances",
    "aws ec2 wait instance-running",
    "aws ec2 describe-instances",
    "ssh: true",
    UNPACK,
    REMOTE_INSTALL,
]


@pytest.fixture
def cloud(tmp_path):
    return make_cloud_stubs(tmp_path)


def answer_nothing_exists(cloud):
    cloud.respond(
        "aws",
        (["create-key-pair"], KEY_MATERIAL, 0),
        (["create-security-group"], GROUP + "\n", 0),
        (["get-parameter"], AMI + "\n", 0),
        (["describe-images"], "/dev/sda1\n", 0),
        (["run-instances"], INSTANCE + "\n", 0),
        (["describe-instances", "--instance-ids"], f"{INSTANCE}\t{VM_ADDRESS}\t{PRIVATE_ADDRESS}\n", 0),
    )


def answer_all_exists(cloud, ssh_cidrs: str):
    cloud.respond(
        "aws",
        (["describe-key-pairs"], "logogan\n", 0),
        (["describe-security-groups", "--filters"], GROUP + "\n", 0),
        (["describe-security-groups", "--group-ids"], ssh_cidrs + "\n", 0),
        (["describe-instances", "--filters"], f"{INSTANCE}\trunning\n", 0),
        (["describe-instances", "--instance-ids"], f"{INSTANCE}\t{VM_ADDRESS}\t{PRIVATE_ADDRESS}\n", 0),
    )


def test_create_runs_the_exact_sequence_and_opens_ssh_to_the_callers_address_only(cloud):
    answer_nothing_exists(cloud)
    result = cloud.run("setup-aws.sh", "--spot", "--instance-profile", "logogan-s3", "--volume-gb", "80")
    assert result.returncode == 0, result.stderr
    calls = cloud.calls()
    assert trace(calls) == ["curl", *CREATE_STEPS]

    ingress = args_of(calls, "aws ec2 authorize-security-group-ingress")
    assert (option(ingress, "--group-id"), option(ingress, "--protocol"), option(ingress, "--port")) == (GROUP, "tcp", "22")
    assert option(ingress, "--cidr") == f"{CALLER_IP}/32"

    launch = args_of(calls, "aws ec2 run-instances")
    assert option(launch, "--image-id") == AMI
    assert option(launch, "--instance-type") == "g5.xlarge"
    assert option(launch, "--security-group-ids") == GROUP
    assert option(launch, "--key-name") == "logogan"
    assert "DeviceName=/dev/sda1,Ebs={VolumeSize=80," in option(launch, "--block-device-mappings")
    assert "MarketType=spot" in option(launch, "--instance-market-options")
    assert option(launch, "--iam-instance-profile") == "Name=logogan-s3"
    assert "Key=logogan-stack,Value=logogan" in option(launch, "--tag-specifications")
    ami_lookup = args_of(calls, "aws ssm get-parameter")
    assert option(ami_lookup, "--name").startswith("/aws/service/deeplearning/ami/x86_64/")

    key_file = cloud.home / ".ssh" / "logogan.pem"
    assert key_file.read_text() == KEY_MATERIAL
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "STUB-PRIVATE-KEY" not in result.stdout + result.stderr

    ssh_calls = [call for call in calls if call["program"] == "ssh"]
    assert all(f"ubuntu@{VM_ADDRESS}" in call["args"] and option(call["args"], "-i") == str(key_file) for call in ssh_calls)
    archive = tarfile.open(fileobj=io.BytesIO(Path(ssh_calls[1]["stdin"]).read_bytes()), mode="r:gz")
    assert {"run-model.sh", "infra/remote-install.sh"} <= set(archive.getnames())
    assert f"ssh -i {key_file} ubuntu@{VM_ADDRESS}" in result.stdout


def test_dry_run_prints_the_same_commands_and_runs_none(cloud):
    answer_nothing_exists(cloud)
    result = cloud.run("setup-aws.sh", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert trace(cloud.calls()) == ["curl"]
    assert dry_run_trace(result.stdout) == CREATE_STEPS
    assert f"--cidr {CALLER_IP}/32" in result.stdout
    assert not (cloud.home / ".ssh" / "logogan.pem").exists()


def test_second_run_creates_nothing(cloud):
    answer_all_exists(cloud, f"{CALLER_IP}/32")
    (cloud.home / ".ssh").mkdir()
    (cloud.home / ".ssh" / "logogan.pem").write_text(KEY_MATERIAL)
    result = cloud.run("setup-aws.sh")
    assert result.returncode == 0, result.stderr
    assert trace(cloud.calls()) == [
        "curl",
        "aws ec2 describe-key-pairs",
        "aws ec2 describe-security-groups",
        "aws ec2 describe-security-groups",
        "aws ec2 describe-instances",
        "aws ec2 wait instance-running",
        "aws ec2 describe-instances",
        "ssh: true",
        UNPACK,
        REMOTE_INSTALL,
    ]


def test_a_new_caller_address_replaces_the_old_ssh_rule(cloud):
    answer_all_exists(cloud, "192.0.2.50/32")
    (cloud.home / ".ssh").mkdir()
    (cloud.home / ".ssh" / "logogan.pem").write_text(KEY_MATERIAL)
    result = cloud.run("setup-aws.sh")
    assert result.returncode == 0, result.stderr
    calls = cloud.calls()
    assert option(args_of(calls, "aws ec2 revoke-security-group-ingress"), "--cidr") == "192.0.2.50/32"
    assert option(args_of(calls, "aws ec2 authorize-security-group-ingress"), "--cidr") == f"{CALLER_IP}/32"


def test_training_flags_after_double_dash_start_run_model_in_tmux_on_the_vm(cloud):
    answer_nothing_exists(cloud)
    result = cloud.run("setup-aws.sh", "--", "--data", "s3://bucket/my data.npz", "--date", "first")
    assert result.returncode == 0, result.stderr
    assert trace(cloud.calls())[-1] == "ssh: cd logogan && ./run-model.sh --tmux --data 's3://bucket/my data.npz' --date first"


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_every_training_flag_reaches_run_model_exactly_as_given(cloud, tmp_path, shell):
    answer_nothing_exists(cloud)
    result = cloud.run("setup-aws.sh", "--", *HOSTILE_ARGS)
    assert result.returncode == 0, result.stderr
    train = [call for call in cloud.calls() if call["program"] == "ssh"][-1]["args"][-1]
    assert train.startswith("cd logogan && ./run-model.sh --tmux ")
    home = tmp_path / "vm-home"
    home.mkdir()
    assert argv_on_the_vm(train, shell, home) == ["--tmux", *HOSTILE_ARGS]


def test_an_existing_key_file_is_never_overwritten(cloud):
    answer_nothing_exists(cloud)
    key_file = cloud.home / "keys" / "old.pem"
    key_file.parent.mkdir()
    key_file.write_text("someone else's key\n")
    key_file.chmod(0o644)
    for dry_run in ([], ["--dry-run"]):
        result = cloud.run("setup-aws.sh", *dry_run, "--key-file", str(key_file))
        assert result.returncode == 2
        assert [line for line in result.stderr.splitlines() if not line.startswith("$ ")] == [
            f"setup-aws.sh: error: --key-file {key_file} already exists and the key pair 'logogan' is new; "
            "move that file away, or pass --key-file with a path that does not exist yet"
        ]
        assert key_file.read_text() == "someone else's key\n" and stat.S_IMODE(key_file.stat().st_mode) == 0o644
        assert not any("create-key-pair" in call["args"] for call in cloud.calls())

    default_key = cloud.home / ".ssh" / "logogan.pem"
    default_key.parent.mkdir()
    default_key.write_text("old\n")
    result = cloud.run("setup-aws.sh")
    assert result.returncode == 2 and f"--key-file {default_key} already exists" in result.stderr
    assert default_key.read_text() == "old\n"


def test_a_new_key_is_written_owner_only_whatever_the_umask(cloud):
    answer_nothing_exists(cloud)
    key_file = cloud.home / "new.pem"
    result = cloud.run("setup-aws.sh", "--key-file", str(key_file), umask=0)
    assert result.returncode == 0, result.stderr
    assert key_file.read_text() == KEY_MATERIAL and stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_failed_key_pair_create_leaves_no_empty_key_file_behind(cloud):
    cloud.respond("aws", (["create-key-pair"], "", 254))
    result = cloud.run("setup-aws.sh")
    assert result.returncode == 254
    assert not (cloud.home / ".ssh" / "logogan.pem").exists()


@pytest.mark.parametrize("answer", ["999.999.999.999", "256.1.2.3", "1.2.3.300", "01.2.3.4", "1.2.3", "::1"])
def test_an_answer_that_is_not_an_ipv4_address_opens_nothing(cloud, answer):
    cloud.respond("curl", ([], answer + "\n", 0))
    result = cloud.run("setup-aws.sh")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"setup-aws.sh: error: the public IP lookup answered '{answer}', not an IPv4 address"
    ]
    assert trace(cloud.calls()) == ["curl"]


def test_teardown_copies_runs_back_then_deletes_exactly_what_is_tagged(cloud):
    cloud.respond(
        "aws",
        (["describe-instances"], f"{INSTANCE}\trunning\t{VM_ADDRESS}\n", 0),
        (["describe-security-groups"], GROUP + "\n", 0),
        (["describe-key-pairs"], "logogan\n", 0),
    )
    (cloud.home / ".ssh").mkdir()
    key_file = cloud.home / ".ssh" / "logogan.pem"
    key_file.write_text(KEY_MATERIAL)
    result = cloud.run("setup-aws.sh", "--teardown")
    assert result.returncode == 0, result.stderr
    calls = cloud.calls()
    assert trace(calls) == [
        "aws ec2 describe-instances",
        "ssh: test -d logogan/runs",
        f"scp ubuntu@{VM_ADDRESS}:logogan/runs",
        "aws ec2 terminate-instances",
        "aws ec2 wait instance-terminated",
        "aws ec2 describe-placement-groups",
        "aws ec2 describe-security-groups",
        "aws ec2 delete-security-group",
        "aws ec2 describe-key-pairs",
        "aws ec2 delete-key-pair",
    ]
    for step in ("aws ec2 describe-instances", "aws ec2 describe-placement-groups", "aws ec2 describe-security-groups",
                 "aws ec2 describe-key-pairs"):
        assert option(args_of(calls, step), "--filters").startswith("Name=tag:logogan-stack,Values=logogan")
    assert option(args_of(calls, "aws ec2 terminate-instances"), "--instance-ids") == INSTANCE
    assert option(args_of(calls, "aws ec2 delete-security-group"), "--group-id") == GROUP
    assert option(args_of(calls, "aws ec2 delete-key-pair"), "--key-name") == "logogan"
    assert not key_file.exists()

    cloud.clear()
    again = cloud.run("setup-aws.sh", "--teardown")
    assert again.returncode == 0, again.stderr
    assert trace(cloud.calls()) == [
        "aws ec2 describe-instances",
        "aws ec2 describe-placement-groups",
        "aws ec2 describe-security-groups",
        "aws ec2 describe-key-pairs",
    ]


def test_teardown_deletes_nothing_when_the_runs_cannot_be_copied_back(cloud):
    cloud.respond("aws", (["describe-instances"], f"{INSTANCE}\trunning\t{VM_ADDRESS}\n", 0))
    cloud.respond("ssh", ([], "", 255))
    result = cloud.run("setup-aws.sh", "--teardown")
    assert result.returncode == 2
    assert "nothing was deleted" in result.stderr and "--no-fetch" in result.stderr
    assert not any("terminate-instances" in call["args"] for call in cloud.calls())


def test_bad_flag_value_is_one_line(cloud):
    result = cloud.run("setup-aws.sh", "--volume-gb", "lots")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "setup-aws.sh: error: --volume-gb 'lots': expected a whole number of GiB, e.g. 100"
    ]
    assert cloud.calls() == []


# --nodes: three VMs of one run. The stub answers in launch order (the real query sorts by AmiLaunchIndex).
NODE_IDS = ["i-0aaaaaaaaaaaaaaa0", "i-0bbbbbbbbbbbbbbb1", "i-0ccccccccccccccc2"]
NODE_ADDRESSES = ["198.51.100.30", "198.51.100.31", "198.51.100.32"]
NODE_PRIVATE = ["172.31.7.40", "172.31.7.41", "172.31.7.42"]
PEER_QUERY = "SecurityGroups[0].IpPermissions[?IpProtocol==`tcp` && FromPort==`0` && ToPort==`65535`].UserIdGroupPairs[].GroupId"
NODES_CREATE_STEPS = [
    "aws ec2 describe-key-pairs",
    "aws ec2 create-key-pair",
    "aws ec2 describe-security-groups",
    "aws ec2 create-security-group",
    "aws ec2 authorize-security-group-ingress",
    "aws ec2 describe-security-groups",
    "aws ec2 authorize-security-group-ingress",
    "aws ec2 describe-placement-groups",
    "aws ec2 create-placement-group",
    "aws ec2 describe-instances",
    "aws ssm get-parameter",
    "aws ec2 describe-images",
    "aws ec2 run-instances",
    "aws ec2 wait instance-running",
    "aws ec2 describe-instances",
    *["ssh: true", UNPACK, REMOTE_INSTALL] * 3,
]


def answer_three_new_nodes(cloud):
    cloud.respond(
        "aws",
        (["create-key-pair"], KEY_MATERIAL, 0),
        (["create-security-group"], GROUP + "\n", 0),
        (["get-parameter"], AMI + "\n", 0),
        (["describe-images"], "/dev/sda1\n", 0),
        (["run-instances"], "\t".join(NODE_IDS) + "\n", 0),
        (["describe-instances", "--instance-ids"],
         "".join(f"{i}\t{a}\t{p}\n" for i, a, p in zip(NODE_IDS, NODE_ADDRESSES, NODE_PRIVATE)), 0),
    )


def training_calls(calls):
    return [call for call in calls if call["program"] == "ssh" and "./run-model.sh --tmux" in call["args"][-1]]


def test_nodes_start_n_vms_in_one_cluster_placement_group_open_to_each_other_only(cloud):
    answer_three_new_nodes(cloud)
    result = cloud.run("setup-aws.sh", "--nodes", "3", "--instance-type", "g5.12xlarge", "--", "--date", "wide")
    assert result.returncode == 0, result.stderr
    calls = cloud.calls()
    assert trace(calls) == ["curl", *NODES_CREATE_STEPS, *[
        f"ssh: cd logogan && ./run-model.sh --tmux --date wide --coordinator {NODE_PRIVATE[0]}:1234 --num-processes 3 --process-id {node}"
        for node in range(3)
    ]]

    placement = args_of(calls, "aws ec2 create-placement-group")
    assert (option(placement, "--group-name"), option(placement, "--strategy")) == ("logogan", "cluster")
    assert "ResourceType=placement-group,Tags=[{Key=logogan-stack,Value=logogan}" in option(placement, "--tag-specifications")
    launch = args_of(calls, "aws ec2 run-instances")
    assert (option(launch, "--count"), option(launch, "--placement")) == ("3", "GroupName=logogan")
    assert option(launch, "--instance-type") == "g5.12xlarge"

    ingress = [call["args"] for call in calls if "authorize-security-group-ingress" in call["args"]]
    assert [option(args, "--cidr") for args in ingress if "--cidr" in args] == [f"{CALLER_IP}/32"]
    (peers,) = [args for args in ingress if "--source-group" in args]
    assert (option(peers, "--group-id"), option(peers, "--source-group")) == (GROUP, GROUP)
    assert (option(peers, "--protocol"), option(peers, "--port")) == ("tcp", "0-65535")
    assert "--cidr" not in peers

    waited = args_of(calls, "aws ec2 wait instance-running")
    assert waited[waited.index("--instance-ids") + 1 : waited.index("--instance-ids") + 4] == NODE_IDS

    installs = [call["args"] for call in calls if call["program"] == "ssh" and call["args"][-1] == "cd logogan && ./infra/remote-install.sh"]
    assert [args[-2] for args in installs] == [f"ubuntu@{address}" for address in NODE_ADDRESSES]
    # One tmux session per VM, each on its own VM.
    assert [call["args"][-2] for call in training_calls(calls)] == [f"ubuntu@{address}" for address in NODE_ADDRESSES]
    assert f"Coordinator:     {NODE_PRIVATE[0]}:1234" in result.stdout


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_every_node_gets_the_training_flags_exactly_and_its_own_process_id(cloud, tmp_path, shell):
    answer_three_new_nodes(cloud)
    result = cloud.run("setup-aws.sh", "--nodes", "3", "--", *HOSTILE_ARGS)
    assert result.returncode == 0, result.stderr
    for node, call in enumerate(training_calls(cloud.calls())):
        home = tmp_path / f"vm-home-{node}"
        home.mkdir()
        assert argv_on_the_vm(call["args"][-1], shell, home) == [
            "--tmux", *HOSTILE_ARGS, "--coordinator", f"{NODE_PRIVATE[0]}:1234", "--num-processes", "3", "--process-id", str(node),
        ]


def test_nodes_dry_run_prints_the_whole_plan_and_runs_none(cloud):
    result = cloud.run("setup-aws.sh", "--dry-run", "--nodes", "3", "--", "--date", "wide")
    assert result.returncode == 0, result.stderr
    assert trace(cloud.calls()) == ["curl"]
    assert dry_run_trace(result.stdout) == [*NODES_CREATE_STEPS, *[
        f"ssh: cd logogan && ./run-model.sh --tmux --date wide --coordinator '<private-ip-0>:1234' --num-processes 3 --process-id {node}"
        for node in range(3)
    ]]
    assert "--placement GroupName=logogan" in result.stdout
    assert "--protocol tcp --port 0-65535 --source-group <security-group-id>" in result.stdout
    assert "--instance-ids <instance-id-0> <instance-id-1> <instance-id-2>" in result.stdout


def test_nodes_second_run_creates_nothing(cloud):
    (cloud.home / ".ssh").mkdir()
    (cloud.home / ".ssh" / "logogan.pem").write_text(KEY_MATERIAL)
    cloud.respond(
        "aws",
        (["describe-key-pairs"], "logogan\n", 0),
        (["describe-security-groups", "--filters"], GROUP + "\n", 0),
        (["describe-security-groups", PEER_QUERY], GROUP + "\n", 0),
        (["describe-security-groups", "--group-ids"], f"{CALLER_IP}/32\n", 0),
        (["describe-placement-groups"], "logogan\n", 0),
        (["describe-instances", "--filters"], "".join(f"{i}\trunning\n" for i in NODE_IDS), 0),
        (["describe-instances", "--instance-ids"],
         "".join(f"{i}\t{a}\t{p}\n" for i, a, p in zip(NODE_IDS, NODE_ADDRESSES, NODE_PRIVATE)), 0),
    )
    result = cloud.run("setup-aws.sh", "--nodes", "3")
    assert result.returncode == 0, result.stderr
    steps = trace(cloud.calls())
    assert not any(step.split()[-1].startswith(("create-", "authorize-", "run-")) for step in steps), steps
    assert steps.count(REMOTE_INSTALL) == 3


def test_nodes_that_differ_from_the_running_stack_stop_before_launching(cloud):
    answer_all_exists(cloud, f"{CALLER_IP}/32")
    (cloud.home / ".ssh").mkdir()
    (cloud.home / ".ssh" / "logogan.pem").write_text(KEY_MATERIAL)
    result = cloud.run("setup-aws.sh", "--nodes", "2")
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if not line.startswith(("$ ", "Key pair", "Placement"))] == [
        "setup-aws.sh: error: found 1 VM(s) tagged logogan-stack=logogan in us-east-1, not the 2 of --nodes 2; "
        "pass --nodes 1, or --teardown first"
    ]
    assert not any("run-instances" in call["args"] or "ssh" == call["program"] for call in cloud.calls())


def test_teardown_of_a_nodes_run_copies_runs_from_vm_0_only_and_deletes_every_vm_and_the_placement_group(cloud):
    # describe-instances answers in no particular order; the launch index says which VM is process 0.
    listed = [(NODE_IDS[1], NODE_ADDRESSES[1], 1), (NODE_IDS[0], NODE_ADDRESSES[0], 0), (NODE_IDS[2], NODE_ADDRESSES[2], 2)]
    cloud.respond(
        "aws",
        (["describe-instances"], "".join(f"{i}\trunning\t{a}\t{n}\n" for i, a, n in listed), 0),
        (["describe-placement-groups"], "logogan\n", 0),
        (["describe-security-groups"], GROUP + "\n", 0),
        (["describe-key-pairs"], "logogan\n", 0),
    )
    result = cloud.run("setup-aws.sh", "--teardown")
    assert result.returncode == 0, result.stderr
    calls = cloud.calls()
    assert trace(calls) == [
        "aws ec2 describe-instances",
        "ssh: test -d logogan/runs",
        f"scp ubuntu@{NODE_ADDRESSES[0]}:logogan/runs",
        "aws ec2 terminate-instances",
        "aws ec2 wait instance-terminated",
        "aws ec2 describe-placement-groups",
        "aws ec2 delete-placement-group",
        "aws ec2 describe-security-groups",
        "aws ec2 delete-security-group",
        "aws ec2 describe-key-pairs",
        "aws ec2 delete-key-pair",
    ]
    assert f"ubuntu@{NODE_ADDRESSES[0]}" in args_of(calls, "ssh: test -d logogan/runs")
    terminated = args_of(calls, "aws ec2 terminate-instances")
    assert sorted(terminated[terminated.index("--instance-ids") + 1 :][:3]) == sorted(NODE_IDS)
    assert option(args_of(calls, "aws ec2 delete-placement-group"), "--group-name") == "logogan"
    assert "Deleted: 3 instance(s), 1 placement group(s), 1 security group(s), 1 key pair(s)" in result.stdout


def test_nodes_one_runs_exactly_what_no_nodes_flag_runs(cloud):
    answer_nothing_exists(cloud)
    default = cloud.run("setup-aws.sh", "--", "--date", "first")
    default_calls = cloud.calls()
    (cloud.home / ".ssh" / "logogan.pem").unlink()
    cloud.clear()
    answer_nothing_exists(cloud)
    one = cloud.run("setup-aws.sh", "--nodes", "1", "--", "--date", "first")
    assert (default.returncode, one.returncode) == (0, 0), default.stderr + one.stderr
    assert [call["args"] for call in cloud.calls()] == [call["args"] for call in default_calls]
    assert not any("placement" in " ".join(call["args"]) or "--source-group" in call["args"] for call in default_calls)
    assert default_calls[-1]["args"][-1] == "cd logogan && ./run-model.sh --tmux --date first"


@pytest.mark.parametrize("nodes", ["0", "abc", "65", "", "-1", "2.5", "007"])
def test_a_bad_node_count_is_one_line(cloud, nodes):
    result = cloud.run("setup-aws.sh", "--nodes", nodes)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"setup-aws.sh: error: --nodes '{nodes}': expected a whole number of VMs from 1 to 64"
    ]
    assert cloud.calls() == []


def test_coordinator_flags_after_double_dash_are_refused_with_nodes(cloud):
    result = cloud.run("setup-aws.sh", "--nodes", "2", "--", "--date", "x", "--process-id=1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "setup-aws.sh: error: --process-id after -- is set by --nodes (the first VM's private address, 2 processes, "
        "one id per VM); leave it out"
    ]
    assert cloud.calls() == []
