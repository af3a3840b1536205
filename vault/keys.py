"""Master keys (key-encryption keys): loading, key ids, generation.

The master key is 32 random bytes given as 64 hex characters, either directly in ``GIG_MASTER_KEY``
or in a file named by ``GIG_MASTER_KEY_FILE`` (the Docker/Kubernetes secrets convention). It is never
written to the database; the database only ever sees its *key id*, a domain-separated hash prefix
that identifies the key without revealing anything usable about it.

Python cannot promise that key bytes are wiped from memory (``bytes`` are immutable and the
``cryptography`` backend keeps its own copy), so this module does not pretend to; it only makes sure
keys never reach a message, a repr or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import MasterKeyError

KEY_BYTES: Final = 32
KEY_ID_BYTES: Final = 8
ENV_KEY: Final = "GIG_MASTER_KEY"
ENV_KEY_FILE: Final = "GIG_MASTER_KEY_FILE"

_KEY_ID_LABEL: Final = b"gigmcp-kek-id"
# A key file holds 64 hex characters and perhaps a newline; anything much larger is the wrong file,
# and reading it whole could be a way to make the gateway read /dev/zero forever.
_MAX_KEY_FILE_BYTES: Final = 4096
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")


class MasterKey:
    """A 256-bit key-encryption key. Its repr and str show only the key id."""

    __slots__ = ("_aead", "_key", "id_bytes")

    _key: bytes
    _aead: AESGCM
    id_bytes: bytes

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise MasterKeyError(f"a master key must be exactly {KEY_BYTES} bytes")
        self._key = key
        self._aead = AESGCM(key)
        self.id_bytes = hashlib.sha256(_KEY_ID_LABEL + key).digest()[:KEY_ID_BYTES]

    @property
    def key_id(self) -> str:
        """16 hex characters naming this key; safe to print, store and compare."""
        return self.id_bytes.hex()

    @property
    def aead(self) -> AESGCM:
        """The AES-GCM instance under this key (used to wrap and unwrap data keys)."""
        return self._aead

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_hex(cls, text: str, *, source: str = ENV_KEY) -> MasterKey:
        """Parse 64 hex characters (surrounding whitespace ignored); ``source`` names the origin in errors."""
        value = text.strip()
        if not value:
            raise MasterKeyError(f"{source} is empty; it must hold {KEY_BYTES * 2} hexadecimal characters")
        if len(value) != KEY_BYTES * 2:
            # The length of a wrong value is harmless to report and is usually the whole diagnosis
            # (a 32-character key, a base64 key, a pasted newline in the middle).
            raise MasterKeyError(
                f"{source} must be {KEY_BYTES * 2} hexadecimal characters ({KEY_BYTES} bytes), "
                f"not {len(value)} characters"
            )
        if not _HEX_DIGITS.issuperset(value):
            raise MasterKeyError(f"{source} must contain only hexadecimal characters (0-9, a-f)")
        return cls(bytes.fromhex(value))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, source: str = ENV_KEY_FILE) -> MasterKey:
        """Read a key file holding 64 hex characters (a trailing newline is fine)."""
        try:
            with Path(path).open("rb") as handle:
                raw = handle.read(_MAX_KEY_FILE_BYTES + 1)
        except FileNotFoundError:
            raise MasterKeyError(f"{source} names {named(path)}, which does not exist") from None
        except IsADirectoryError:
            raise MasterKeyError(f"{source} names {named(path)}, which is a directory") from None
        except PermissionError:
            raise MasterKeyError(f"{source} names {named(path)}, which this process cannot read") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise MasterKeyError(f"{source} names {named(path)}, which cannot be read ({reason})") from None
        if len(raw) > _MAX_KEY_FILE_BYTES:
            raise MasterKeyError(
                f"{source} names {named(path)}, which is too large to be a key file "
                f"(expected {KEY_BYTES * 2} hexadecimal characters)"
            )
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise MasterKeyError(
                f"{source} names {named(path)}, which must contain only hexadecimal characters"
            ) from None
        return cls.from_hex(text, source=f"the file named by {source}")

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MasterKey):
            return NotImplemented
        return hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self.id_bytes)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would copy the raw key into whatever the pickle lands in (a cache, a queue, a
        # crash dump); no part of gigmcp needs it, so refuse loudly.
        raise TypeError("MasterKey cannot be pickled")


def named(path: str | os.PathLike[str]) -> str:
    """A path quoted for a message (paths are not secret; their contents are)."""
    return repr(os.fspath(path))


def load_master_key(environ: Mapping[str, str] | None = None) -> MasterKey:
    """Load the master key from ``GIG_MASTER_KEY`` or ``GIG_MASTER_KEY_FILE`` (exactly one of them).

    An empty variable counts as unset, because compose files often pass ``VAR=`` through.
    """
    env = os.environ if environ is None else environ
    direct = env.get(ENV_KEY, "")
    file_name = env.get(ENV_KEY_FILE, "")
    if direct and file_name:
        raise MasterKeyError(f"both {ENV_KEY} and {ENV_KEY_FILE} are set; set only one of them")
    if file_name:
        return MasterKey.from_file(file_name)
    if direct:
        return MasterKey.from_hex(direct, source=ENV_KEY)
    raise MasterKeyError(
        f"no master key: set {ENV_KEY} to {KEY_BYTES * 2} hexadecimal characters "
        f"or {ENV_KEY_FILE} to a file holding them"
    )


def generate_key_hex() -> str:
    """A fresh random master key as 64 lowercase hex characters."""
    return secrets.token_hex(KEY_BYTES)


def write_new_key_file(path: str | os.PathLike[str]) -> MasterKey:
    """Create ``path`` (mode 0600, must not exist yet) holding a fresh key; return that key.

    ``O_EXCL`` so that a typo can never overwrite the key that currently protects the database.
    """
    key_hex = generate_key_hex()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise MasterKeyError(f"{named(path)} already exists; refusing to overwrite a key file") from None
    except OSError as exc:
        raise MasterKeyError(f"cannot create key file {named(path)} ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key_hex + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return MasterKey.from_hex(key_hex)
