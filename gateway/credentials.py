"""Vault-sealed credentials: the write-only store of users' secrets, and the seam for the egress proxy.

- `open_vault` runs at start, before anything writes to the database: it loads the master key (if
  configured), checks it against every sealed row and the canary, and seals the canary at first use.
  A wrong key, or a missing key while credentials exist, stops the start with one sentence.
- `Credentials.set_secret` seals a value bound to its row (user, server, credential id); there is no
  way back out through the API or CLI. `secret_for` opens one, for the egress resolver only.
- Placeholders: a sandbox never sees a real secret, only a random placeholder per (sandbox,
  credential) that the proxy swaps for `secret_for_sandbox(...)` on the way out.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from gateway.store import CANARY_SPEC, CREDENTIALS_SPEC, VAULT_TABLES, CredentialRow, InstalledServer, Store
from vault import (
    ENV_KEY,
    ENV_KEY_FILE,
    MasterKey,
    MasterKeyError,
    SQLiteRowSource,
    VaultError,
    load_master_key,
    open_,
    seal,
    verify_key_against_rows,
)

CANARY_PLAINTEXT = b"gigmcp vault canary v1"
PLACEHOLDER_PREFIX = "gigph_"
MAX_SECRET_BYTES = 32 * 1024
MAX_SECRET_CHARS = 8 * 1024  # at most 4 UTF-8 bytes each: always within MAX_SECRET_BYTES

SandboxKey = tuple[str, Hashable]  # (server, profile id): the supervisor's key of one sandbox


def declared_credentials(server: InstalledServer) -> frozenset[str]:
    """The credential ids the server's manifest declares: the only ones a user may store for it."""
    entries = json.loads(server.manifest_json).get("credentials")
    if not isinstance(entries, list):
        return frozenset()
    return frozenset(str(e["id"]) for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str))


class VaultStartError(RuntimeError):
    """The vault cannot be opened with the configured key; the start stops and nothing was written."""


class VaultUnavailable(RuntimeError):
    """No master key is configured, so no secret can be stored or read."""


def master_key_from_env(environ: Mapping[str, str] | None = None) -> MasterKey | None:
    """The configured master key, None if neither variable is set; a malformed key is an error."""
    env = os.environ if environ is None else environ
    if not env.get(ENV_KEY) and not env.get(ENV_KEY_FILE):
        return None
    try:
        return load_master_key(env)
    except MasterKeyError as exc:
        raise VaultStartError(str(exc)) from None


async def open_vault(store: Store, key: MasterKey | None) -> MasterKey | None:
    """Check `key` against the stored secrets before the gateway writes anything; seal the canary.

    Reads only, unless the check passes and no canary exists yet (then one row is inserted).
    """
    stored = await store.secrets.count()
    if key is None:
        if stored:
            raise VaultStartError(
                f"{stored} credentials are stored but no master key is configured: set {ENV_KEY} or {ENV_KEY_FILE} "
                "to the key they were sealed with; nothing was changed"
            )
        return None
    try:
        await verify_key_against_rows(key, SQLiteRowSource(store.conn, VAULT_TABLES), sample=32)
    except VaultError as exc:
        raise VaultStartError(f"vault: {exc}; the start was refused and nothing was changed") from None
    if await store.secrets.canary() is None:
        await store.secrets.set_canary(seal(key, CANARY_PLAINTEXT, CANARY_SPEC.associated_data()))
    return key


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """What may be shown about a stored credential: never its value."""

    server: str
    credential_id: str
    created_at: float
    updated_at: float

    @classmethod
    def of(cls, row: CredentialRow) -> CredentialInfo:
        return cls(row.server, row.credential_id, row.created_at, row.updated_at)


class Credentials:
    def __init__(self, store: Store, key: MasterKey | None) -> None:
        self._store = store
        self._key = key
        self._placeholders: dict[tuple[SandboxKey, str], str] = {}

    @property
    def available(self) -> bool:
        return self._key is not None

    def _require_key(self) -> MasterKey:
        if self._key is None:
            raise VaultUnavailable(
                f"no master key is configured: set {ENV_KEY} or {ENV_KEY_FILE} and restart to store credentials"
            )
        return self._key

    async def set_secret(self, user_id: int, server: str, credential_id: str, value: str) -> CredentialInfo:
        """Seal and store (or replace) a secret. Write-only: nothing returns it except `secret_for`."""
        key = self._require_key()
        data = value.encode()
        if not data or len(data) > MAX_SECRET_BYTES:
            raise ValueError(f"a secret must be 1 to {MAX_SECRET_BYTES} bytes")
        sealed = seal(key, data, CREDENTIALS_SPEC.associated_data(user_id, server, credential_id))
        return CredentialInfo.of(await self._store.secrets.put(user_id, server, credential_id, sealed))

    async def delete(self, user_id: int, server: str, credential_id: str) -> bool:
        return await self._store.secrets.delete(user_id, server, credential_id)

    async def list(self, user_id: int, server: str | None = None) -> list[CredentialInfo]:
        return [CredentialInfo.of(r) for r in await self._store.secrets.list_for(user_id, server)]

    async def secret_for(self, user_id: int, server: str, credential_id: str) -> str | None:
        """The real secret, for the egress proxy's resolver only; None if none is stored."""
        key = self._require_key()
        sealed = await self._store.secrets.sealed(user_id, server, credential_id)
        if sealed is None:
            return None
        return open_(key, sealed, CREDENTIALS_SPEC.associated_data(user_id, server, credential_id)).decode()

    async def secret_for_sandbox(self, server: str, profile_id: int, credential_id: str) -> str | None:
        """The secret a sandbox's placeholder stands for: the credential of the profile's owner.

        Asked per request, so an update or a deletion applies to the next request.
        """
        profile = await self._store.profiles.by_id(profile_id)
        if profile is None:
            return None
        return await self.secret_for(profile.user_id, server, credential_id)

    def placeholder_for(self, sandbox: SandboxKey, credential_id: str) -> str:
        """The random stand-in a sandbox gets for a credential; stable for the sandbox's life."""
        slot = (sandbox, credential_id)
        value = self._placeholders.get(slot)
        if value is None:
            value = self._placeholders[slot] = PLACEHOLDER_PREFIX + secrets.token_urlsafe(24)
        return value

    def forget_sandbox(self, sandbox: SandboxKey) -> None:
        """Drop a stopped sandbox's placeholders, so its next life gets fresh ones."""
        for slot in [s for s in self._placeholders if s[0] == sandbox]:
            del self._placeholders[slot]
