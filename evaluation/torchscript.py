"""Read the parameters of a TorchScript archive without PyTorch and without trusting its pickle.

A TorchScript ``.pt`` file is a zip: ``<root>/data.pkl`` pickles the module tree, and each tensor's bytes
live in ``<root>/data/<key>``. Unpickling normally imports and calls whatever the pickle names, so
:class:`RestrictedUnpickler` resolves only the handful of names a tree of tensors and plain containers
needs and refuses every other one with :class:`UnsafePickleError` before anything runs.
"""
from __future__ import annotations

import collections
import functools
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infra.cli import UserError

# Storage classes a tensor may name, with the little-endian dtype of their raw bytes.
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class UnsafePickleError(UserError):
    """The pickle asked for something other than tensors and plain containers."""


class ScriptModule:
    """One node of the module tree: its TorchScript class name and its attributes (tensors as arrays).

    The pickle creates nodes with ``cls.__new__`` and fills them through ``__setstate__``; each TorchScript
    class gets its own subclass so that ``type_name`` says which one a node was.
    """

    type_name = "module"

    def __setstate__(self, state: dict) -> None:
        if not isinstance(state, dict):
            raise UnsafePickleError(f"module {self.type_name} has state of type {type(state).__name__}; expected a dict")
        self.attributes = state

    def __getitem__(self, name: str):
        return self.attributes[name]

    def children(self) -> dict[str, "ScriptModule"]:
        return {name: value for name, value in self.attributes.items() if isinstance(value, ScriptModule)}


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@functools.cache
def _module_class(type_name: str) -> type:
    """A ScriptModule subclass standing in for a TorchScript class: it only stores attributes."""
    return type("ScriptModule", (ScriptModule,), {"type_name": type_name})


def _build_intlist(values):
    return list(values)


class RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds tensors (as numpy arrays), module nodes and plain containers; refuses everything else."""

    def __init__(self, file, read_record):
        super().__init__(file)
        self._read_record = read_record

    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return self._rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch.jit._pickle" and name in ("build_intlist", "build_floatlist", "build_boollist"):
            return _build_intlist
        if module.startswith("__torch__.") and name.isidentifier():
            return _module_class(f"{module[len('__torch__.'):]}.{name}")
        raise UnsafePickleError(f"the pickle asks for {module}.{name}; only tensors and plain containers are allowed")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise UnsafePickleError(f"unexpected persistent id {pid!r}; only tensor storages are allowed")
        _, storage_type, key, _location, size = pid
        data = np.frombuffer(self._read_record(str(key)), dtype=storage_type.dtype)
        if data.size < size:
            raise UnsafePickleError(f"storage {key} holds {data.size} values; the pickle says {size}")
        return data[:size]

    @staticmethod
    def _rebuild_tensor(storage, offset, size, stride, *_rest):
        """A strided view of the storage, copied out as a contiguous array (what torch.Tensor would show)."""
        size, stride = tuple(int(n) for n in size), tuple(int(n) for n in stride)
        last = offset + sum((n - 1) * step for n, step in zip(size, stride)) if all(size) else offset - 1
        if len(size) != len(stride) or min(size + stride, default=0) < 0 or offset < 0 or last >= len(storage):
            raise UnsafePickleError(f"tensor of size {size}, stride {stride} at offset {offset} lies outside its "
                                    f"storage of {len(storage)} values")
        itemsize = storage.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride), writeable=False
        )
        return np.array(view)


def read_torchscript(path: str | Path) -> ScriptModule:
    """The module tree of a TorchScript archive, tensors as numpy arrays; UserError if it is not one."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise UserError(f"{path}: not a readable TorchScript archive ({error})") from None
    with archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
        if not pickles:
            raise UserError(f"{path}: no <root>/data.pkl inside, so not a TorchScript archive")
        root = pickles[0].split("/")[0]

        def read_record(key: str) -> bytes:
            return archive.read(f"{root}/data/{key}")

        with archive.open(pickles[0]) as handle:
            try:
                tree = RestrictedUnpickler(handle, read_record).load()
            except UnsafePickleError as error:
                raise UnsafePickleError(f"{path}: {error}") from None
            except (pickle.UnpicklingError, KeyError, EOFError, ValueError) as error:
                raise UserError(f"{path}: damaged TorchScript pickle ({error})") from None
    if not isinstance(tree, ScriptModule):
        raise UserError(f"{path}: the pickle holds a {type(tree).__name__}, not a module tree")
    return tree
