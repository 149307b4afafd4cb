import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from idgraph.errors import ConfigError
from idgraph.secret import default_secret_path, load_secret


def test_secret_file_is_created_once_private_and_reused(tmp_path):
    url = f"sqlite:///{tmp_path / 'graph.db'}"
    first = load_secret(url, None, environ={})
    path = tmp_path / "graph.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(url, None, environ={}).subkey("ids") == first.subkey("ids")
    assert first.subkey("ids") != first.subkey("erasure")


def test_concurrent_first_use_agrees_on_one_secret(tmp_path):
    url = f"sqlite:///{tmp_path / 'graph.db'}"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_secret(url, None, environ={}).subkey("x"), range(32)))
    assert len(keys) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["graph.secret"]


def test_environment_secret_wins_and_must_be_long(tmp_path):
    env = {"IDGRAPH_SECRET": "s" * 40}
    assert load_secret("bolt://x", str(tmp_path / "none"), environ=env).subkey("a")
    assert not (tmp_path / "none").exists()
    with pytest.raises(ConfigError, match="at least 32"):
        load_secret("bolt://x", None, environ={"IDGRAPH_SECRET": "short"})


def test_short_secret_file_is_refused(tmp_path):
    path = tmp_path / "s.secret"
    path.write_text("abc\n")
    with pytest.raises(ConfigError, match="shorter than 32"):
        load_secret("bolt://x", str(path), environ={})


def test_default_paths():
    assert default_secret_path("sqlite:///var/lib/idgraph/idgraph.db").as_posix() == (
        "var/lib/idgraph/idgraph.secret"
    )
    assert default_secret_path("neo4j://localhost:7687").as_posix() == "idgraph.secret"
    assert os.fspath(default_secret_path("sqlite:///:memory:")) == "idgraph.secret"
