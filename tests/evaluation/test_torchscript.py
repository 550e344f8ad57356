import io
import pickle
import pickletools
import zipfile

import numpy as np
import pytest

from evaluation.torchscript import UnsafePickleError, read_torchscript
from infra.errors import UserError


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


# Hand-written pickles for crafted archives: each piece is raw opcodes, glued the way torch.jit.save lays
# out a module (GLOBAL class, EMPTY_TUPLE NEWOBJ, a dict of attributes, BUILD).
def plain(value) -> bytes:
    """The opcodes that push ``value`` (ints, strings, tuples), without PROTO, STOP or memo puts."""
    return pickletools.optimize(pickle.dumps(value, protocol=2))[2:-1]


def global_(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def module_with(**attributes: bytes) -> bytes:
    items = b"".join(plain(name) + value + b"s" for name, value in attributes.items())
    return b"\x80\x02" + global_("__torch__.m", "M") + b")\x81}" + items + b"b."


def tensor(offset, size, stride, numel=6, storage=None) -> bytes:
    if storage is None:
        storage = b"(" + plain("storage") + global_("torch", "FloatStorage") + plain("0") + plain("cpu") + plain(numel) + b"tQ"
    return (global_("torch._utils", "_rebuild_tensor_v2") + b"(" + storage + plain(offset) + plain(size)
            + plain(stride) + b"\x89" + global_("collections", "OrderedDict") + b")RtR")


def read_crafted(tmp_path, body, numel=6):
    records = {"0": np.arange(numel, dtype="<f4").tobytes()}
    return read_torchscript(write_archive(tmp_path / "crafted.pt", body, records))


def test_the_helpers_build_what_torch_writes(tmp_path):
    tree = read_crafted(tmp_path, module_with(t=tensor(0, (2, 3), (1, 2))))
    np.testing.assert_array_equal(tree["t"], np.arange(6, dtype="<f4").reshape(3, 2).T)


@pytest.mark.parametrize("attribute, refusal", [
    (global_("torch", "FloatStorage") + b"(K\x06tR", "storage type"),  # a storage type called through REDUCE
    (global_("__torch__.evil", "Thing") + b"(K\x01tR", "argument"),  # a module class called with an argument
    (global_("__torch__.evil", "Thing") + b"(K\x01t\x81", "argument"),  # ... or created by NEWOBJ with one
    (tensor(0, (1,), (1,), storage=plain("abc")), "storage"),  # _rebuild_tensor_v2 on a string
    (tensor("0", (1,), (1,)), "integer"),  # ... with an offset that is a string
    (tensor(0, "ab", (1,)), "integer"),  # ... with a size that is a string
    (tensor(0, (1.5,), (1,)), "integer"),
    # BUILD that assigns __class__ on an OrderedDict, and BUILD on a module class instead of an instance
    (global_("collections", "OrderedDict") + b")R" + b"N}" + plain("__class__") + global_("__torch__.m", "N")
     + b"s\x86b", "damaged or crafted"),
    (global_("__torch__.m", "N") + b"}b", "damaged or crafted"),
    (b"]" + b"}" + plain("x") + b"K\x01sb", "damaged or crafted"),  # BUILD on a list
    (b"}K\x01a", "damaged or crafted"),  # APPEND to a dict
], ids=["storage-reduce", "module-reduce-argument", "module-newobj-argument", "tensor-on-string",
        "string-offset", "string-size", "float-size", "build-class-attribute", "build-on-class",
        "build-on-list", "append-to-dict"])
def test_crafted_pickles_are_one_refusal_not_a_crash(tmp_path, attribute, refusal):
    with pytest.raises(UnsafePickleError, match=refusal) as caught:
        read_crafted(tmp_path, module_with(x=attribute))
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(tmp_path / "crafted.pt"))


@pytest.mark.parametrize("offset, size, stride, refusal", [
    (0, (200_000, 200_000), (0, 0), "149.0 GiB"),  # passes the bounds check, asks for 149 GiB
    (0, (2**70,), (0,), "bytes"),  # past any int64
    (2**70, (1,), (1,), "outside its storage"),
    (0, (2, 3), (-3, 1), "negative"),
    (0, (-2, -3), (3, 1), "negative"),
    (-1, (1,), (1,), "negative"),
    (1, (2, 3), (3, 1), "outside its storage"),  # one value too far
    (7, (0,), (1,), "outside its storage"),  # empty, but starting past the end
    (0, (1,) * 40, (1,) * 40, "dimensions"),
    (0, (2, 3), (3,), "dimensions"),
], ids=["stride-0-149-GiB", "size-past-int64", "offset-past-int64", "negative-stride", "negative-size",
        "negative-offset", "one-past-the-end", "empty-past-the-end", "40-dimensions", "stride-rank"])
def test_tensor_geometry_is_checked_before_any_memory_is_asked_for(tmp_path, offset, size, stride, refusal):
    with pytest.raises(UnsafePickleError, match=refusal):
        read_crafted(tmp_path, module_with(t=tensor(offset, size, stride)))


def test_stride_zero_tensors_under_the_cap_are_rebuilt(tmp_path):
    tree = read_crafted(tmp_path, module_with(t=tensor(5, (300, 400), (0, 0)), e=tensor(6, (0, 3), (3, 1))))
    assert tree["t"].shape == (300, 400) and (tree["t"] == 5).all()
    assert tree["e"].shape == (0, 3)


def test_the_cap_is_far_above_the_real_weights_and_holds_for_the_whole_archive(tmp_path, monkeypatch):
    from evaluation import torchscript

    largest_fid_tensor = 448 * 384 * 3 * 3 * 4  # records 324 and 360 of the real archive: 5.9 MiB
    assert torchscript.MAX_TENSOR_BYTES >= 8 * largest_fid_tensor
    assert torchscript.MAX_TOTAL_BYTES >= 8 * 87_274_928  # every record of the real archive
    too_big = torchscript.MAX_TENSOR_BYTES // 4 + 1
    with pytest.raises(UnsafePickleError, match="cap"):
        read_crafted(tmp_path, module_with(t=tensor(0, (too_big,), (0,))))

    monkeypatch.setattr(torchscript, "MAX_TOTAL_BYTES", 6 * 4 + 3 * 24 * 4)  # the storage and three tensors
    read_crafted(tmp_path, module_with(a=tensor(0, (24,), (0,)), b=tensor(0, (24,), (0,)), c=tensor(0, (24,), (0,))))
    with pytest.raises(UnsafePickleError, match="cap"):
        read_crafted(tmp_path, module_with(a=tensor(0, (24,), (0,)), b=tensor(0, (24,), (0,)), c=tensor(0, (25,), (0,))))


def test_a_storage_record_bigger_than_the_cap_is_not_read(tmp_path, monkeypatch):
    from evaluation import torchscript

    monkeypatch.setattr(torchscript, "MAX_TENSOR_BYTES", 16)
    with pytest.raises(UnsafePickleError, match="cap"):
        read_crafted(tmp_path, module_with(t=tensor(0, (1,), (1,))))


def test_a_module_tree_with_a_cycle_is_refused(tmp_path):
    # The module's attribute "self" is the module itself (memo GET 0), which would recurse forever later.
    body = b"\x80\x02" + global_("__torch__.m", "M") + b")\x81q\x00}" + plain("self") + b"h\x00sb."
    with pytest.raises(UnsafePickleError, match="cycle"):
        read_torchscript(write_archive(tmp_path / "cycle.pt", body))
