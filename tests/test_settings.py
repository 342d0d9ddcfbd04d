"""Settings: TOML, environment, and refusal of unsafe combinations."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import load_settings
from security import ConfigError

pytestmark = pytest.mark.unit


def test_toml_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "greffier.toml"
    config.write_text(
        f'data_dir = "{tmp_path}/d"\n[search]\nk = 7\n[ingest]\nchunk_max_chars = 900\n')
    monkeypatch.setenv("GREFFIER_SEARCH__K", "5")
    settings = load_settings(config)
    assert settings.data_dir == (tmp_path / "d").resolve()
    assert settings.search.k == 5  # environment wins over the file
    assert settings.ingest.chunk_max_chars == 900
    assert settings.store.backend == "embedded"


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ({"backend": "server"}, "needs store.url"),
        ({"backend": "server", "url": "http://qdrant.example:6333", "api_key": "k"}, "https"),
        ({"backend": "server", "url": "https://qdrant.example:6333"}, "api_key"),
    ],
)
def test_unsafe_store_settings_are_refused(tmp_path: Path, store: dict[str, str],
                                           message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, data_dir=str(tmp_path), store=store)


def test_loopback_server_needs_no_tls(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=str(tmp_path),
                             store={"backend": "server", "url": "http://127.0.0.1:6333"})
    assert settings.store.url == "http://127.0.0.1:6333"


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="datadir"):
        load_settings(None, datadir=str(tmp_path))
