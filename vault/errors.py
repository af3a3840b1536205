"""Errors of the vault.

Every message is one sentence an operator can act on. No message, repr or attribute ever holds a
plaintext, a data key or a master key: only key ids (which identify a key without revealing it) and
row identifiers.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Self


class VaultError(Exception):
    """Base class of everything the vault raises on purpose."""

    def at(self, where: str) -> Self:
        """Return a copy whose message starts with ``where`` (e.g. the row being rotated).

        A copy rather than a new instance so that subclass attributes (such as the key ids of
        ``WrongKey``) survive.
        """
        located = copy.copy(self)
        located.args = (f"{where}: {self}",)
        return located


class MasterKeyError(VaultError):
    """The master key is missing, unreadable or malformed."""


class WrongKey(VaultError):
    """The ciphertext names a key id that none of the configured keys has."""

    sealed_with: str
    configured: tuple[str, ...]

    @classmethod
    def for_ids(
        cls,
        sealed_with: str,
        configured: Sequence[str],
        *,
        roles: tuple[str, str] = ("current", "previous"),
    ) -> WrongKey:
        if len(configured) == 1:
            have = f"the configured key is {configured[0]}"
        else:
            have = f"the configured keys are {configured[0]} ({roles[0]}) and {configured[1]} ({roles[1]})"
        error = cls(f"the vault was sealed with key {sealed_with}, {have}")
        error.sealed_with = sealed_with
        error.configured = tuple(configured)
        return error


class TamperedOrMisplaced(VaultError):
    """A GCM tag did not verify: the ciphertext was altered, truncated or moved to another row."""


class UnsupportedFormat(VaultError):
    """The value is not a vault ciphertext, or uses a format version this code does not know."""


class RotationError(VaultError):
    """Rotation could not run (bad arguments, busy connection, a row that vanished mid-way)."""
