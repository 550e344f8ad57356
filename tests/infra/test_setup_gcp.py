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
        (["firewall-rules", "list"], f"{CALLER_IP}/32\n", 0),
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
    ]
    assert option(args_of(calls, "gcloud compute instances list"), "--filter") == "labels.logogan-stack=logogan"
    assert option(args_of(calls, "gcloud compute instances delete logogan"), "--zone") == "europe-west4-a"
    assert args_of(calls, "gcloud compute scp")[-2:] == ["logogan:logogan/runs", "."]

    cloud.clear()
    again = cloud.run("setup-gcp.sh", "--teardown")
    assert again.returncode == 0, again.stderr
    assert trace(cloud.calls()) == ["gcloud compute instances list", "gcloud compute firewall-rules list"]


def test_copied_project_is_the_committed_tree(cloud):
    result = cloud.run("setup-gcp.sh")
    assert result.returncode == 0, result.stderr
    sent = next(call for call in cloud.calls() if "stdin" in call)
    names = tarfile.open(fileobj=io.BytesIO(Path(sent["stdin"]).read_bytes()), mode="r:gz").getnames()
    assert "setup-gcp.sh" in names and not any(name.startswith((".venv/", "runs/")) for name in names)
