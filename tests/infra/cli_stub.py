"""A stand-in for a cloud or network CLI (aws, gcloud, ssh, scp, curl) in the tests.

``install_stubs(folder, names)`` writes one executable per name; each records its arguments as a JSON line
in ``calls.jsonl`` and answers from ``responses.json``: for its program, the first rule whose ``match``
words all appear among the arguments gives its ``stdout`` and ``exit`` status (default: no output, 0).
An ssh without ``-n`` (or a ``gcloud compute ssh``) also saves what it was sent on stdin, as the real one
forwards it to the VM.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def install_stubs(folder: Path, names: list[str]) -> Path:
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        script = bin_dir / name
        script.write_text(
            f"#!{sys.executable}\n"
            f"import sys\nsys.path.insert(0, {str(PROJECT_ROOT)!r})\n"
            f"from tests.infra.cli_stub import main\nmain({name!r}, {str(folder)!r})\n"
        )
        script.chmod(0o755)
    return bin_dir


def main(program: str, folder: str) -> None:
    state = Path(folder)
    args = sys.argv[1:]
    record = {"program": program, "args": args}
    forwards_stdin = (program == "ssh" and "-n" not in args) or (program == "gcloud" and args[:2] == ["compute", "ssh"])
    received = sys.stdin.buffer.read() if forwards_stdin else b""
    if received:
        calls = (state / "calls.jsonl").read_text().count("\n") if (state / "calls.jsonl").exists() else 0
        stdin_file = state / f"stdin-{calls}.bin"
        stdin_file.write_bytes(received)
        record["stdin"] = str(stdin_file)
    with open(state / "calls.jsonl", "a") as log:
        log.write(json.dumps(record) + "\n")
    responses = json.loads((state / "responses.json").read_text()) if (state / "responses.json").exists() else {}
    for rule in responses.get(program, []):
        if all(word in args for word in rule["match"]):
            sys.stdout.write(rule.get("stdout", ""))
            sys.stdout.flush()
            os._exit(rule.get("exit", 0))
    os._exit(0)
