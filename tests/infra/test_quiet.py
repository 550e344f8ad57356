"""Commands start without the backends' log noise; real errors and --verbose still show everything."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

from infra import quiet
from tests.models.helpers import PROJECT_ROOT, make_dataset, tiny_config, write_config

NOISE = re.compile(r"cuInit|E0000|I0000|W0000|oneDNN|absl::InitializeLog|cpu_feature_guard|To enable the following")
BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
INFO = b"I0000 00:00:1796538812.757324    5869 port.cc:153] oneDNN custom operations are on."
FEATURES = b"I0000 00:00:1796538812.807177    5869 cpu_feature_guard.cc:227] This TensorFlow binary is optimized"
FEATURES_2 = b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow."
WARNING = b"W0000 00:00:1796538812.807177    5869 something.cc:1] a warning"
CUINIT = (b"E0000 00:00:1796538816.426234    5869 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
          b"Failed call to cuInit: UNKNOWN ERROR (303)")
REAL_ERROR = b"E0000 00:00:1796538816.426234    5869 op_kernel.cc:1] OP_REQUIRES failed: out of memory"


def clean_env(**extra: str) -> dict:
    """The environment of a user's shell: none of the test suite's quieting variables."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("TF_CPP_MIN_LOG_LEVEL", quiet.VERBOSE_SETTING)}
    return {**env, "PYTHONPATH": str(PROJECT_ROOT), **extra}


def kept(lines: list[bytes], min_level: int = 2, drop_cuda_probe: bool = True) -> list[bytes]:
    drop = quiet.noise_filter(min_level, drop_cuda_probe)
    return [line for line in lines if not drop(line)]


def test_start_up_lines_are_dropped_and_errors_kept():
    lines = [BANNER, INFO, FEATURES, FEATURES_2, WARNING, CUINIT, REAL_ERROR, b"Traceback (most recent call last):"]
    assert kept(lines) == [REAL_ERROR, b"Traceback (most recent call last):"]
    # With a GPU driver present, a failing cuInit is a real error.
    assert kept(lines, drop_cuda_probe=False) == [CUINIT, REAL_ERROR, b"Traceback (most recent call last):"]
    # TF_CPP_MIN_LOG_LEVEL=0 asks for everything TensorFlow logs; the banner alone is never news.
    assert kept(lines, min_level=0, drop_cuda_probe=False) == lines[1:]
    # A continuation line is dropped only right after the line it continues.
    assert kept([REAL_ERROR, FEATURES_2]) == [REAL_ERROR, FEATURES_2]


def test_the_first_backend_import_is_filtered_at_the_file_descriptor(tmp_path):
    """A stand-in backend writes C++-style lines to fd 2 while it is imported, as TensorFlow does."""
    package = tmp_path / "noisy_backend"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(f"""\
        import os
        for line in {[BANNER, INFO, FEATURES, FEATURES_2, CUINIT, REAL_ERROR]!r}:
            os.write(2, line + b"\\n")
        os.write(2, b"partial line without newline")
        VALUE = 42
    """))
    script = textwrap.dedent("""\
        import sys
        from infra import quiet
        quiet.BACKEND_MODULES = ("noisy_backend",)
        quiet.has_nvidia_driver = lambda: False
        quiet.install()
        import noisy_backend
        print("after import", file=sys.stderr, flush=True)
        print(noisy_backend.VALUE, type(noisy_backend.__loader__).__name__,
              type(noisy_backend.__spec__.loader).__name__)
    """)
    env = clean_env(PYTHONPATH=f"{PROJECT_ROOT}:{tmp_path}")
    quiet_run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=60)
    assert quiet_run.returncode == 0, quiet_run.stderr
    assert quiet_run.stderr == REAL_ERROR + b"\npartial line without newline" + b"after import\n"
    assert quiet_run.stdout == b"42 SourceFileLoader SourceFileLoader\n"  # the real loader once imported
    verbose_run = subprocess.run([sys.executable, "-c", script], env={**env, "LOGOGAN_VERBOSE": "1"},
                                 capture_output=True, timeout=60)
    assert verbose_run.stderr.startswith(BANNER + b"\n" + INFO + b"\n")
    assert CUINIT in verbose_run.stderr


def test_training_on_a_cpu_machine_prints_no_backend_noise_unless_verbose(tmp_path):
    config = write_config(tmp_path / "tiny.json", tiny_config(make_dataset(tmp_path / "tiny.npz")))
    command = [sys.executable, "-m", "models.train", "--config", str(config), "--steps", "2", "--runs-dir",
               str(tmp_path / "runs"), "--no-progress"]
    plain = subprocess.run(command + ["--name", "plain"], cwd=PROJECT_ROOT, env=clean_env(), capture_output=True,
                           text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr
    assert [line for line in plain.stderr.splitlines() if NOISE.search(line)] == []
    assert "run folder: " in plain.stderr  # the command's own lines still come
    verbose = subprocess.run(command + ["--name", "verbose", "--verbose"], cwd=PROJECT_ROOT, env=clean_env(),
                             capture_output=True, text=True, timeout=300)
    assert verbose.returncode == 0, verbose.stderr
    assert re.search(r"^[IWE]0000 ", verbose.stderr, re.MULTILINE), verbose.stderr  # TensorFlow's own log


def test_verbose_is_in_every_backend_command_help():
    for module in ("models.train", "models.generate", "models.evaluate"):
        result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=PROJECT_ROOT, env=clean_env(),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "--verbose" in result.stdout and "LOGOGAN_VERBOSE=1" in result.stdout
