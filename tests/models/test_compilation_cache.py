"""JAX runs keep their compiled training call on disk: the next run of the same networks loads it."""
from __future__ import annotations

from pathlib import Path

from tests.models.helpers import make_dataset, run_module, tiny_config, write_config

CACHE_HIT = "Persistent compilation cache hit for 'jit__call'"  # logged by JAX under JAX_LOG_COMPILES


def _train(config: Path, runs: Path, name: str, cache: Path, **env) -> str:
    result = run_module("models.train", "--config", str(config), "--runs-dir", str(runs), "--name", name,
                        "--steps", "4", "--no-progress", "--backend", "jax", LOGOGAN_CACHE_DIR=str(cache),
                        JAX_LOG_COMPILES="1", **env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def _losses(run: Path) -> list[str]:
    return [line.rsplit(', "images_per_sec"', 1)[0] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_second_run_loads_the_compiled_step_from_the_user_cache(tmp_path):
    config = write_config(tmp_path / "tiny.json", tiny_config(make_dataset(tmp_path / "data.npz")))
    user_cache, runs = tmp_path / "cache", tmp_path / "runs"
    environment = {"JAX_COMPILATION_CACHE_DIR": None}  # unset: jax in LogoGAN's user cache folder
    first = _train(config, runs, "first", user_cache, **environment)
    cache = user_cache / "jax"
    assert CACHE_HIT not in first
    assert list(cache.glob("jit__call-*")), sorted(path.name for path in cache.iterdir())
    second = _train(config, runs, "second", user_cache, **environment)
    assert CACHE_HIT in second
    assert _losses(runs / "second") == _losses(runs / "first")


def test_an_empty_setting_turns_the_cache_off(tmp_path):
    config = write_config(tmp_path / "tiny.json", tiny_config(make_dataset(tmp_path / "data.npz")))
    user_cache = tmp_path / "cache"
    for name in ("first", "second"):
        assert CACHE_HIT not in _train(config, tmp_path / "runs", name, user_cache, JAX_COMPILATION_CACHE_DIR="")
    assert not (user_cache / "jax").exists()
