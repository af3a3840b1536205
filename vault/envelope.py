"""AES-256-GCM envelope encryption of secrets, bound to the row that holds them.

Every secret gets a fresh random 256-bit data key (DEK). The secret is encrypted under the DEK, and
the DEK is encrypted ("wrapped") under the master key (KEK). Rotating the KEK therefore only rewraps
48 bytes per secret and never touches the secret's own ciphertext.

Both GCM operations authenticate the row's associated data (kind, owner, server, credential id), so a
ciphertext copied into another row no longer opens. The wrap also authenticates the header (magic,
format version, KEK id); the data layer authenticates magic and version but not the KEK id, which is
what lets ``rewrap`` change the key without re-encrypting the secret.

Format version 1 (all offsets in bytes; see docs/vault.md)::

    0   4   magic  b"GIGV"
    4   1   format version (1)
    5   8   KEK id (vault.keys.MasterKey.id_bytes)
    13  12  wrap nonce
    25  48  wrapped DEK (32-byte DEK encrypted under the KEK + 16-byte tag)
    73  12  data nonce
    85  n+16 secret encrypted under the DEK + 16-byte tag
"""

from __future__ import annotations

import os
import struct
from collections.abc import Buffer
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import MasterKeyError, TamperedOrMisplaced, UnsupportedFormat, WrongKey
from vault.keys import KEY_BYTES, KEY_ID_BYTES, MasterKey

MAGIC: Final = b"GIGV"
FORMAT_VERSION: Final = 1
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
WRAPPED_DEK_BYTES: Final = KEY_BYTES + TAG_BYTES

_VERSION_AT: Final = len(MAGIC)
_KEY_ID_AT: Final = _VERSION_AT + 1
_WRAP_NONCE_AT: Final = _KEY_ID_AT + KEY_ID_BYTES
_WRAPPED_DEK_AT: Final = _WRAP_NONCE_AT + NONCE_BYTES
_DATA_NONCE_AT: Final = _WRAPPED_DEK_AT + WRAPPED_DEK_BYTES
_CIPHERTEXT_AT: Final = _DATA_NONCE_AT + NONCE_BYTES
HEADER_BYTES: Final = _CIPHERTEXT_AT
OVERHEAD_BYTES: Final = HEADER_BYTES + TAG_BYTES
"""Size of a sealed empty secret; a sealed secret of n bytes is n + OVERHEAD_BYTES long."""

# Distinguishes vault associated data from any other length-prefixed encoding that might one day be
# authenticated under the same keys; the trailing digit versions the encoding itself.
_AD_LABEL: Final = b"gigmcp-vault-ad-1"
_LENGTH: Final = struct.Struct(">I")

_TAMPERED: Final = (
    "the ciphertext does not authenticate for this row: it was altered, truncated, or copied from another row"
)


@dataclass(frozen=True, slots=True)
class AssociatedData:
    """What a ciphertext is bound to: the kind of secret and the row it belongs to.

    ``kind`` names the purpose (e.g. ``"credential"``, ``"oauth_refresh_token"``), so that even two
    secrets of one row cannot be swapped with each other. Empty strings are valid values (a global
    secret has no owner).
    """

    kind: str
    owner: str
    server: str
    credential_id: str

    def __post_init__(self) -> None:
        for name, value in zip(("kind", "owner", "server", "credential_id"), self.parts, strict=True):
            if not isinstance(value, str):
                raise TypeError(f"AssociatedData.{name} must be a str, not {type(value).__name__}")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"AssociatedData.{name} is not valid Unicode text") from None

    @property
    def parts(self) -> tuple[str, str, str, str]:
        return (self.kind, self.owner, self.server, self.credential_id)

    def encode(self) -> bytes:
        """Canonical bytes: a label, then each field as a 4-byte big-endian length and its UTF-8.

        Length prefixes make the encoding injective: ("a|b", "c") and ("a", "b|c") differ, which a
        separator join would not guarantee.
        """
        out = bytearray(_AD_LABEL)
        for part in self.parts:
            raw = part.encode("utf-8")
            out += _LENGTH.pack(len(raw))
            out += raw
        return bytes(out)


class Keyring:
    """The current master key and, during a migration window, the previous one.

    Opening picks the key by the id in the ciphertext header; sealing always uses ``current``.
    """

    __slots__ = ("current", "previous")

    current: MasterKey
    previous: MasterKey | None

    def __init__(self, current: MasterKey, previous: MasterKey | None = None) -> None:
        if previous is not None and previous.id_bytes == current.id_bytes:
            raise MasterKeyError("the previous master key is the same as the current one")
        self.current = current
        self.previous = previous

    @property
    def keys(self) -> tuple[MasterKey, ...]:
        return (self.current,) if self.previous is None else (self.current, self.previous)

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key.key_id for key in self.keys)

    def find(self, key_id: bytes) -> MasterKey | None:
        for key in self.keys:
            if key.id_bytes == key_id:
                return key
        return None

    def __repr__(self) -> str:
        previous = "None" if self.previous is None else self.previous.key_id
        return f"Keyring(current={self.current.key_id}, previous={previous})"


type KeySource = MasterKey | Keyring


def _as_keyring(keys: KeySource) -> Keyring:
    return keys if isinstance(keys, Keyring) else Keyring(keys)


def _as_bytes(blob: object) -> bytes:
    if isinstance(blob, bytes):
        return blob
    if isinstance(blob, Buffer) and not isinstance(blob, str):
        return bytes(memoryview(blob))
    raise UnsupportedFormat(f"a vault ciphertext is bytes, not {type(blob).__name__}")


def _check_header(blob: bytes) -> None:
    """Reject what is not a version-1 vault ciphertext before any key is involved."""
    if blob[:_VERSION_AT] != MAGIC:
        raise UnsupportedFormat("the value is not a vault ciphertext (unknown magic bytes)")
    if len(blob) <= _VERSION_AT:
        raise TamperedOrMisplaced(_TAMPERED)
    if blob[_VERSION_AT] != FORMAT_VERSION:
        raise UnsupportedFormat(
            f"vault ciphertext format version {blob[_VERSION_AT]} is not supported "
            f"(this gigmcp reads version {FORMAT_VERSION})"
        )
    if len(blob) < OVERHEAD_BYTES:
        raise TamperedOrMisplaced(_TAMPERED)


def key_id_of(blob: Buffer) -> str:
    """The id (hex) of the master key a ciphertext is wrapped under, without decrypting anything."""
    data = _as_bytes(blob)
    _check_header(data)
    return data[_KEY_ID_AT:_WRAP_NONCE_AT].hex()


def _select_key(keys: KeySource, data: bytes) -> MasterKey:
    keyring = _as_keyring(keys)
    key_id = data[_KEY_ID_AT:_WRAP_NONCE_AT]
    key = keyring.find(key_id)
    if key is None:
        raise WrongKey.for_ids(key_id.hex(), keyring.key_ids)
    return key


def _unwrap_dek(key: MasterKey, data: bytes, ad: bytes) -> bytes:
    try:
        return key.aead.decrypt(
            data[_WRAP_NONCE_AT:_WRAPPED_DEK_AT],
            data[_WRAPPED_DEK_AT:_DATA_NONCE_AT],
            data[:_WRAP_NONCE_AT] + ad,
        )
    except InvalidTag:
        raise TamperedOrMisplaced(_TAMPERED) from None


def _decrypt_data(dek: bytes, data: bytes, ad: bytes) -> bytes:
    try:
        return AESGCM(dek).decrypt(
            data[_DATA_NONCE_AT:_CIPHERTEXT_AT],
            data[_CIPHERTEXT_AT:],
            data[:_KEY_ID_AT] + ad,
        )
    except InvalidTag:
        raise TamperedOrMisplaced(_TAMPERED) from None


def _wrap(key: MasterKey, dek: bytes, ad: bytes) -> bytes:
    """Header through wrapped DEK (bytes 0..73) for ``dek`` under ``key``."""
    head = MAGIC + bytes((FORMAT_VERSION,)) + key.id_bytes
    wrap_nonce = os.urandom(NONCE_BYTES)
    return head + wrap_nonce + key.aead.encrypt(wrap_nonce, dek, head + ad)


def seal(kek: KeySource, plaintext: Buffer, ad: AssociatedData) -> bytes:
    """Encrypt ``plaintext`` for the row described by ``ad`` under the (current) master key."""
    if not isinstance(plaintext, Buffer):
        # Text must be encoded by the caller: the vault will not guess an encoding for a secret.
        raise TypeError(f"seal() takes bytes, not {type(plaintext).__name__}")
    key = kek.current if isinstance(kek, Keyring) else kek
    ad_bytes = ad.encode()
    dek = AESGCM.generate_key(bit_length=256)
    data_nonce = os.urandom(NONCE_BYTES)
    version_head = MAGIC + bytes((FORMAT_VERSION,))
    return (
        _wrap(key, dek, ad_bytes)
        + data_nonce
        + AESGCM(dek).encrypt(data_nonce, bytes(memoryview(plaintext)), version_head + ad_bytes)
    )


def open_(kek: KeySource, blob: Buffer, ad: AssociatedData) -> bytes:
    """Decrypt a ciphertext made by ``seal`` for the same row (same ``ad``).

    Raises ``UnsupportedFormat``, ``WrongKey`` or ``TamperedOrMisplaced``; never returns unverified
    bytes.
    """
    data = _as_bytes(blob)
    _check_header(data)
    key = _select_key(kek, data)
    ad_bytes = ad.encode()
    return _decrypt_data(_unwrap_dek(key, data, ad_bytes), data, ad_bytes)


def rewrap(old_kek: KeySource, new_kek: MasterKey, blob: Buffer, ad: AssociatedData) -> bytes:
    """Re-encrypt only the data key of ``blob`` under ``new_kek``; the secret's ciphertext is kept.

    The whole ciphertext is authenticated first (DEK and data), so a damaged row makes rotation
    stop instead of being carried forward under the new key.
    """
    data = _as_bytes(blob)
    _check_header(data)
    key = _select_key(old_kek, data)
    ad_bytes = ad.encode()
    dek = _unwrap_dek(key, data, ad_bytes)
    _decrypt_data(dek, data, ad_bytes)
    return _wrap(new_kek, dek, ad_bytes) + data[_DATA_NONCE_AT:]
