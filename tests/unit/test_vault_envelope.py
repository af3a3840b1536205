"""Envelope encryption: round trips, row binding, tamper detection, key selection and rewrapping."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.envelope import (
    FORMAT_VERSION,
    HEADER_BYTES,
    MAGIC,
    OVERHEAD_BYTES,
    AssociatedData,
    Keyring,
    key_id_of,
    open_,
    rewrap,
    seal,
)
from vault.errors import MasterKeyError, TamperedOrMisplaced, UnsupportedFormat, VaultError, WrongKey
from vault.keys import MasterKey

OLD = MasterKey.from_hex("11" * 32)
NEW = MasterKey.from_hex("22" * 32)
STRANGER = MasterKey.from_hex("33" * 32)
AD = AssociatedData(kind="credential", owner="alice", server="gitlab", credential_id="token")
SECRET = b"glpat-0123456789abcdefghij"

# Regions of a version-1 ciphertext and the error a flipped bit in each must produce.
KEY_ID_AT, KEY_ID_END = 5, 13
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, database=None)


def key_material(*keys: MasterKey) -> list[str]:
    return [key._key.hex() for key in keys]


def test_round_trip() -> None:
    assert open_(OLD, seal(OLD, SECRET, AD), AD) == SECRET


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 4096, 1 << 20])
def test_round_trip_sizes_and_overhead(size: int) -> None:
    plaintext = bytes(range(256)) * (size // 256) + bytes(size % 256)
    blob = seal(OLD, plaintext, AD)
    assert len(blob) == size + OVERHEAD_BYTES
    assert open_(OLD, blob, AD) == plaintext


def test_bytes_like_inputs_are_accepted() -> None:
    blob = seal(OLD, bytearray(SECRET), AD)
    assert open_(OLD, memoryview(blob), AD) == SECRET
    assert open_(OLD, bytearray(blob), AD) == SECRET


def test_layout() -> None:
    blob = seal(OLD, SECRET, AD)
    assert blob[:4] == MAGIC == b"GIGV"
    assert blob[4] == FORMAT_VERSION == 1
    assert blob[KEY_ID_AT:KEY_ID_END] == OLD.id_bytes
    assert key_id_of(blob) == OLD.key_id
    assert HEADER_BYTES == 85
    assert OVERHEAD_BYTES == 101
    assert SECRET not in blob


def test_sealing_twice_gives_unrelated_ciphertexts() -> None:
    first, second = seal(OLD, SECRET, AD), seal(OLD, SECRET, AD)
    assert first[:KEY_ID_END] == second[:KEY_ID_END]
    # Fresh nonces and a fresh DEK: nothing after the key id is shared.
    assert first[KEY_ID_END:] != second[KEY_ID_END:]
    assert first[-len(SECRET) - 16 :] != second[-len(SECRET) - 16 :]


@pytest.mark.parametrize("field", ["kind", "owner", "server", "credential_id"])
def test_each_associated_data_field_is_bound(field: str) -> None:
    blob = seal(OLD, SECRET, AD)
    other = dataclasses.replace(AD, **{field: "x"})
    with pytest.raises(TamperedOrMisplaced):
        open_(OLD, blob, other)


def test_ciphertext_copied_to_another_row_fails() -> None:
    alice = AD
    mallory = AssociatedData(kind="credential", owner="mallory", server="gitlab", credential_id="token")
    row_of_alice = seal(OLD, b"alice's token", alice)
    # Mallory copies Alice's ciphertext into her own row, hoping the gateway injects it for her.
    with pytest.raises(TamperedOrMisplaced, match="copied from another row"):
        open_(OLD, row_of_alice, mallory)


def test_separator_ambiguity_does_not_collide() -> None:
    first = AssociatedData("credential", "a|b", "c", "")
    second = AssociatedData("credential", "a", "b|c", "")
    assert first.encode() != second.encode()
    with pytest.raises(TamperedOrMisplaced):
        open_(OLD, seal(OLD, SECRET, first), second)


def test_every_flipped_bit_fails() -> None:
    blob = seal(OLD, b"8 bytes!", AD)
    keys = Keyring(NEW, OLD)
    for index in range(len(blob)):
        for bit in range(8):
            damaged = bytearray(blob)
            damaged[index] ^= 1 << bit
            if index < KEY_ID_AT:
                expected: type[VaultError] = UnsupportedFormat  # magic or version
            elif index < KEY_ID_END:
                expected = WrongKey  # names a key nobody has
            else:
                expected = TamperedOrMisplaced
            with pytest.raises(expected):
                open_(keys, bytes(damaged), AD)


def test_truncation_and_extension_fail() -> None:
    blob = seal(OLD, SECRET, AD)
    for length in range(len(blob)):
        with pytest.raises(UnsupportedFormat if length < 4 else TamperedOrMisplaced):
            open_(OLD, blob[:length], AD)
    with pytest.raises(TamperedOrMisplaced):
        open_(OLD, blob + b"\x00", AD)


def test_unsupported_formats() -> None:
    blob = seal(OLD, SECRET, AD)
    with pytest.raises(UnsupportedFormat, match="format version 2 is not supported"):
        open_(OLD, blob[:4] + b"\x02" + blob[5:], AD)
    with pytest.raises(UnsupportedFormat, match="not a vault ciphertext"):
        open_(OLD, b"plaintext-from-an-old-schema", AD)
    with pytest.raises(UnsupportedFormat, match="bytes, not str"):
        open_(OLD, "GIGV...", AD)  # type: ignore[arg-type]


def test_wrong_key_names_both_ids_and_no_key_material() -> None:
    blob = seal(OLD, SECRET, AD)
    with pytest.raises(WrongKey) as caught:
        open_(NEW, blob, AD)
    message = str(caught.value)
    assert message == f"the vault was sealed with key {OLD.key_id}, the configured key is {NEW.key_id}"
    assert caught.value.sealed_with == OLD.key_id
    assert caught.value.configured == (NEW.key_id,)
    for text in (message, repr(caught.value)):
        for material in key_material(OLD, NEW):
            assert material not in text
            assert material[:16] not in text
        assert SECRET.decode() not in text


def test_wrong_key_with_a_keyring_lists_both_configured_keys() -> None:
    with pytest.raises(WrongKey) as caught:
        open_(Keyring(NEW, OLD), seal(STRANGER, SECRET, AD), AD)
    assert str(caught.value) == (
        f"the vault was sealed with key {STRANGER.key_id}, "
        f"the configured keys are {NEW.key_id} (current) and {OLD.key_id} (previous)"
    )


def test_errors_never_carry_plaintext_or_keys() -> None:
    blob = seal(OLD, SECRET, AD)
    damaged = blob[:-1] + bytes([blob[-1] ^ 1])
    failures: list[VaultError] = []
    attempts: list[Callable[[], object]] = [
        lambda: open_(OLD, damaged, AD),
        lambda: open_(STRANGER, blob, AD),
        lambda: open_(OLD, blob, AssociatedData("credential", "bob", "gitlab", "token")),
        lambda: rewrap(OLD, NEW, damaged, AD),
    ]
    for attempt in attempts:
        with pytest.raises(VaultError) as caught:
            attempt()
        failures.append(caught.value)
    for error in failures:
        text = f"{error} {error!r} {error.args} {vars(error) if hasattr(error, '__dict__') else ''}"
        assert SECRET.decode() not in text
        assert SECRET.hex() not in text
        for material in key_material(OLD, NEW, STRANGER):
            assert material not in text


def test_keyring_picks_the_key_named_in_the_header() -> None:
    keys = Keyring(NEW, OLD)
    assert open_(keys, seal(OLD, b"old", AD), AD) == b"old"
    assert open_(keys, seal(NEW, b"new", AD), AD) == b"new"
    # Sealing through a keyring always uses the current key.
    assert key_id_of(seal(keys, SECRET, AD)) == NEW.key_id
    assert repr(keys) == f"Keyring(current={NEW.key_id}, previous={OLD.key_id})"
    assert keys.key_ids == (NEW.key_id, OLD.key_id)


def test_keyring_refuses_the_same_key_twice() -> None:
    with pytest.raises(MasterKeyError, match="same as the current"):
        Keyring(OLD, MasterKey.from_hex("11" * 32))


def test_rewrap_changes_only_the_wrapped_key() -> None:
    blob = seal(OLD, SECRET, AD)
    moved = rewrap(OLD, NEW, blob, AD)
    assert key_id_of(moved) == NEW.key_id
    assert len(moved) == len(blob)
    # Data nonce and secret ciphertext (from offset 73) are byte-for-byte the same.
    assert moved[73:] == blob[73:]
    assert moved[13:73] != blob[13:73]
    assert open_(NEW, moved, AD) == SECRET
    with pytest.raises(WrongKey):
        open_(OLD, moved, AD)


def test_rewrap_refuses_what_it_cannot_vouch_for() -> None:
    blob = seal(OLD, SECRET, AD)
    with pytest.raises(WrongKey):
        rewrap(STRANGER, NEW, blob, AD)
    with pytest.raises(TamperedOrMisplaced):
        rewrap(OLD, NEW, blob, AssociatedData("credential", "bob", "gitlab", "token"))
    # Damage in the secret's own ciphertext is caught before it is carried under the new key.
    with pytest.raises(TamperedOrMisplaced):
        rewrap(OLD, NEW, blob[:-1] + bytes([blob[-1] ^ 0x80]), AD)


def test_associated_data_validation() -> None:
    with pytest.raises(TypeError, match="owner must be a str"):
        AssociatedData("credential", 7, "gitlab", "token")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not valid Unicode"):
        AssociatedData("credential", "\ud800", "gitlab", "token")


def test_seal_refuses_text() -> None:
    with pytest.raises(TypeError, match="takes bytes"):
        seal(OLD, "secret", AD)  # type: ignore[arg-type]


ad_strategy = st.builds(AssociatedData, st.text(), st.text(), st.text(), st.text())


@PROPERTY_SETTINGS
@given(plaintext=st.binary(max_size=2048), ad=ad_strategy)
def test_property_seal_open_round_trip(plaintext: bytes, ad: AssociatedData) -> None:
    blob = seal(OLD, plaintext, ad)
    assert open_(OLD, blob, ad) == plaintext
    assert open_(Keyring(NEW, OLD), rewrap(OLD, NEW, blob, ad), ad) == plaintext


@PROPERTY_SETTINGS
@given(plaintext=st.binary(max_size=256), ad=ad_strategy, other=ad_strategy)
def test_property_other_associated_data_never_opens(
    plaintext: bytes, ad: AssociatedData, other: AssociatedData
) -> None:
    blob = seal(OLD, plaintext, ad)
    if other == ad:
        assert open_(OLD, blob, other) == plaintext
    else:
        with pytest.raises(TamperedOrMisplaced):
            open_(OLD, blob, other)


# Short strings over a tiny alphabet that includes the usual separators, so that near-collisions
# (shifted boundaries, empty fields) are generated often rather than by luck.
tricky_text = st.text(alphabet="ab|:\x00\x01,", max_size=6)
tricky_ad = st.builds(AssociatedData, tricky_text, tricky_text, tricky_text, tricky_text)


@settings(max_examples=1000, deadline=None, database=None)
@given(first=tricky_ad, second=tricky_ad)
def test_property_associated_data_encoding_is_injective(
    first: AssociatedData, second: AssociatedData
) -> None:
    assert (first.encode() == second.encode()) == (first == second)


@PROPERTY_SETTINGS
@given(ad=ad_strategy)
def test_property_encoding_parses_back(ad: AssociatedData) -> None:
    # Injectivity by construction: the encoding can be decoded back into exactly the same fields.
    raw = ad.encode()
    assert raw.startswith(b"gigmcp-vault-ad-1")
    at, parts = len(b"gigmcp-vault-ad-1"), []
    for _ in range(4):
        length = int.from_bytes(raw[at : at + 4], "big")
        parts.append(raw[at + 4 : at + 4 + length].decode())
        at += 4 + length
    assert at == len(raw)
    assert tuple(parts) == ad.parts
