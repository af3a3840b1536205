"""The login itself: start (state, nonce, PKCE verifier kept in the store), callback, user upsert, logout.

A pending login lives in the store, not in process memory or a cookie signed with a per-process key,
so a gateway restart in the middle of a login, or a callback that lands on another replica, still
completes. The browser that started the login is bound to it by a random cookie whose digest is
stored with the state: a callback URL carried to another browser (login CSRF) finds no binding.
A state is taken exactly once; an authorization code is remembered until it would have expired, so
a replayed callback is refused even before the provider refuses the code.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authlib.common.security import generate_token

from gateway.config import OidcConfig
from gateway.oidc.client import OidcClient, OidcError
from gateway.oidc.roles import role_for, roles_from_claims
from gateway.store import Store, User
from gateway.store.websessions import Identities, LoginFlows, PendingLogin

log = logging.getLogger(__name__)

FLOW_TTL_S = 600.0
CODE_MEMORY_S = 900.0
FLOW_COOKIE = "gig_login"
NAME_RE = re.compile(r"[^a-z0-9-]+")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def safe_return_to(value: str | None) -> str:
    """Only a local path: never `//host` or `https://…`, which would make the login an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def name_candidates(claims: Mapping[str, Any]) -> list[str]:
    """User names to try for a new user: from preferred_username, the email's local part, or the name."""
    raw = ""
    for key in ("preferred_username", "email", "name", "nickname"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            raw = value.split("@", 1)[0] if key == "email" else value
            break
    base = NAME_RE.sub("-", raw.lower()).strip("-")
    if not base or not base[0].isalpha():
        base = f"u-{base}" if base else "user"
    base = base[:24].rstrip("-")
    return [base] + [f"{base}-{i}" for i in range(2, 50)] + [f"{base}-{secrets.token_hex(3)}"]


@dataclass(frozen=True, slots=True)
class LoginStart:
    url: str
    binding: str  # the browser binding: set it as FLOW_COOKIE on the redirect


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User
    return_to: str
    created: bool


class OidcService:
    def __init__(self, config: OidcConfig, store: Store, client: OidcClient | None = None) -> None:
        self.config = config
        self.client = client or OidcClient(config)
        self._store = store
        self._identities = Identities(store.conn)
        self._flows = LoginFlows(store.conn)

    @property
    def identities(self) -> Identities:
        return self._identities

    @property
    def cookie_path(self) -> str:
        return urlsplit(self.config.redirect_url).path or "/"

    async def close(self) -> None:
        await self.client.close()

    async def start(self, return_to: str | None) -> LoginStart:
        state, nonce, verifier, binding = generate_token(43), generate_token(43), generate_token(64), generate_token(43)
        url = await self.client.authorization_url(state=state, nonce=nonce, verifier=verifier)
        await self._flows.add(_digest(state), PendingLogin(
            binding_hash=_digest(binding), nonce=nonce, verifier=verifier,
            return_to=safe_return_to(return_to), expires_at=time.time() + FLOW_TTL_S,
        ))
        return LoginStart(url, binding)

    async def complete(self, params: Mapping[str, str], binding: str | None) -> LoginResult:
        """Finish a login from the callback's query; `OidcError` says why it is refused."""
        state = params.get("state", "")
        if not state or len(state) > 200:
            raise OidcError("bad_state", "the login has no valid state: start again")
        pending = await self._flows.take(_digest(state))
        if pending is None:
            raise OidcError("bad_state", "this login is unknown or was already used: start again")
        if pending.expires_at < time.time():
            raise OidcError("expired", "this login took too long: start again")
        if not binding or not secrets.compare_digest(_digest(binding), pending.binding_hash):
            raise OidcError("bad_binding", "this login was started in another browser: start again")
        if params.get("error"):
            raise OidcError("idp_error", f"the identity provider refused the login ({params['error'][:60]})")
        meta = await self.client.metadata()
        # RFC 9207: when the provider names itself in the response, it must be the one we asked.
        if "iss" in params and params["iss"].rstrip("/") != meta.issuer.rstrip("/"):
            raise OidcError("bad_issuer", "the login answer comes from another identity provider")
        code = params.get("code", "")
        if not code or len(code) > 2048:
            raise OidcError("no_code", "the identity provider sent no authorization code")
        if not await self._flows.mark_code_used(_digest(code), time.time() + CODE_MEMORY_S):
            raise OidcError("code_replayed", "this authorization code was already used")
        tokens = await self.client.exchange(code, pending.verifier)
        claims = await self.client.verify_id_token(tokens["id_token"], pending.nonce)
        info = await self.client.userinfo(str(tokens.get("access_token", "")), str(claims["sub"]))
        merged = {**info, **claims}  # the signed ID token wins over userinfo where both speak
        user, created = await self._upsert(str(claims["iss"]), str(claims["sub"]), merged)
        log.info("login: user %s (%s) via %s", user.name, user.role, claims["iss"])
        return LoginResult(user, pending.return_to, created)

    async def _upsert(self, issuer: str, subject: str, claims: Mapping[str, Any]) -> tuple[User, bool]:
        roles = roles_from_claims(claims, self.config.roles_claim)
        role = role_for(roles, self.config.admin_role)
        email = str(claims.get("email") or "")[:320]
        display = str(claims.get("name") or claims.get("preferred_username") or "")[:200]
        existing = await self._identities.get(issuer, subject)
        if existing is None:
            user = await self._identities.link_new_user(issuer, subject, name_candidates(claims), role,
                                                        email=email, display_name=display, roles=roles)
            return user, True
        await self._identities.refresh(issuer, subject, role, email=email, display_name=display, roles=roles)
        current = await self._store.users.by_id(existing.user_id)
        if current is None:  # deleted while this login ran
            raise OidcError("user_gone", "the account was deleted: ask an admin")
        return current, False
