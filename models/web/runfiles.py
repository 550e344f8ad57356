"""Reading a run folder while the trainer may be writing it: missing files and half-written lines are normal."""
from __future__ import annotations

import json
import os
from pathlib import Path

SAMPLE_GLOB = "step_*.png"


def read_json(path: Path, default):
    """A JSON file the trainer writes atomically; ``default`` while it does not exist yet."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def read_metrics(path: Path, tail_bytes: int | None = None) -> list[dict]:
    """The complete lines of a metrics.jsonl, or of its last ``tail_bytes`` (enough for the latest values).

    A line cut by the tail or still being written is skipped, never an error.
    """
    try:
        with open(path, "rb") as handle:
            if tail_bytes is not None:
                handle.seek(max(0, os.fstat(handle.fileno()).st_size - tail_bytes))
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    lines = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            lines.append(value)
    return lines


def latest_sample(run_dir: Path) -> Path | None:
    """The newest sample grid: names carry a zero-padded step, so the last name is the latest step."""
    samples = sorted((run_dir / "samples").glob(SAMPLE_GLOB))
    return samples[-1] if samples else None
