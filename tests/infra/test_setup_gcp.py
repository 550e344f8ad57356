"""setup-gcp.sh against stub gcloud/curl: the exact command sequences, the /32 firewall rule, teardown."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tests.infra.cloud_stubs import (
    CALLER_IP, HOSTILE_ARGS, args_of, argv_on_the_vm, dry_run_trace, make_cloud_stubs, option, trace,
)

CREATE_STEPS = [
    "gcloud compute firewall-rules list",
    "gcloud compute firewall-rules create logogan-ssh",
    "gcloud compute instances list",
    "gcloud compute instances create logogan",
    "gcloud compute ssh logogan",
    "gcloud compute ssh logogan",
    "gcloud compute ssh logogan",
]


@pytest.fixture
def cloud(tmp_path):
    return make_cloud_stubs(tmp_path)


def remote_commands(calls):
    return [option(call["args"], "--command") for call in calls if call["args"][:2] == ["compute", "ssh"]]


def test_create_runs_the_exact_sequence_with_a_firewall_rule_for_the_callers_address_only(cloud):
    result = cloud.run("setup-gcp.sh", "--spot", "--zone", "europe-west4-a")
    assert result.returncode == 0, result.stderr
    calls = cloud.calls()
    assert trace(calls) == ["curl", *CREATE_STEPS]
    rule = args_of(calls, "gcloud compute firewall-rules create logogan-ssh")
    assert option(rule, "--source-ranges") == f"{CALLER_IP}/32"
    assert (option(rule, "--rules"), option(rule, "--direction"), option(rule, "--target-tags")) == ("tcp:22", "INGRESS", "logogan")

    vm = args_of(calls, "gcloud compute instances create logogan")
    assert option(vm, "--image-project") == "deeplearning-platform-release"
    assert option(vm, "--metadata") == "install-nvidia-driver=True"
    assert option(vm, "--accelerator") == "type=nvidia-tesla-t4,count=1"
    assert option(vm, "--zone") == "europe-west4-a"
    assert option(vm, "--labels") == "logogan-stack=logogan"
    assert option(vm, "--provisioning-model") == "SPOT"

    assert remote_commands(calls) == [
        "true",
        "mkdir -p logogan && tar -xzf - -C logogan",
        "cd logogan && ./infra/remote-install.sh",
    ]
    sent = next(call for call in calls if "mkdir -p logogan && tar -xzf - -C logogan" in call["args"])
    assert sent["program"] == "gcloud"


def test_dry_run_prints_the_same_commands_and_runs_none(cloud):
    result = cloud.run("setup-gcp.sh", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert trace(cloud.calls()) == ["curl"]
    assert dry_run_trace(result.stdout) == CREATE_STEPS
    assert f"--source-ranges={CALLER_IP}/32" in result.stdout


def test_second_run_creates_nothing_and_updates_a_stale_address(cloud):
    cloud.respond(
        "gcloud",
        (["firewall-rules", "list"], f"{CALLER_IP}/32\n", 0),
        (["instances", "list"], "logogan\tus-central1-a\tRUNNING\n", 0),
    )
    result = cloud.run("setup-gcp.sh")
    assert result.returncode == 0, result.stderr
    assert trace(cloud.calls()) == [
        "curl",
        "gcloud compute firewall-rules list",
        "gcloud compute instances list",
        "gcloud compute ssh logogan",
        "gcloud compute ssh logogan",
        "gcloud compute ssh logogan",
    ]

    cloud.clear()
    cloud.respond(
        "gcloud",
        (["firewall-rules", "list"], "192.0.2.50/32\n", 0),
        (["instances", "list"], "logogan\tus-central1-a\tTERMINATED\n", 0),
    )
    result = cloud.run("setup-gcp.sh")
    assert result.returncode == 0, result.stderr
    calls = cloud.calls()
    assert trace(calls)[1:5] == [
        "gcloud compute firewall-rules list",
        "gcloud compute firewall-rules update logogan-ssh",
        "gcloud compute instances list",
        "gcloud compute instances start logogan",
    ]
    assert option(args_of(calls, "gcloud compute firewall-rules update logogan-ssh"), "--source-ranges") == f"{CALLER_IP}/32"


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_every_training_flag_reaches_run_model_exactly_as_given(cloud, tmp_path, shell):
    result = cloud.run("setup-gcp.sh", "--", *HOSTILE_ARGS)
    assert result.returncode == 0, result.stderr
    train = remote_commands(cloud.calls())[-1]
    assert train.startswith("cd logogan && ./run-model.sh --tmux ")
    home = tmp_path / "vm-home"
    home.mkdir()
    assert argv_on_the_vm(train, shell, home) == ["--tmux", *HOSTILE_ARGS]


def test_an_address_with_an_octet_over_255_opens_nothing(cloud):
    cloud.respond("curl", ([], "999.999.999.999\n", 0))
    result = cloud.run("setup-gcp.sh")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "setup-gcp.sh: error: the public IP lookup answered '999.999.999.999', not an IPv4 address"
    ]
    assert trace(cloud.calls()) == ["curl"]


def test_teardown_copies_runs_back_then_deletes_the_vm_and_the_rule(cloud, tmp_path):
    cloud.respond(
        "gcloud",
        (["firewall-rules", "list", "--filter=name=logogan-ssh"], "logogan-ssh\n", 0),
        (["instances", "list"], "logogan\teurope-west4-a\tRUNNING\n", 0),
    )
    result = cloud.run("setup-gcp.sh", "--teardown")
    assert result.returncode == 0, result.stderr
    calls = cloud.calls()
    assert trace(calls) == [
        "gcloud compute instances list",
        "gcloud compute ssh logogan",
        "gcloud compute scp",
        "gcloud compute instances delete logogan",
        "gcloud compute firewall-rules list",
        "gcloud compute firewall-rules delete logogan-ssh",
        "gcloud compute firewall-rules list",
    ]
    assert option(args_of(calls, "gcloud compute instances list"), "--filter") == "labels.logogan-stack=logogan"
    assert option(args_of(calls, "gcloud compute instances delete logogan"), "--zone") == "europe-west4-a"
    assert args_of(calls, "gcloud compute scp")[-2:] == ["logogan:logogan/runs", "."]

    cloud.clear()
    again = cloud.run("setup-gcp.sh", "--teardown")
    assert again.returncode == 0, again.stderr
    assert trace(cloud.calls()) == [
        "gcloud compute instances list", "gcloud compute firewall-rules list", "gcloud compute firewall-rules list",
    ]


def test_copied_project_is_the_committed_tree(cloud):
    result = cloud.run("setup-gcp.sh")
    assert result.returncode == 0, result.stderr
    sent = next(call for call in cloud.calls() if "stdin" in call)
    names = tarfile.open(fileobj=io.BytesIO(Path(sent["stdin"]).read_bytes()), mode="r:gz").getnames()
    assert "setup-gcp.sh" in names and not any(name.startswith((".venv/", "runs/")) for name in names)


# --nodes: three VMs of one run, named logogan-0 ... logogan-2.
NODES = ["logogan-0", "logogan-1", "logogan-2"]
COORDINATOR_IP = "10.128.0.17"
NODES_CREATE_STEPS = [
    "gcloud compute firewall-rules list",
    "gcloud compute firewall-rules create logogan-ssh",
    "gcloud compute firewall-rules list",
    "gcloud compute firewall-rules create logogan-internal",
    "gcloud compute instances list",
    "gcloud compute instances create logogan-0 logogan-1 logogan-2",
    "gcloud compute instances describe logogan-0",
    *[f"gcloud compute ssh {vm}" for vm in NODES for _ in range(3)],
    *[f"gcloud compute ssh {vm}" for vm in NODES],
]


def train_commands(calls):
    return [(call["args"][2], option(call["args"], "--command")) for call in calls
            if call["args"][:2] == ["compute", "ssh"] and "./run-model.sh" in option(call["args"], "--command")]


def test_nodes_start_n_vms_in_the_zone_open_to_each_other_only(cloud):
    cloud.respond("gcloud", (["instances", "describe", "logogan-0"], COORDINATOR_IP + "\n", 0))
    result = cloud.run("setup-gcp.sh", "--nodes", "3", "--zone", "europe-west4-a", "--", "--date", "wide")
    assert result.returncode == 0, result.stderr
    calls = cloud.calls()
    assert trace(calls) == ["curl", *NODES_CREATE_STEPS]

    vms = args_of(calls, "gcloud compute instances create logogan-0 logogan-1 logogan-2")
    assert (option(vms, "--zone"), option(vms, "--tags"), option(vms, "--labels")) == ("europe-west4-a", "logogan", "logogan-stack=logogan")
    internal = args_of(calls, "gcloud compute firewall-rules create logogan-internal")
    assert (option(internal, "--source-tags"), option(internal, "--target-tags")) == ("logogan", "logogan")
    assert (option(internal, "--rules"), option(internal, "--direction"), option(internal, "--action")) == ("tcp", "INGRESS", "ALLOW")
    assert not any(word.startswith("--source-ranges") for word in internal)
    ssh_rule = args_of(calls, "gcloud compute firewall-rules create logogan-ssh")
    assert option(ssh_rule, "--source-ranges") == f"{CALLER_IP}/32"
    assert option(args_of(calls, "gcloud compute instances describe logogan-0"), "--format") == "value(networkInterfaces[0].networkIP)"

    # One tmux session per VM, each told the first VM's internal address and its own process id.
    assert train_commands(calls) == [
        (vm, f"cd logogan && ./run-model.sh --tmux --date wide --coordinator {COORDINATOR_IP}:1234 --num-processes 3 --process-id {node}")
        for node, vm in enumerate(NODES)
    ]
    assert all(option(call["args"], "--zone") == "europe-west4-a" for call in calls if call["args"][:2] == ["compute", "ssh"])
    assert f"Coordinator:     {COORDINATOR_IP}:1234 (logogan-0)" in result.stdout


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_every_node_gets_the_training_flags_exactly_and_its_own_process_id(cloud, tmp_path, shell):
    cloud.respond("gcloud", (["instances", "describe", "logogan-0"], COORDINATOR_IP + "\n", 0))
    result = cloud.run("setup-gcp.sh", "--nodes", "2", "--", *HOSTILE_ARGS)
    assert result.returncode == 0, result.stderr
    commands = train_commands(cloud.calls())
    assert [vm for vm, _ in commands] == ["logogan-0", "logogan-1"]
    for node, (_, command) in enumerate(commands):
        home = tmp_path / f"vm-home-{node}"
        home.mkdir()
        assert argv_on_the_vm(command, shell, home) == [
            "--tmux", *HOSTILE_ARGS, "--coordinator", f"{COORDINATOR_IP}:1234", "--num-processes", "2", "--process-id", str(node),
        ]


def test_nodes_dry_run_prints_the_whole_plan_and_runs_none(cloud):
    result = cloud.run("setup-gcp.sh", "--dry-run", "--nodes", "3", "--", "--date", "wide")
    assert result.returncode == 0, result.stderr
    assert trace(cloud.calls()) == ["curl"]
    assert dry_run_trace(result.stdout) == NODES_CREATE_STEPS
    assert "--coordinator '\\''<private-ip-0>:1234'\\'' --num-processes 3 --process-id 2" in result.stdout


def test_nodes_second_run_creates_nothing_and_starts_a_stopped_vm(cloud):
    cloud.respond(
        "gcloud",
        (["firewall-rules", "list", "--filter=name=logogan-ssh"], f"{CALLER_IP}/32\n", 0),
        (["firewall-rules", "list", "--filter=name=logogan-internal"], "logogan-internal\n", 0),
        (["instances", "list"], "logogan-1\tus-central1-a\tTERMINATED\nlogogan-0\tus-central1-a\tRUNNING\n"
                                "logogan-2\tus-central1-a\tRUNNING\n", 0),
        (["instances", "describe", "logogan-0"], COORDINATOR_IP + "\n", 0),
    )
    result = cloud.run("setup-gcp.sh", "--nodes", "3")
    assert result.returncode == 0, result.stderr
    steps = trace(cloud.calls())
    assert steps[1:5] == [
        "gcloud compute firewall-rules list",
        "gcloud compute firewall-rules list",
        "gcloud compute instances list",
        "gcloud compute instances start logogan-1",
    ]
    assert not any(word in step.split() for step in steps for word in ("create", "update")), steps


@pytest.mark.parametrize("nodes, listed, message", [
    ("2", "logogan\tus-central1-a\tRUNNING\n",
     "VM logogan is labelled logogan-stack=logogan but is not one of the --nodes 2 VMs (logogan-0 logogan-1); "
     "pass the --nodes it was made with, or --teardown first"),
    ("3", "logogan-0\tus-central1-a\tRUNNING\nlogogan-1\tus-central1-a\tRUNNING\n",
     "found 2 VM(s) labelled logogan-stack=logogan, not the 3 of --nodes 3; pass --nodes 2, or --teardown first"),
])
def test_nodes_that_differ_from_the_running_stack_stop_before_creating_vms(cloud, nodes, listed, message):
    cloud.respond("gcloud", (["instances", "list"], listed, 0))
    result = cloud.run("setup-gcp.sh", "--nodes", nodes)
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if not line.startswith(("$ ", "Firewall"))] == [
        f"setup-gcp.sh: error: {message}"
    ]
    assert not any("create" in call["args"] and "instances" in call["args"] or call["args"][:2] == ["compute", "ssh"]
                   for call in cloud.calls())


def test_teardown_of_a_nodes_run_copies_runs_from_vm_0_only_and_deletes_every_vm_and_both_rules(cloud):
    cloud.respond(
        "gcloud",
        (["firewall-rules", "list", "--filter=name=logogan-ssh"], "logogan-ssh\n", 0),
        (["firewall-rules", "list", "--filter=name=logogan-internal"], "logogan-internal\n", 0),
        (["instances", "list"], "".join(f"{vm}\tus-central1-a\tRUNNING\n" for vm in ["logogan-1", "logogan-0", "logogan-2"]), 0),
    )
    result = cloud.run("setup-gcp.sh", "--teardown")
    assert result.returncode == 0, result.stderr
    calls = cloud.calls()
    assert trace(calls) == [
        "gcloud compute instances list",
        "gcloud compute ssh logogan-0",
        "gcloud compute scp",
        "gcloud compute instances delete logogan-1",
        "gcloud compute instances delete logogan-0",
        "gcloud compute instances delete logogan-2",
        "gcloud compute firewall-rules list",
        "gcloud compute firewall-rules delete logogan-ssh",
        "gcloud compute firewall-rules list",
        "gcloud compute firewall-rules delete logogan-internal",
    ]
    assert args_of(calls, "gcloud compute scp")[-2:] == ["logogan-0:logogan/runs", "."]
    assert "Deleted: 3 VM(s) labelled logogan-stack=logogan and 2 firewall rule(s) (logogan-ssh logogan-internal)." in result.stdout


def test_nodes_teardown_deletes_no_vm_when_vm_0_cannot_be_reached(cloud):
    cloud.respond(
        "gcloud",
        (["compute", "ssh"], "", 255),
        (["instances", "list"], "".join(f"{vm}\tus-central1-a\tRUNNING\n" for vm in ["logogan-1", "logogan-0"]), 0),
    )
    result = cloud.run("setup-gcp.sh", "--teardown")
    assert result.returncode == 2 and "nothing was deleted" in result.stderr
    assert not any("delete" in call["args"] for call in cloud.calls())


def test_nodes_one_runs_exactly_what_no_nodes_flag_runs(cloud):
    default = cloud.run("setup-gcp.sh", "--", "--date", "first")
    default_calls = cloud.calls()
    cloud.clear()
    one = cloud.run("setup-gcp.sh", "--nodes", "1", "--", "--date", "first")
    assert (default.returncode, one.returncode) == (0, 0), default.stderr + one.stderr
    strip_stdin = [{k: v for k, v in call.items() if k != "stdin"} for call in cloud.calls()]
    assert strip_stdin == [{k: v for k, v in call.items() if k != "stdin"} for call in default_calls]
    assert trace(default_calls) == ["curl", *CREATE_STEPS, "gcloud compute ssh logogan"]
    assert remote_commands(default_calls)[-1] == "cd logogan && ./run-model.sh --tmux --date first"


@pytest.mark.parametrize("machine_type, accelerator, expected", [
    ("n1-standard-8", None, "type=nvidia-tesla-t4,count=1"),
    ("a2-highgpu-4g", None, None),
    ("g2-standard-24", None, None),
    ("n1-standard-16", "nvidia-tesla-v100", "type=nvidia-tesla-v100,count=1"),
])
def test_machine_types_with_built_in_gpus_need_no_accelerator_flag(cloud, machine_type, accelerator, expected):
    flags = ["--machine-type", machine_type] + (["--accelerator", accelerator] if accelerator else [])
    result = cloud.run("setup-gcp.sh", *flags)
    assert result.returncode == 0, result.stderr
    vm = args_of(cloud.calls(), "gcloud compute instances create logogan")
    if expected is None:
        assert not any(word.startswith("--accelerator") for word in vm)
    else:
        assert option(vm, "--accelerator") == expected


@pytest.mark.parametrize("nodes", ["0", "abc", "65", ""])
def test_a_bad_node_count_is_one_line(cloud, nodes):
    result = cloud.run("setup-gcp.sh", "--nodes", nodes)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"setup-gcp.sh: error: --nodes '{nodes}': expected a whole number of VMs from 1 to 64"
    ]
    assert cloud.calls() == []
