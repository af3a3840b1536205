"""OAuth connected accounts at rest: vendor clients, pending authorizations and account tokens (migration 4).

Every secret here is a vault ciphertext (the client secret, the PKCE verifier, the access and refresh
tokens), sealed by `gateway.oauth` with the associated data of the `TableSpec`s below, which
`gigmcp vault rotate` uses too. States are stored by the SHA-256 of their value and taken with one
`DELETE ... RETURNING`, so each is used at most once even when two callbacks race. A refresh is
persisted with one `UPDATE ... WHERE generation = ?`: the new access and refresh tokens land together,
and a refresh that lost a race (or whose account was deleted meanwhile) changes nothing.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any, Final

import aiosqlite

from vault import TableSpec

CLIENT_SECRET_SPEC = TableSpec(
    table="oauth_vendors", id_column="id", blob_column="client_secret", kind="oauth_client_secret",
    server_column="name",
)
VERIFIER_SPEC = TableSpec(
    table="oauth_states", id_column="id", blob_column="verifier", kind="oauth_pkce_verifier",
    owner_column="user_id", server_column="vendor_id", credential_id_column="state_hash",
)
ACCESS_TOKEN_SPEC = TableSpec(
    table="oauth_accounts", id_column="id", blob_column="access_token", kind="oauth_access_token",
    owner_column="user_id", server_column="vendor_id",
)
REFRESH_TOKEN_SPEC = TableSpec(
    table="oauth_accounts", id_column="id", blob_column="refresh_token", kind="oauth_refresh_token",
    owner_column="user_id", server_column="vendor_id",
)
OAUTH_VAULT_TABLES: tuple[TableSpec, ...] = (CLIENT_SECRET_SPEC, VERIFIER_SPEC, ACCESS_TOKEN_SPEC, REFRESH_TOKEN_SPEC)



class Keep(enum.Enum):
    """`OAuthVendors.upsert(client_secret=KEEP)`: leave the stored secret as it is."""

    STORED = "stored"


KEEP: Final = Keep.STORED


@dataclass(frozen=True, slots=True)
class VendorRow:
    id: int
    name: str
    authorize_url: str
    token_url: str
    revoke_url: str
    issuer: str
    client_id: str
    client_secret: bytes | None  # sealed
    scopes: tuple[str, ...]
    pkce: bool
    token_auth: str
    source: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class StateRow:
    id: int
    state_hash: str
    user_id: int
    vendor_id: int
    verifier: bytes  # sealed
    binding_hash: str
    redirect_uri: str
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: int
    user_id: int
    vendor_id: int
    vendor: str
    access_token: bytes  # sealed
    refresh_token: bytes | None  # sealed
    scope: str
    obtained_at: float
    expires_at: float | None
    generation: int
    status: str
    last_error: str
    created_at: float
    refreshed_at: float | None


_VENDOR_COLUMNS = ("id, name, authorize_url, token_url, revoke_url, issuer, client_id, client_secret, scopes, pkce,"
                   " token_auth, source, created_at, updated_at")
_STATE_COLUMNS = "id, state_hash, user_id, vendor_id, verifier, binding_hash, redirect_uri, created_at, expires_at"
_ACCOUNT_SELECT = (
    "SELECT a.id, a.user_id, a.vendor_id, v.name, a.access_token, a.refresh_token, a.scope, a.obtained_at,"
    " a.expires_at, a.generation, a.status, a.last_error, a.created_at, a.refreshed_at"
    " FROM oauth_accounts a JOIN oauth_vendors v ON v.id = a.vendor_id"
)


def _opt_float(value: Any) -> float | None:
    return float(value) if value is not None else None


def _vendor(row: Any) -> VendorRow:
    return VendorRow(
        int(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]), str(row[5]), str(row[6]),
        bytes(row[7]) if row[7] is not None else None, tuple(str(row[8]).split()), bool(row[9]), str(row[10]),
        str(row[11]), float(row[12]), float(row[13]),
    )


def _state(row: Any) -> StateRow:
    return StateRow(int(row[0]), str(row[1]), int(row[2]), int(row[3]), bytes(row[4]), str(row[5]), str(row[6]),
                    float(row[7]), float(row[8]))


def _account(row: Any) -> AccountRow:
    return AccountRow(
        int(row[0]), int(row[1]), int(row[2]), str(row[3]), bytes(row[4]),
        bytes(row[5]) if row[5] is not None else None, str(row[6]), float(row[7]), _opt_float(row[8]),
        int(row[9]), str(row[10]), str(row[11]), float(row[12]), _opt_float(row[13]),
    )


class OAuthVendors:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def upsert(self, *, name: str, authorize_url: str, token_url: str, revoke_url: str, issuer: str,
                     client_id: str, client_secret: bytes | Keep | None, scopes: tuple[str, ...], pkce: bool,
                     token_auth: str, source: str) -> tuple[VendorRow, bool]:
        """Create or replace a vendor; (row, created). `client_secret=KEEP` keeps the stored secret."""
        now = time.time()
        existing = await self.get(name)
        values = (authorize_url, token_url, revoke_url, issuer, client_id, " ".join(scopes), int(pkce), token_auth,
                  source)
        if existing is None:
            secret = None if client_secret is KEEP else client_secret
            await self._conn.execute(
                "INSERT INTO oauth_vendors(name, authorize_url, token_url, revoke_url, issuer, client_id, scopes, pkce,"
                " token_auth, source, client_secret, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?, ?)",
                (name, *values, secret, now, now),
            )
        elif client_secret is KEEP:
            await self._conn.execute(
                "UPDATE oauth_vendors SET authorize_url = ?, token_url = ?, revoke_url = ?, issuer = ?, client_id = ?,"
                " scopes = ?, pkce = ?, token_auth = ?, source = ?, updated_at = ? WHERE id = ?",
                (*values, now, existing.id),
            )
        else:
            await self._conn.execute(
                "UPDATE oauth_vendors SET authorize_url = ?, token_url = ?, revoke_url = ?, issuer = ?, client_id = ?,"
                " scopes = ?, pkce = ?, token_auth = ?, source = ?, client_secret = ?, updated_at = ? WHERE id = ?",
                (*values, client_secret, now, existing.id),
            )
        row = await self.get(name)
        if row is None:  # deleted by a concurrent request between the write and this read
            raise LookupError(f"vendor {name!r} was deleted while it was being saved")
        return row, existing is None

    async def get(self, name: str) -> VendorRow | None:
        async with self._conn.execute(f"SELECT {_VENDOR_COLUMNS} FROM oauth_vendors WHERE name = ?",  # noqa: S608
                                      (name,)) as cur:
            row = await cur.fetchone()
        return _vendor(row) if row else None

    async def by_id(self, vendor_id: int) -> VendorRow | None:
        async with self._conn.execute(f"SELECT {_VENDOR_COLUMNS} FROM oauth_vendors WHERE id = ?",  # noqa: S608
                                      (vendor_id,)) as cur:
            row = await cur.fetchone()
        return _vendor(row) if row else None

    async def list(self) -> list[VendorRow]:
        async with self._conn.execute(f"SELECT {_VENDOR_COLUMNS} FROM oauth_vendors ORDER BY name") as cur:  # noqa: S608
            rows = await cur.fetchall()
        return [_vendor(r) for r in rows]

    async def delete(self, name: str) -> bool:
        """Delete a vendor; its accounts and pending states go with it (foreign keys cascade)."""
        cur = await self._conn.execute("DELETE FROM oauth_vendors WHERE name = ?", (name,))
        return cur.rowcount == 1


class OAuthStates:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def add(self, *, state_hash: str, user_id: int, vendor_id: int, verifier: bytes, binding_hash: str,
                  redirect_uri: str, expires_at: float) -> None:
        await self._conn.execute(
            "INSERT INTO oauth_states(state_hash, user_id, vendor_id, verifier, binding_hash, redirect_uri, created_at,"
            " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (state_hash, user_id, vendor_id, verifier, binding_hash, redirect_uri, time.time(), expires_at),
        )

    async def take(self, state_hash: str) -> StateRow | None:
        """Remove and return a state: whoever takes it first is the only one who ever gets it."""
        async with self._conn.execute(
            f"DELETE FROM oauth_states WHERE state_hash = ? RETURNING {_STATE_COLUMNS}", (state_hash,)  # noqa: S608
        ) as cur:
            row = await cur.fetchone()
        return _state(row) if row else None

    async def trim_user(self, user_id: int, keep: int) -> None:
        """Keep only the user's `keep` most recent pending authorizations."""
        await self._conn.execute(
            "DELETE FROM oauth_states WHERE user_id = ? AND id NOT IN"
            " (SELECT id FROM oauth_states WHERE user_id = ? ORDER BY id DESC LIMIT ?)",
            (user_id, user_id, keep),
        )

    async def purge_expired(self, now: float) -> int:
        cur = await self._conn.execute("DELETE FROM oauth_states WHERE expires_at <= ?", (now,))
        return cur.rowcount


class OAuthAccounts:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def connect(self, *, user_id: int, vendor_id: int, access_token: bytes, refresh_token: bytes | None,
                      scope: str, obtained_at: float, expires_at: float | None) -> AccountRow:
        """Store a freshly authorized account, replacing an earlier connection of the same vendor."""
        await self._conn.execute(
            "INSERT INTO oauth_accounts(user_id, vendor_id, access_token, refresh_token, scope, obtained_at,"
            " expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(user_id, vendor_id) DO UPDATE SET"
            " access_token = excluded.access_token, refresh_token = excluded.refresh_token, scope = excluded.scope,"
            " obtained_at = excluded.obtained_at, expires_at = excluded.expires_at, generation = generation + 1,"
            " status = 'connected', last_error = '', created_at = excluded.created_at, refreshed_at = NULL",
            (user_id, vendor_id, access_token, refresh_token, scope, obtained_at, expires_at, obtained_at),
        )
        row = await self.get(user_id, vendor_id)
        assert row is not None
        return row

    async def get(self, user_id: int, vendor_id: int) -> AccountRow | None:
        async with self._conn.execute(f"{_ACCOUNT_SELECT} WHERE a.user_id = ? AND a.vendor_id = ?",
                                      (user_id, vendor_id)) as cur:
            row = await cur.fetchone()
        return _account(row) if row else None

    async def list_for(self, user_id: int) -> list[AccountRow]:
        async with self._conn.execute(f"{_ACCOUNT_SELECT} WHERE a.user_id = ? ORDER BY v.name", (user_id,)) as cur:
            rows = await cur.fetchall()
        return [_account(r) for r in rows]

    async def store_refresh(self, account_id: int, generation: int, *, access_token: bytes,
                            refresh_token: bytes | None, scope: str, obtained_at: float,
                            expires_at: float | None) -> bool:
        """Persist a refresh atomically, only if the account is still at `generation`; True if it was."""
        cur = await self._conn.execute(
            "UPDATE oauth_accounts SET access_token = ?, refresh_token = ?, scope = ?, obtained_at = ?,"
            " expires_at = ?, generation = generation + 1, status = 'connected', last_error = '', refreshed_at = ?"
            " WHERE id = ? AND generation = ?",
            (access_token, refresh_token, scope, obtained_at, expires_at, obtained_at, account_id, generation),
        )
        return cur.rowcount == 1

    async def set_status(self, account_id: int, generation: int, status: str, last_error: str) -> None:
        await self._conn.execute(
            "UPDATE oauth_accounts SET status = ?, last_error = ? WHERE id = ? AND generation = ?",
            (status, last_error, account_id, generation),
        )

    async def delete(self, user_id: int, vendor_id: int) -> AccountRow | None:
        """Remove an account and return what it held (for revocation at the vendor), None if there was none."""
        async with self._conn.execute(
            "DELETE FROM oauth_accounts WHERE user_id = ? AND vendor_id = ? RETURNING id, user_id, vendor_id, '',"
            " access_token, refresh_token, scope, obtained_at, expires_at, generation, status, last_error, created_at,"
            " refreshed_at",
            (user_id, vendor_id),
        ) as cur:
            row = await cur.fetchone()
        return _account(row) if row else None


class OAuthStore:
    """The three repositories over one connection (`gateway.oauth` builds it from `Store.conn`)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.vendors = OAuthVendors(conn)
        self.states = OAuthStates(conn)
        self.accounts = OAuthAccounts(conn)
