"""Configuration: defaults, validation, and one clear line naming the variable on a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config, parse_listen

BASE = {"GIG_BEARER_TOKEN": "a-long-enough-token-123", "GIG_DATA_DIR": "/tmp/gig-test-data"}


def test_defaults() -> None:
    config = load_config(BASE)
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 8080)
    assert config.db_path == Path("/tmp/gig-test-data/gigmcp.db")
    assert config.sandbox_uid != 0
    assert config.public_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"GIG_BEARER_TOKEN": ""}, "GIG_BEARER_TOKEN"),
        ({"GIG_BEARER_TOKEN": "short"}, "GIG_BEARER_TOKEN"),
        ({"GIG_LISTEN": "8080"}, "GIG_LISTEN"),
        ({"GIG_LISTEN": ":99999"}, "GIG_LISTEN"),
        ({"GIG_LISTEN": "nothost:80"}, "GIG_LISTEN"),
        ({"GIG_DATA_DIR": "relative/dir"}, "GIG_DATA_DIR"),
        ({"GIG_CALL_TIMEOUT": "soon"}, "GIG_CALL_TIMEOUT"),
        ({"GIG_MAX_SANDBOXES": "0"}, "GIG_MAX_SANDBOXES"),
        ({"GIG_PUBLIC_URL": "ftp://x"}, "GIG_PUBLIC_URL"),
        ({"GIG_DEBUG_ENDPOINTS": "maybe"}, "GIG_DEBUG_ENDPOINTS"),
        ({"GIG_SANDBOX_USER": "root"}, "GIG_SANDBOX_USER"),
        ({"GIG_SANDBOX_PYTHON": "/opt/python3"}, "GIG_SANDBOX_PYTHON"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({**BASE, **env})
    message = str(info.value)
    assert message.startswith(variable)
    assert "\n" not in message


def test_secret_from_file_and_conflict(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file-0123456789\n")
    env = {"GIG_DATA_DIR": "/tmp/x", "GIG_BEARER_TOKEN_FILE": str(token_file)}
    assert load_config(env).bearer_token == "from-a-file-0123456789"
    with pytest.raises(ConfigError, match="both set"):
        load_config({**env, "GIG_BEARER_TOKEN": "another-token-0123456"})
    with pytest.raises(ConfigError, match="GIG_BEARER_TOKEN_FILE: cannot read"):
        load_config({"GIG_DATA_DIR": "/tmp/x", "GIG_BEARER_TOKEN_FILE": str(tmp_path / "missing")})


def test_error_never_echoes_the_secret() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({**BASE, "GIG_BEARER_TOKEN": "tiny"})
    assert "tiny" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(":8080", ("0.0.0.0", 8080)), ("127.0.0.1:9", ("127.0.0.1", 9)), ("[::1]:8443", ("::1", 8443))],
)
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected
