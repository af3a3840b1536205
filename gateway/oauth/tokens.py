"""Fresh access tokens of connected accounts: read from the vault, refreshed before they expire.

`AccountTokens.access_token(user, vendor)` is what the egress proxy's resolver asks, per request. A
token is refreshed when less than `min(margin, lifetime / 2)` of its life is left (margin 60 s, so a
vendor's two-hour GitLab token is renewed a minute early and a test IdP's 3 s token halfway), or on
demand. Refreshes of one account are coalesced (`Coalescer`): twenty requests that find the token
stale cause one token request, and all twenty get the new token. The refreshed access token and the
rotated refresh token are persisted together in one conditional update before anyone uses them.

A refresh the vendor refuses (`invalid_grant`: revoked, expired, reused) marks the account
`reconnect_required` and yields None, which the proxy answers as 503 `credential_unavailable`. A
vendor that cannot be reached keeps the current token while it is still valid.
"""

from __future__ import annotations

import logging
import time

from gateway.oauth.client import OAuthError, TokenClient, TokenSet
from gateway.oauth.coalesce import Coalescer
from gateway.oauth.vendors import VendorConfig
from gateway.store.expiry import clock_went_back
from gateway.store.oauth import (
    ACCESS_TOKEN_SPEC,
    CLIENT_SECRET_SPEC,
    REFRESH_TOKEN_SPEC,
    AccountRow,
    OAuthStore,
    VendorRow,
)
from vault import MasterKey, TableSpec, VaultError, open_, seal

log = logging.getLogger(__name__)

CONNECTED = "connected"
RECONNECT_REQUIRED = "reconnect_required"


class Sealer:
    """Seals and opens the OAuth secrets of one row, with the associated data of the row's `TableSpec`."""

    def __init__(self, key: MasterKey) -> None:
        self._key = key

    def seal(self, spec: TableSpec, value: str, owner: object = None, server: object = None,
             credential_id: object = None) -> bytes:
        return seal(self._key, value.encode(), spec.associated_data(owner, server, credential_id))

    def open(self, spec: TableSpec, sealed: bytes, owner: object = None, server: object = None,
             credential_id: object = None) -> str:
        return open_(self._key, sealed, spec.associated_data(owner, server, credential_id)).decode()

    def client_secret(self, vendor: VendorRow) -> str | None:
        if vendor.client_secret is None:
            return None
        return self.open(CLIENT_SECRET_SPEC, vendor.client_secret, server=vendor.name)

    def account_tokens(self, tokens: TokenSet, account: AccountRow | None, user_id: int,
                       vendor_id: int) -> tuple[bytes, bytes | None]:
        """The sealed access token and refresh token to store; a refresh without a new one keeps the old."""
        access = self.seal(ACCESS_TOKEN_SPEC, tokens.access_token, user_id, vendor_id)
        if tokens.refresh_token is not None:
            return access, self.seal(REFRESH_TOKEN_SPEC, tokens.refresh_token, user_id, vendor_id)
        return access, account.refresh_token if account is not None else None


def needs_refresh(account: AccountRow, now: float, margin_s: float) -> bool:
    if account.expires_at is None:
        return False  # the vendor gave no lifetime: refreshed on demand only
    if clock_went_back(now, account.obtained_at):
        # The clock was set back since the token came: how much of its life is left is unknown here
        # (the vendor's clock decides), so get a fresh one rather than use it past its real expiry.
        return True
    lifetime = max(0.0, account.expires_at - account.obtained_at)
    return account.expires_at - now <= min(margin_s, lifetime / 2)


def expired(account: AccountRow, now: float) -> bool:
    return account.expires_at is not None and account.expires_at <= now


class AccountTokens:
    def __init__(self, db: OAuthStore, sealer: Sealer, client: TokenClient, *, margin_s: float = 60.0) -> None:
        self._db = db
        self._sealer = sealer
        self._client = client
        self._margin_s = margin_s
        self.refreshes: Coalescer[tuple[int, int], str | None] = Coalescer()
        self.refreshed = 0  # refreshes the vendor granted and that were persisted

    async def access_token(self, user_id: int, vendor_name: str, *, force: bool = False) -> str | None:
        """The account's current access token, refreshed first if needed (or if `force`); None if unusable."""
        vendor = await self._db.vendors.get(vendor_name)
        if vendor is None:
            return None
        account = await self._db.accounts.get(user_id, vendor.id)
        if account is None or account.status != CONNECTED:
            return None
        if not force and not needs_refresh(account, time.time(), self._margin_s):
            return self._open_access(account)
        generation = account.generation
        return await self.refreshes.run((user_id, vendor.id),
                                        lambda: self._refresh(vendor, user_id, generation, force))

    def _open_access(self, account: AccountRow) -> str | None:
        try:
            return self._sealer.open(ACCESS_TOKEN_SPEC, account.access_token, account.user_id, account.vendor_id)
        except VaultError as exc:
            log.error("oauth: the access token of user %d for vendor %d does not open: %s", account.user_id,
                      account.vendor_id, exc)
            return None

    async def _refresh(self, vendor: VendorRow, user_id: int, seen_generation: int, force: bool) -> str | None:
        try:
            return await self._refresh_once(vendor, user_id, seen_generation, force)
        except VaultError as exc:
            log.error("oauth: a sealed secret of vendor %s does not open: %s", vendor.name, exc)
            return None

    async def _refresh_once(self, vendor: VendorRow, user_id: int, seen_generation: int,
                            force: bool) -> str | None:
        accounts = self._db.accounts
        account = await accounts.get(user_id, vendor.id)  # again: a refresh may have landed in between
        if account is None or account.status != CONNECTED:
            return None
        now = time.time()
        if account.generation != seen_generation or not (force or needs_refresh(account, now, self._margin_s)):
            return self._open_access(account)
        if account.refresh_token is None:
            if not expired(account, now):
                return self._open_access(account)
            await accounts.set_status(account.id, account.generation, RECONNECT_REQUIRED,
                                      "the access token expired and the vendor issued no refresh token")
            return None
        config = VendorConfig.of(vendor)
        secret = self._sealer.client_secret(vendor)
        refresh_token = self._sealer.open(REFRESH_TOKEN_SPEC, account.refresh_token, user_id, vendor.id)
        started = time.monotonic()
        try:
            tokens = await self._client.refresh(config, secret, refresh_token)
        except OAuthError as exc:
            return await self._failed(account, vendor, exc)
        sealed_access, sealed_refresh = self._sealer.account_tokens(tokens, account, user_id, vendor.id)
        obtained = time.time()
        stored = await accounts.store_refresh(
            account.id, account.generation, access_token=sealed_access, refresh_token=sealed_refresh,
            scope=tokens.scope if tokens.scope is not None else account.scope, obtained_at=obtained,
            expires_at=obtained + tokens.expires_in if tokens.expires_in is not None else None,
        )
        if not stored:
            # Disconnected or reconnected meanwhile: these tokens belong to no account any more.
            log.info("oauth: the %s account of user %d changed during a refresh; the new tokens are revoked",
                     vendor.name, user_id)
            await self._revoke_quietly(config, secret, tokens)
            current = await accounts.get(user_id, vendor.id)
            return self._open_access(current) if current is not None and current.status == CONNECTED else None
        self.refreshed += 1
        log.info("oauth: refreshed the %s token of user %d in %.3f s (generation %d%s)", vendor.name, user_id,
                 time.monotonic() - started, account.generation + 1,
                 ", refresh token rotated" if tokens.refresh_token is not None else "")
        return tokens.access_token

    async def _failed(self, account: AccountRow, vendor: VendorRow, exc: OAuthError) -> str | None:
        if exc.account_rejected:
            reason = f"{vendor.name} refused the refresh token ({exc}): connect the account again"
            await self._db.accounts.set_status(account.id, account.generation, RECONNECT_REQUIRED, reason)
            log.warning("oauth: %s account of user %d needs reconnecting: %s", vendor.name, account.user_id, exc)
            return None
        await self._db.accounts.set_status(account.id, account.generation, CONNECTED, f"refresh failed: {exc}")
        log.warning("oauth: refreshing the %s token of user %d failed: %s", vendor.name, account.user_id, exc)
        return None if expired(account, time.time()) else self._open_access(account)

    async def _revoke_quietly(self, config: VendorConfig, secret: str | None, tokens: TokenSet) -> None:
        if tokens.refresh_token is not None:
            await self._client.revoke(config, secret, tokens.refresh_token, "refresh_token")
        await self._client.revoke(config, secret, tokens.access_token, "access_token")
