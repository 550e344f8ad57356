import io
import pickle
import zipfile

import numpy as np
import pytest

from evaluation.torchscript import UnsafePickleError, read_torchscript
from infra.cli import UserError


def write_archive(path, pickle_bytes, records=None):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/data.pkl", pickle_bytes)
        for key, data in (records or {}).items():
            archive.writestr(f"model/data/{key}", data)
    return path


class RunsCommand:
    """Unpickling this calls os.system: the classic malicious pickle."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


def test_reads_the_fid_archive_tree_and_tensor_bytes(fid_assets):
    tree = read_torchscript(fid_assets["weights"])
    first = tree["net"]["layers"]["conv"]
    assert tree.type_name == "wrap_net.WrapNet"
    assert first.type_name == "inceptionv3.Conv2dLayer"
    assert first["weight"].shape == (32, 3, 3, 3) and first["weight"].dtype == np.float32
    assert (first["stride"], first["padding"]) == (2, 0)
    with zipfile.ZipFile(fid_assets["weights"]) as archive:
        raw = np.frombuffer(archive.read("out_jit_module/data/0"), dtype="<f4")
    np.testing.assert_array_equal(first["weight"].ravel(), raw)
    mixed = tree["net"]["layers"]["mixed_4"]["tower"]["conv_1"]
    assert mixed["padding"] == [0, 3] and mixed["weight"].shape == (128, 128, 1, 7)


def test_a_pickle_that_runs_a_command_is_refused_before_running_it(tmp_path):
    marker = tmp_path / "pwned"
    archive = write_archive(tmp_path / "evil.pt", pickle.dumps(RunsCommand(f"touch {marker}"), protocol=2))
    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        read_torchscript(archive)
    assert not marker.exists()


def test_builtins_are_refused_even_inside_a_tensor_tree(tmp_path):
    payload = pickle.dumps({"weight": eval}, protocol=2)  # a plain dict whose value names builtins.eval
    with pytest.raises(UnsafePickleError, match=r"builtin\w*\.eval"):
        read_torchscript(write_archive(tmp_path / "eval.pt", payload))


def test_strided_tensor_is_rebuilt_like_torch(tmp_path):
    """A hand-written pickle of a transposed 2×3 float tensor over a 6-value storage."""
    storage = np.arange(6, dtype="<f4")
    body = (b"\x80\x02c__torch__.m\nM\n)\x81}X\x01\x00\x00\x00tctorch._utils\n_rebuild_tensor_v2\n"
            b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ"
            b"K\x00K\x03K\x02\x86K\x01K\x03\x86\x89ccollections\nOrderedDict\n)RtRsb.")
    tree = read_torchscript(write_archive(tmp_path / "t.pt", body, {"0": storage.tobytes()}))
    np.testing.assert_array_equal(tree["t"], storage.reshape(2, 3).T)
    assert tree.type_name == "m.M"


def test_a_file_that_is_not_an_archive_is_one_user_error(tmp_path):
    bogus = tmp_path / "weights.pt"
    bogus.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a readable TorchScript archive"):
        read_torchscript(bogus)
    with pytest.raises(UserError, match="no <root>/data.pkl"):
        read_torchscript(write_archive_without_pickle(tmp_path / "empty.pt"))


def write_archive_without_pickle(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/version", "3")
    return path


def test_unknown_persistent_ids_are_refused(tmp_path):
    buffer = io.BytesIO()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("file", "/etc/passwd") if obj == "secret" else None

    Pickler(buffer, protocol=2).dump(["secret"])
    with pytest.raises(UnsafePickleError, match="persistent id"):
        read_torchscript(write_archive(tmp_path / "pid.pt", buffer.getvalue()))


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path):
    """as_strided would otherwise read memory beyond the storage's bytes."""
    body = (b"\x80\x02c__torch__.m\nM\n)\x81}X\x01\x00\x00\x00tctorch._utils\n_rebuild_tensor_v2\n"
            b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ"
            b"K\x00K\x03K\x09\x86K\x01K\x03\x86\x89ccollections\nOrderedDict\n)RtRsb.")
    with pytest.raises(UnsafePickleError, match="outside its storage"):
        read_torchscript(write_archive(tmp_path / "t.pt", body, {"0": np.arange(6, dtype="<f4").tobytes()}))
