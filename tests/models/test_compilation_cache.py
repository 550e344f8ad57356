"""JAX runs keep their compiled training call on disk: the next run of the same networks loads it."""
from __future__ import annotations

from pathlib import Path

from tests.models.helpers import make_dataset, run_module, tiny_config, write_config

CACHE_HIT = "Persistent compilation cache hit for 'jit__call'"  # logged by JAX under JAX_LOG_COMPILES


def _train(config: Path, runs: Path, name: str, home: Path, **env) -> str:
    result = run_module("models.train", "--config", str(config), "--runs-dir", str(runs), "--name", name,
                        "--steps", "4", "--no-progress", "--backend", "jax", HOME=str(home), JAX_LOG_COMPILES="1",
                        **env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def _losses(run: Path) -> list[str]:
    return [line.rsplit(', "images_per_sec"', 1)[0] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_second_run_loads_the_compiled_step_from_the_user_cache(tmp_path):
    config = write_config(tmp_path / "tiny.json", tiny_config(make_dataset(tmp_path / "data.npz")))
    home, runs = tmp_path / "home", tmp_path / "runs"
    environment = {"JAX_COMPILATION_CACHE_DIR": None}  # unset: the default folder under $HOME
    first = _train(config, runs, "first", home, **environment)
    cache = home / ".cache" / "logogan" / "jax"
    assert CACHE_HIT not in first
    assert list(cache.glob("jit__call-*")), sorted(path.name for path in cache.iterdir())
    second = _train(config, runs, "second", home, **environment)
    assert CACHE_HIT in second
    assert _losses(runs / "second") == _losses(runs / "first")


def test_an_empty_setting_turns_the_cache_off(tmp_path):
    config = write_config(tmp_path / "tiny.json", tiny_config(make_dataset(tmp_path / "data.npz")))
    home = tmp_path / "home"
    for name in ("first", "second"):
        assert CACHE_HIT not in _train(config, tmp_path / "runs", name, home, JAX_COMPILATION_CACHE_DIR="")
    assert not (home / ".cache" / "logogan" / "jax").exists()
