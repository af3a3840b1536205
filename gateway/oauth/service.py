"""The OAuth service: vendor configurations, the authorization-code flow, connected accounts, fresh tokens.

- Vendors: `put_vendor`/`vendor`/`vendors`/`delete_vendor`; the client secret is sealed in the vault
  and never returned. Vendors from the environment (`load_env`) are read-only through the API.
- Connect: `start` stores a state (only its SHA-256), the sealed PKCE verifier, the user and a browser
  binding, valid for 10 minutes, and returns the vendor's authorization URL plus the binding cookie.
  `complete` (the callback) takes the state exactly once, checks its age, the binding (the cookie set by
  `start`, or the same authenticated user), the issuer (RFC 9207), exchanges the code with the verifier
  and seals the tokens.
- Accounts: `accounts`, `disconnect` (revocation at the vendor when it has an endpoint, then deleted),
  `refresh_now`, and `token_for_profile` for the egress resolver (see `gateway.oauth.tokens`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from gateway.oauth.client import OAuthError, TokenClient
from gateway.oauth.pkce import challenge_s256, digest, new_state, new_verifier, same_digest
from gateway.oauth.tokens import AccountTokens, Sealer
from gateway.oauth.vendors import EnvVendor, VendorConfig
from gateway.store import Store
from gateway.store.oauth import (
    ACCESS_TOKEN_SPEC,
    CLIENT_SECRET_SPEC,
    KEEP,
    REFRESH_TOKEN_SPEC,
    VERIFIER_SPEC,
    AccountRow,
    Keep,
    OAuthStore,
    VendorRow,
)
from vault import ENV_KEY, ENV_KEY_FILE, MasterKey, VaultError

log = logging.getLogger(__name__)

CALLBACK_PATH = "/oauth/callback"
BINDING_COOKIE_PREFIX = "gig_oauth_"
MAX_PENDING_PER_USER = 20


class OAuthUnavailable(RuntimeError):
    """No master key is configured: nothing OAuth can be sealed or opened."""


class UnknownVendor(LookupError):
    pass


class ReadOnlyVendor(RuntimeError):
    """The vendor comes from the environment; the API cannot change it."""


class CallbackError(Exception):
    """The callback is refused; `status`, `code` and a message fit for the user (no secret in it)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class OAuthSettings:
    public_url: str
    refresh_margin_s: float = 60.0
    state_ttl_s: float = 600.0
    http_timeout_s: float = 10.0

    @property
    def redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + CALLBACK_PATH

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def cookie_path(self) -> str:
        """The callback's path as the browser sees it (the public URL may carry a prefix)."""
        return urlsplit(self.redirect_uri).path


@dataclass(frozen=True, slots=True)
class ConnectStart:
    authorize_url: str
    redirect_uri: str
    expires_at: float
    cookie_name: str  # the browser binding: set it on the response that hands out authorize_url
    cookie_value: str = dataclasses.field(repr=False)


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What may be shown about a connected account: never a token."""

    vendor: str
    status: str
    scopes: tuple[str, ...]
    connected_at: float
    refreshed_at: float | None
    expires_at: float | None
    has_refresh_token: bool
    last_error: str

    @classmethod
    def of(cls, row: AccountRow, vendor: str) -> AccountInfo:
        return cls(vendor, row.status, tuple(row.scope.split()), row.created_at, row.refreshed_at, row.expires_at,
                   row.refresh_token is not None, row.last_error)


def binding_cookie_name(state: str) -> str:
    """One cookie per pending authorization, so two connections started at once do not clash."""
    return BINDING_COOKIE_PREFIX + digest(state)[:16]


def _error_code(value: str) -> str:
    return value if re.fullmatch(r"[a-z_]{1,64}", value) else "unknown"


class OAuthService:
    def __init__(self, store: Store, key: MasterKey | None, settings: OAuthSettings,
                 session: aiohttp.ClientSession | None = None) -> None:
        self._store = store
        self._db = OAuthStore(store.conn)
        self._key = key
        self.settings = settings
        self._session = session or aiohttp.ClientSession()
        self._owns_session = session is None
        self._client = TokenClient(self._session, timeout_s=settings.http_timeout_s)
        self._sealer = Sealer(key) if key is not None else None
        self.tokens = (AccountTokens(self._db, self._sealer, self._client, margin_s=settings.refresh_margin_s)
                       if self._sealer is not None else None)

    @property
    def available(self) -> bool:
        return self._sealer is not None

    def _require(self) -> Sealer:
        if self._sealer is None:
            raise OAuthUnavailable(f"no master key is configured: set {ENV_KEY} or {ENV_KEY_FILE} to use OAuth")
        return self._sealer

    async def close(self) -> None:
        if self.tokens is not None:
            await self.tokens.refreshes.drain(timeout=self.settings.http_timeout_s)
        if self._owns_session:
            await self._session.close()

    # ---- vendors ----------------------------------------------------------------------------------
    async def put_vendor(self, config: VendorConfig, client_secret: str | Keep | None = KEEP, *,
                         source: str = "api") -> tuple[VendorRow, bool]:
        """Create or replace a vendor; `client_secret` KEEP keeps the stored one, None makes it public."""
        sealer = self._require()
        existing = await self._db.vendors.get(config.name)
        if existing is not None and existing.source == "env" and source != "env":
            raise ReadOnlyVendor(f"vendor {config.name!r} is configured by the environment "
                                 f"(GIG_OAUTH_{config.name.upper().replace('-', '_')}_*); change it there")
        sealed: bytes | Keep | None = KEEP
        if isinstance(client_secret, str):
            sealed = sealer.seal(CLIENT_SECRET_SPEC, client_secret, server=config.name)
        elif client_secret is None:
            sealed = None
        return await self._db.vendors.upsert(
            name=config.name, authorize_url=config.authorize_url, token_url=config.token_url,
            revoke_url=config.revoke_url, issuer=config.issuer, client_id=config.client_id, client_secret=sealed,
            scopes=config.scopes, pkce=config.pkce, token_auth=config.token_auth, source=source,
        )

    async def load_env(self, vendors: list[EnvVendor]) -> None:
        """Make the environment's vendors current; an env vendor no longer in the environment becomes editable."""
        if vendors:
            self._require()
        names = {v.config.name for v in vendors}
        for vendor in vendors:
            await self.put_vendor(vendor.config, vendor.client_secret, source="env")
            log.info("oauth: vendor %s configured from the environment", vendor.config.name)
        for row in await self._db.vendors.list():
            if row.source == "env" and row.name not in names:
                await self._db.vendors.upsert(
                    name=row.name, authorize_url=row.authorize_url, token_url=row.token_url,
                    revoke_url=row.revoke_url, issuer=row.issuer, client_id=row.client_id, client_secret=KEEP,
                    scopes=row.scopes, pkce=row.pkce, token_auth=row.token_auth, source="api",
                )

    async def vendor(self, name: str) -> VendorRow | None:
        return await self._db.vendors.get(name)

    async def vendors(self) -> list[VendorRow]:
        return await self._db.vendors.list()

    async def delete_vendor(self, name: str) -> bool:
        """Delete a vendor with its connected accounts and pending authorizations (tokens are not revoked)."""
        row = await self._db.vendors.get(name)
        if row is None:
            return False
        if row.source == "env":
            raise ReadOnlyVendor(f"vendor {name!r} is configured by the environment; remove it there")
        return await self._db.vendors.delete(name)

    # ---- the authorization-code flow --------------------------------------------------------------
    async def start(self, user_id: int, vendor_name: str) -> ConnectStart:
        sealer = self._require()
        vendor = await self._db.vendors.get(vendor_name)
        if vendor is None:
            raise UnknownVendor(vendor_name)
        now = time.time()
        await self._db.states.purge_expired(now)
        await self._db.states.trim_user(user_id, MAX_PENDING_PER_USER - 1)
        state, verifier, binding = new_state(), new_verifier(), secrets.token_urlsafe(32)
        state_hash = digest(state)
        expires_at = now + self.settings.state_ttl_s
        await self._db.states.add(
            state_hash=state_hash, user_id=user_id, vendor_id=vendor.id,
            verifier=sealer.seal(VERIFIER_SPEC, verifier, user_id, vendor.id, state_hash),
            binding_hash=digest(binding), redirect_uri=self.settings.redirect_uri, expires_at=expires_at,
        )
        url = VendorConfig.of(vendor).authorization_url(
            redirect_uri=self.settings.redirect_uri, state=state,
            challenge=challenge_s256(verifier) if vendor.pkce else None,
        )
        return ConnectStart(url, self.settings.redirect_uri, expires_at, binding_cookie_name(state), binding)

    async def complete(self, params: Mapping[str, str], cookies: Mapping[str, str],
                       user_id: int | None) -> AccountInfo:
        """Finish a connection from the vendor's redirect; raises `CallbackError` with the reason."""
        sealer = self._require()
        state = params.get("state", "")
        if not state or len(state) > 512:
            raise CallbackError(400, "invalid_request", "the callback carries no state")
        row = await self._db.states.take(digest(state))  # single use: taken, whatever happens next
        if row is None:
            raise CallbackError(400, "invalid_state",
                                "unknown or already used authorization state: start the connection again")
        if row.expires_at <= time.time():
            raise CallbackError(400, "state_expired", "the authorization took too long: start the connection again")
        cookie = cookies.get(binding_cookie_name(state), "")
        same_user = user_id is not None and user_id == row.user_id
        if (user_id is not None and not same_user) or not (same_user or (cookie and same_digest(cookie,
                                                                                             row.binding_hash))):
            raise CallbackError(403, "state_not_bound",
                                "this browser did not start the connection: start it again from this browser")
        vendor = await self._db.vendors.by_id(row.vendor_id)
        if vendor is None:
            raise CallbackError(400, "invalid_state", "the vendor of this authorization was deleted")
        config = VendorConfig.of(vendor)
        if "error" in params:
            raise CallbackError(400, "authorization_denied",
                                f"{vendor.name} did not authorize the connection ({_error_code(params['error'])})")
        iss = params.get("iss")
        if iss is not None and not config.issuer_matches(iss):
            raise CallbackError(400, "issuer_mismatch",
                                f"the authorization response does not come from {vendor.name}'s issuer (RFC 9207)")
        code = params.get("code", "")
        if not code or len(code) > 4096:
            raise CallbackError(400, "invalid_request", "the callback carries no authorization code")
        try:
            verifier = sealer.open(VERIFIER_SPEC, row.verifier, row.user_id, row.vendor_id, row.state_hash)
            secret = sealer.client_secret(vendor)
        except VaultError as exc:
            log.error("oauth: a sealed secret of vendor %s does not open: %s", vendor.name, exc)
            raise CallbackError(500, "vault_error", "a stored secret could not be opened") from None
        try:
            tokens = await self._client.exchange_code(config, secret, code=code, redirect_uri=row.redirect_uri,
                                                      verifier=verifier if vendor.pkce else None)
        except OAuthError as exc:
            log.warning("oauth: code exchange with %s for user %d failed: %s", vendor.name, row.user_id, exc)
            raise CallbackError(502, "token_exchange_failed",
                                f"{vendor.name} refused the authorization: {exc}") from None
        existing = await self._db.accounts.get(row.user_id, vendor.id)
        sealed_access, sealed_refresh = sealer.account_tokens(tokens, None, row.user_id, vendor.id)
        now = time.time()
        account = await self._db.accounts.connect(
            user_id=row.user_id, vendor_id=vendor.id, access_token=sealed_access, refresh_token=sealed_refresh,
            scope=tokens.scope if tokens.scope is not None else " ".join(vendor.scopes), obtained_at=now,
            expires_at=now + tokens.expires_in if tokens.expires_in is not None else None,
        )
        log.info("oauth: user %d %s %s", row.user_id, "reconnected" if existing else "connected", vendor.name)
        return AccountInfo.of(account, vendor.name)

    # ---- accounts -----------------------------------------------------------------------------------
    async def accounts(self, user_id: int) -> list[AccountInfo]:
        return [AccountInfo.of(row, row.vendor) for row in await self._db.accounts.list_for(user_id)]

    async def account(self, user_id: int, vendor_name: str) -> AccountInfo | None:
        vendor = await self._db.vendors.get(vendor_name)
        row = await self._db.accounts.get(user_id, vendor.id) if vendor is not None else None
        return AccountInfo.of(row, vendor_name) if row is not None else None

    async def disconnect(self, user_id: int, vendor_name: str) -> bool | None:
        """Delete the account (its token stops being injected at once), then revoke its tokens at the vendor.

        None: no such account. Otherwise whether the vendor confirmed the revocation (False when it has
        no revocation endpoint or did not answer 200).
        """
        vendor = await self._db.vendors.get(vendor_name)
        row = await self._db.accounts.delete(user_id, vendor.id) if vendor is not None else None
        if vendor is None or row is None:
            return None
        log.info("oauth: user %d disconnected %s", user_id, vendor.name)
        if not vendor.revoke_url or self._sealer is None:
            return False
        config = VendorConfig.of(vendor)
        held = [("refresh_token", REFRESH_TOKEN_SPEC, row.refresh_token), ("access_token", ACCESS_TOKEN_SPEC,
                                                                            row.access_token)]
        try:
            secret = self._sealer.client_secret(vendor)
            tokens = [(hint, self._sealer.open(spec, sealed, user_id, vendor.id))
                      for hint, spec, sealed in held if sealed is not None]
        except VaultError as exc:
            log.error("oauth: cannot open the tokens of user %d for revocation: %s", user_id, exc)
            return False
        results = [await self._client.revoke(config, secret, token, hint) for hint, token in tokens]
        return bool(results) and all(results)

    async def refresh_now(self, user_id: int, vendor_name: str) -> AccountInfo | None:
        """Refresh on demand; the account afterwards (its status and last_error tell how it went)."""
        if self.tokens is None:
            self._require()
        assert self.tokens is not None
        await self.tokens.access_token(user_id, vendor_name, force=True)
        return await self.account(user_id, vendor_name)

    async def token_for_profile(self, profile_id: int, vendor_name: str) -> str | None:
        """The egress resolver's question: the access token of the profile owner's account, or None."""
        if self.tokens is None:
            return None
        profile = await self._store.profiles.by_id(profile_id)
        if profile is None:
            return None
        token = await self.tokens.access_token(profile.user_id, vendor_name)
        return token if token else None
