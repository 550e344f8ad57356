"""LogoGAN's caches share one root folder, which one setting moves."""
from __future__ import annotations

from evaluation.cache import default_cache_dir
from infra.user_cache import SETTING, user_cache_dir


def test_the_setting_wins_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv(SETTING, raising=False)
    assert user_cache_dir("jax") == tmp_path / "home" / ".cache" / "logogan" / "jax"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "logogan"
    monkeypatch.setenv(SETTING, str(tmp_path / "mine"))
    assert user_cache_dir("s3", "bucket", "sets/a.npz") == tmp_path / "mine" / "s3" / "bucket" / "sets" / "a.npz"
    monkeypatch.setenv(SETTING, "")  # empty counts as unset, as an empty XDG_CACHE_HOME does
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "logogan"


def test_evaluation_statistics_follow_the_setting_unless_their_own_is_set(tmp_path, monkeypatch):
    monkeypatch.delenv("LOGOGAN_EVAL_CACHE", raising=False)
    monkeypatch.setenv(SETTING, str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine" / "eval"
    monkeypatch.setenv("LOGOGAN_EVAL_CACHE", str(tmp_path / "eval-only"))
    assert default_cache_dir() == tmp_path / "eval-only"
