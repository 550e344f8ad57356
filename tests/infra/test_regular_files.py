"""Reading files that may be pipes, devices or huge: refused at once in an OSError, never a hang."""
from __future__ import annotations

import os
import threading

import pytest

from infra.regular_files import check_regular_file, read_regular_file


def test_a_regular_file_is_read_whole_up_to_the_limit(tmp_path):
    (tmp_path / "a.json").write_bytes(b'{"step": 3}')
    assert read_regular_file(tmp_path / "a.json", 11) == b'{"step": 3}'
    with pytest.raises(OSError, match="11 bytes, more than the 10 accepted"):
        read_regular_file(tmp_path / "a.json", 10)
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "missing.json", 10)


@pytest.mark.parametrize("read", [lambda path: read_regular_file(path, 100), check_regular_file],
                         ids=["read_regular_file", "check_regular_file"])
@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_pipes_devices_and_folders_are_refused_without_waiting(tmp_path, read, kind):
    path = tmp_path / "config.json"
    if kind == "fifo":
        os.mkfifo(path)  # nothing ever writes to it: a blocking open() would wait forever
    elif kind == "device":
        path = "/dev/zero"  # never ends
    else:
        path.mkdir()
    outcome = {}

    def attempt():
        try:
            read(path)
        except OSError as error:
            outcome["error"] = str(error)

    reader = threading.Thread(target=attempt, daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "the reader hung"
    assert "not a regular file" in outcome["error"]
