"""Master keys: loading from the environment or a file, key ids, and keeping keys out of messages."""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
from pathlib import Path

import pytest

from vault.errors import MasterKeyError
from vault.keys import (
    ENV_KEY,
    ENV_KEY_FILE,
    KEY_BYTES,
    MasterKey,
    generate_key_hex,
    load_master_key,
    write_new_key_file,
)

KEY_HEX = "00112233445566778899aabbccddeeff" * 2


def test_key_id_is_domain_separated_sha256_prefix() -> None:
    key = MasterKey.from_hex(KEY_HEX)
    expected = hashlib.sha256(b"gigmcp-kek-id" + bytes.fromhex(KEY_HEX)).digest()[:8]
    assert key.id_bytes == expected
    assert key.key_id == expected.hex()
    assert len(key.key_id) == 16


def test_from_hex_accepts_upper_case_and_surrounding_whitespace() -> None:
    assert MasterKey.from_hex("  " + KEY_HEX.upper() + "\n") == MasterKey.from_hex(KEY_HEX)


def test_repr_and_str_show_only_the_key_id() -> None:
    key = MasterKey.from_hex(KEY_HEX)
    for text in (repr(key), str(key), f"{key}"):
        assert KEY_HEX not in text.lower()
        assert key.key_id in text


def test_keys_cannot_be_pickled() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(MasterKey.from_hex(KEY_HEX))


def test_equality_is_by_key_material() -> None:
    assert MasterKey.from_hex(KEY_HEX) == MasterKey.from_hex(KEY_HEX)
    assert MasterKey.from_hex(KEY_HEX) != MasterKey.generate()
    assert len({MasterKey.from_hex(KEY_HEX), MasterKey.from_hex(KEY_HEX)}) == 1


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (KEY_HEX[:-1], "not 63 characters"),
        (KEY_HEX + "00", "not 66 characters"),
        ("zz" + KEY_HEX[2:], "only hexadecimal characters"),
        ("   \n", "is empty"),
    ],
)
def test_malformed_env_key_is_one_sentence_naming_the_variable(value: str, fragment: str) -> None:
    with pytest.raises(MasterKeyError) as caught:
        load_master_key({ENV_KEY: value})
    message = str(caught.value)
    assert fragment in message
    assert message.startswith(ENV_KEY)
    assert ". " not in message
    # The value never appears, not even a readable part of it.
    if value.strip():
        assert value.strip()[2:18] not in message


def test_load_from_env() -> None:
    assert load_master_key({ENV_KEY: KEY_HEX}) == MasterKey.from_hex(KEY_HEX)


def test_load_from_file_with_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(KEY_HEX + "\n")
    assert load_master_key({ENV_KEY_FILE: str(path)}) == MasterKey.from_hex(KEY_HEX)


def test_empty_variables_count_as_unset(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(KEY_HEX)
    assert load_master_key({ENV_KEY: "", ENV_KEY_FILE: str(path)}) == MasterKey.from_hex(KEY_HEX)


def test_both_variables_set_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(KEY_HEX)
    with pytest.raises(MasterKeyError, match=f"both {ENV_KEY} and {ENV_KEY_FILE}") as caught:
        load_master_key({ENV_KEY: KEY_HEX, ENV_KEY_FILE: str(path)})
    assert KEY_HEX not in str(caught.value)


def test_missing_key_names_both_variables() -> None:
    with pytest.raises(MasterKeyError) as caught:
        load_master_key({})
    assert ENV_KEY in str(caught.value)
    assert ENV_KEY_FILE in str(caught.value)


def test_default_environ_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_KEY_FILE, raising=False)
    monkeypatch.setenv(ENV_KEY, KEY_HEX)
    assert load_master_key() == MasterKey.from_hex(KEY_HEX)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "is empty"),
        (KEY_HEX[:40].encode() + b"\n", "not 40 characters"),
        (b"\xff" * 64, "only hexadecimal"),
        (b"0" * 5000, "too large"),
        (KEY_HEX.encode() + b"\n" + KEY_HEX.encode(), "not 129 characters"),
    ],
)
def test_malformed_key_file(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(content)
    with pytest.raises(MasterKeyError, match=fragment) as caught:
        load_master_key({ENV_KEY_FILE: str(path)})
    assert ENV_KEY_FILE in str(caught.value)
    assert KEY_HEX[:16] not in str(caught.value)


def test_key_file_missing_or_directory(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match="does not exist") as caught:
        load_master_key({ENV_KEY_FILE: str(tmp_path / "nope")})
    assert ENV_KEY_FILE in str(caught.value)
    with pytest.raises(MasterKeyError, match="is a directory"):
        load_master_key({ENV_KEY_FILE: str(tmp_path)})


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of mode")
def test_unreadable_key_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(KEY_HEX)
    path.chmod(0)
    with pytest.raises(MasterKeyError, match="cannot read"):
        load_master_key({ENV_KEY_FILE: str(path)})


def test_wrong_length_bytes_refused() -> None:
    with pytest.raises(MasterKeyError, match="exactly 32 bytes"):
        MasterKey(b"\x00" * 31)


def test_generate_key_hex() -> None:
    first, second = generate_key_hex(), generate_key_hex()
    assert len(first) == KEY_BYTES * 2
    assert int(first, 16) >= 0
    assert first != second
    MasterKey.from_hex(first)


def test_write_new_key_file_is_private_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "new.key"
    key = write_new_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert MasterKey.from_file(path) == key
    before = path.read_bytes()
    with pytest.raises(MasterKeyError, match="already exists"):
        write_new_key_file(path)
    assert path.read_bytes() == before
