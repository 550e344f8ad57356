"""Commands start quietly: the backends' start-up log lines stay off stderr unless asked for.

Importing TensorFlow prints about ten C++ log lines (oneDNN, CPU features, CUDA stubs), and on a machine without
a GPU its first device query adds ``E0000 ... failed call to cuInit: ... (303)``, which reads like a failure but
only says that there is no GPU. ``TF_CPP_MIN_LOG_LEVEL`` cannot hide the import-time lines: they are written
before TensorFlow reads it. So :func:`install` (called once by :func:`infra.cli.run`, before any command runs)
watches the first import of ``tensorflow`` and ``jax``, wherever it happens, and while it lasts passes stderr
through a filter that drops

- C++ log lines below ``TF_CPP_MIN_LOG_LEVEL`` (default here 2: errors and fatal errors stay), with their
  continuation lines and absl's "before InitializeLog" banner;
- on a machine without an NVIDIA driver, the CUDA probe's lines (cuInit, CUDA diagnostics), also for
  TensorFlow's first device query, which is made inside the filter for that reason.

Everything else passes through as it comes, and after the import nothing is filtered at all. On a machine
without an NVIDIA driver, JAX's platform probe warnings (Python logging) are hidden as well. ``--verbose`` (see
:func:`add_verbose_argument`) or ``LOGOGAN_VERBOSE=1`` leaves every line as the backends write it.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import logging
import os
import re
import shutil
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator

VERBOSE_SETTING = "LOGOGAN_VERBOSE"
BACKEND_MODULES = ("tensorflow", "jax")
DEFAULT_TF_LOG_LEVEL = "2"  # TensorFlow's C++ log: 0 all, 1 no INFO, 2 no WARNING either, 3 no ERROR either
SEVERITIES = "IWEF"
# absl/glog style: I0000 00:00:1796538812.757324    5869 port.cc:153] message
_LOG_LINE = re.compile(rb"^([IWEF])\d{4} [\d:.]+\s+\d+ [^\]\s]+:\d+\] ")
_ABSL_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_CUDA_PROBE = re.compile(rb"cuInit|cuda_diagnostics|CUDA diagnostic|cuda drivers|kernel driver does not appear",
                         re.IGNORECASE)
_JAX_PROBE_LOGGERS = ("jax._src.xla_bridge",)
_CONTINUATIONS = (b"To enable the following instructions:",)  # second lines of multi-line notices


def verbose() -> bool:
    return os.environ.get(VERBOSE_SETTING, "").strip().lower() not in ("", "0", "false", "no")


class _VerboseAction(argparse.Action):
    """Sets LOGOGAN_VERBOSE as the flag is parsed, before any backend loads (child processes inherit it)."""

    def __call__(self, parser, namespace, values, option_string=None):
        os.environ[VERBOSE_SETTING] = "1"
        setattr(namespace, self.dest, True)


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verbose", action=_VerboseAction, nargs=0, default=False,
        help=f"show the TensorFlow/JAX start-up log lines that are hidden by default (CUDA probing on a machine "
             f"without a GPU, oneDNN, CPU features); the same as {VERBOSE_SETTING}=1",
    )  # fmt: skip


def has_nvidia_driver() -> bool:
    """Whether this machine may have an NVIDIA GPU: the kernel driver is loaded or nvidia-smi is installed."""
    return Path("/proc/driver/nvidia").exists() or shutil.which("nvidia-smi") is not None


def install() -> None:
    """Filter the backends' start-up lines for the rest of this process (idempotent, costs nothing until then)."""
    if not any(isinstance(finder, _QuietBackendImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietBackendImport())


class _QuietBackendImport(importlib.abc.MetaPathFinder):
    """Finds a backend's top-level package as the other finders would and wraps its loader in :class:`_QuietLoader`."""

    def find_spec(self, name, path, target=None):
        if name not in BACKEND_MODULES or name in sys.modules or verbose():
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader, name)
                return spec
        return None


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader, name: str):
        self.loader, self.name = loader, name

    def __getattr__(self, attribute):  # get_resource_reader, is_package ...: the real loader's
        return getattr(self.loader, attribute)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        no_gpu = not has_nvidia_driver()
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_TF_LOG_LEVEL)
        if no_gpu:
            for name in _JAX_PROBE_LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR)
        try:
            with filtered_stderr(noise_filter(tf_min_log_level(), drop_cuda_probe=no_gpu)):
                self.loader.exec_module(module)
                if self.name == "tensorflow" and no_gpu:
                    with contextlib.suppress(Exception):  # a failing query fails again where it is needed
                        module.config.list_physical_devices()  # the CUDA probe, while its lines are filtered
        finally:
            module.__loader__ = self.loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self.loader


def tf_min_log_level() -> int:
    value = os.environ.get("TF_CPP_MIN_LOG_LEVEL", DEFAULT_TF_LOG_LEVEL)
    return int(value) if value.isdigit() else int(DEFAULT_TF_LOG_LEVEL)


def noise_filter(min_level: int, drop_cuda_probe: bool) -> Callable[[bytes], bool]:
    """A predicate on stderr lines: True for a line to drop. The second line of a known multi-line notice
    (TensorFlow's CPU features) goes with its first."""
    previous_dropped = False

    def drop(line: bytes) -> bool:
        nonlocal previous_dropped
        text = line.rstrip(b"\r\n")
        match = _LOG_LINE.match(text)
        if text == _ABSL_BANNER:
            dropped = True
        elif match:
            below = SEVERITIES.index(match.group(1).decode()) < min_level
            dropped = below or (drop_cuda_probe and _CUDA_PROBE.search(text) is not None)
        else:
            dropped = previous_dropped and text.startswith(_CONTINUATIONS)
        previous_dropped = dropped
        return dropped

    return drop


@contextlib.contextmanager
def filtered_stderr(drop: Callable[[bytes], bool]) -> Iterator[None]:
    """File descriptor 2 (C++ libraries write there directly) goes through ``drop`` line by line until the block
    ends; the lines kept reach the real stderr as they come."""
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward, args=(read_end, real, drop), daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # the pipe's last write end closes: the forwarder reads to its end and stops
        forwarder.join(timeout=10)
        if not forwarder.is_alive():
            os.close(real)


def _forward(read_end: int, real: int, drop: Callable[[bytes], bool]) -> None:
    pending = b""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if not drop(line):
                    _write_all(real, line + b"\n")
    if pending and not drop(pending):
        _write_all(real, pending)


def _write_all(descriptor: int, data: bytes) -> None:
    while data:
        data = data[os.write(descriptor, data):]
