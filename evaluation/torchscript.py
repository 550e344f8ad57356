"""Read the parameters of a TorchScript archive without PyTorch and without trusting its pickle.

A TorchScript ``.pt`` file is a zip: ``<root>/data.pkl`` pickles the module tree, and each tensor's bytes
live in ``<root>/data/<key>``. Unpickling normally imports and calls whatever the pickle names, so
:class:`RestrictedUnpickler` resolves only the handful of names a tree of tensors and plain containers
needs and refuses every other one with :class:`UnsafePickleError` before anything runs.
"""
from __future__ import annotations

import collections
import functools
import math
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infra.errors import UserError

# What one archive may make the reader allocate, checked before numpy is asked for any memory. The real FID
# weights' largest tensor is 5.9 MiB (6,193,152 bytes) and all their records 83 MiB; the caps leave ten
# times that, and stop a crafted view (one stored value, stride 0, 200000×200000: 149 GiB) in its tracks.
MAX_TENSOR_BYTES = 64 * 2**20  # one storage record or one rebuilt tensor
MAX_TOTAL_BYTES = 2**30  # every storage read and tensor rebuilt from one archive, together
MAX_PICKLE_BYTES = 16 * 2**20  # data.pkl itself (28 KiB in the real archive)
MAX_DIMENSIONS = 32  # what numpy can build on every version
MAX_DEPTH = 64  # nesting of modules and containers in the tree

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

    def __new__(cls, *args, **kwargs):
        # torch.jit.save creates modules with no arguments; a class that takes some is not a module.
        if args or kwargs:
            raise UnsafePickleError(f"the pickle creates module {cls.type_name} with an argument; modules take none")
        return super().__new__(cls)

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
    """What ``torch.FloatStorage`` and its kin stand for: only a name inside a persistent id, never called."""

    name: str

    def __call__(self, *_args, **_kwargs):
        raise UnsafePickleError(f"the pickle calls the storage type torch.{self.name}; storages come only from records")


@dataclass(frozen=True)
class _Storage:
    """A storage record's values. Wrapped, so that the pickle cannot reach (or BUILD on) the array itself."""

    key: str
    values: np.ndarray


@functools.cache
def _module_class(type_name: str) -> type:
    """A ScriptModule subclass standing in for a TorchScript class: it only stores attributes."""
    return type("ScriptModule", (ScriptModule,), {"type_name": type_name})


def _build_intlist(values):
    return list(values)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(value, limit: int = 60) -> str:
    """A short repr for a message: what the pickle handed over may be megabytes long."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bytes(count: int) -> str:
    return f"{count:,} bytes ({count / 2**30:.1f} GiB)" if count >= 2**30 else f"{count:,} bytes ({count / 2**20:.1f} MiB)"


class RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds tensors (as numpy arrays), module nodes and plain containers; refuses everything else.

    Every tensor's geometry is checked against its storage, and its size against MAX_TENSOR_BYTES and
    MAX_TOTAL_BYTES, before any memory is allocated for it.
    """

    def __init__(self, file, read_record):
        super().__init__(file)
        self._read_record = read_record
        self._storages: dict[tuple[str, str], _Storage] = {}
        self._allocated = 0

    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return self._rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch.jit._pickle" and name in ("build_intlist", "build_floatlist", "build_boollist"):
            return _build_intlist
        if module.startswith("__torch__.") and all(part.isidentifier() for part in (*module.split("."), name)):
            return _module_class(f"{module[len('__torch__.'):]}.{name}")
        raise UnsafePickleError(f"the pickle asks for {_one_line(module, 60)}.{_one_line(name, 60)}; "
                                "only tensors and plain containers are allowed")

    def _allocate(self, count: int, what: str) -> None:
        """Count ``count`` bytes against the caps, or refuse before they are asked for."""
        if count > MAX_TENSOR_BYTES:
            raise UnsafePickleError(f"{what} would take {_bytes(count)}; the cap per tensor is {_bytes(MAX_TENSOR_BYTES)}")
        if self._allocated + count > MAX_TOTAL_BYTES:
            raise UnsafePickleError(f"{what} would bring the archive's tensors to {_bytes(self._allocated + count)}; "
                                    f"the cap per archive is {_bytes(MAX_TOTAL_BYTES)}")
        self._allocated += count

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise UnsafePickleError(f"unexpected persistent id {_describe(pid)}; only tensor storages are allowed")
        _, storage_type, key, _location, size = pid
        if not (isinstance(key, str) and _is_int(size) and size >= 0):
            raise UnsafePickleError(f"storage {_describe(key)} of size {_describe(size)}: expected a record name "
                                    "and a count of values")
        dtype = STORAGE_DTYPES[storage_type.name]
        if (key, storage_type.name) not in self._storages:
            self._allocate(size * dtype.itemsize, f"storage {key} of {size:,} values")
            raw = self._read_record(key)
            data = np.frombuffer(raw, dtype=dtype, count=len(raw) // dtype.itemsize)
            if data.size < size:
                raise UnsafePickleError(f"storage {key} holds {data.size} values; the pickle says {size}")
            self._storages[key, storage_type.name] = _Storage(key, data[:size])
        storage = self._storages[key, storage_type.name]
        if len(storage.values) != size:
            raise UnsafePickleError(f"storage {key} is named with {len(storage.values)} and with {size} values")
        return storage

    def _rebuild_tensor(self, storage, offset, size, stride, *_rest):
        """A strided view of the storage, copied out as a contiguous array (what torch.Tensor would show)."""
        if not isinstance(storage, _Storage):
            raise UnsafePickleError(f"a tensor is rebuilt on {_describe(storage)}, not on a storage record")
        if not (isinstance(size, (tuple, list)) and isinstance(stride, (tuple, list))
                and all(_is_int(n) for n in (offset, *size, *stride))):
            raise UnsafePickleError(f"tensor offset {_describe(offset)}, size {_describe(size)}, stride "
                                    f"{_describe(stride)}: expected an integer and two tuples of integers")
        size, stride, values = tuple(size), tuple(stride), storage.values
        if len(size) != len(stride) or len(size) > MAX_DIMENSIONS:
            raise UnsafePickleError(f"tensor with {len(size)} dimensions of size and {len(stride)} of stride; "
                                    f"expected the same number, at most {MAX_DIMENSIONS}")
        if min((offset, *size, *stride)) < 0:
            raise UnsafePickleError(f"tensor of size {size}, stride {stride} at offset {offset}: negative values "
                                    "are not allowed")
        count = math.prod(size)
        # Python ints do not overflow: the last index is exact, and with every size >= 1 and every
        # stride >= 0 it is the largest index the view touches.
        last = offset + sum((n - 1) * step for n, step in zip(size, stride)) if count else offset - 1
        if last >= len(values):
            raise UnsafePickleError(f"tensor of size {_describe(size)}, stride {_describe(stride)} at offset "
                                    f"{offset} lies outside its storage of {len(values)} values")
        self._allocate(count * values.dtype.itemsize, f"tensor of size {_describe(size)}")
        if count == 0:
            return np.empty(size, dtype=values.dtype)
        itemsize = values.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            values[offset:], shape=size, strides=tuple(s * itemsize for s in stride), writeable=False
        )
        return np.array(view)


def _check_tree(node, ancestors: tuple[int, ...] = ()) -> None:
    """Refuse a tree that contains itself or nests deeper than MAX_DEPTH: readers of it walk it recursively."""
    if id(node) in ancestors:
        raise UnsafePickleError(f"the module tree contains a cycle at {type(node).__name__}")
    if len(ancestors) > MAX_DEPTH:
        raise UnsafePickleError(f"the module tree nests deeper than {MAX_DEPTH} levels")
    if isinstance(node, ScriptModule):
        if not isinstance(getattr(node, "attributes", None), dict):
            raise UnsafePickleError(f"module {node.type_name} has no attributes (it was never given its state)")
        children = node.attributes.values()
    elif isinstance(node, dict):
        children = node.values()
    elif isinstance(node, (list, tuple)):
        children = node
    else:
        return
    for child in children:
        _check_tree(child, (*ancestors, id(node)))


def read_torchscript(path: str | Path) -> ScriptModule:
    """The module tree of a TorchScript archive, tensors as numpy arrays; UserError if it is not one."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except Exception as error:  # a damaged zip directory raises more than BadZipFile
        raise UserError(f"{path}: not a readable TorchScript archive ({_one_line(error)})") from None
    with archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
        if not pickles:
            raise UserError(f"{path}: no <root>/data.pkl inside, so not a TorchScript archive")
        root = pickles[0].split("/")[0]

        def read_record(key: str) -> bytes:
            try:
                info = archive.getinfo(f"{root}/data/{key}")
            except KeyError:
                raise UnsafePickleError(f"the pickle names storage {_describe(key)}, which the archive lacks") from None
            if info.file_size > MAX_TENSOR_BYTES:
                raise UnsafePickleError(f"storage {key} holds {_bytes(info.file_size)}; the cap per tensor is "
                                        f"{_bytes(MAX_TENSOR_BYTES)}")
            return archive.read(info)

        try:
            info = archive.getinfo(pickles[0])
            if info.file_size > MAX_PICKLE_BYTES:
                raise UnsafePickleError(f"{pickles[0]} holds {_bytes(info.file_size)}; the cap is {_bytes(MAX_PICKLE_BYTES)}")
            with archive.open(info) as handle:
                tree = RestrictedUnpickler(handle, read_record).load()
            _check_tree(tree)
        except UnsafePickleError as error:
            raise UnsafePickleError(f"{path}: {error}") from None
        except Exception as error:  # a crafted pickle makes the unpickler itself raise almost anything
            raise UnsafePickleError(f"{path}: damaged or crafted TorchScript pickle "
                                    f"({type(error).__name__}: {_one_line(error)})") from None
    if not isinstance(tree, ScriptModule):
        raise UserError(f"{path}: the pickle holds a {type(tree).__name__}, not a module tree")
    return tree


def _one_line(value, limit: int = 200) -> str:
    """``str(value)`` on one line, cut short: error texts and names in a pickle may hold newlines."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
