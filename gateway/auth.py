"""Data-plane and API authentication: who a bearer token belongs to, and which profile it reaches.

Three kinds of credential:
- the bootstrap token (`GIG_BEARER_TOKEN`): the `admin` user, compared in constant time;
- personal tokens `gig_...`: reach every profile of their user, and the REST API;
- profile tokens `gig_...`: reach their one profile's MCP endpoint and nothing else.
Only the SHA-256 of a `gig_` token is stored; it is looked up by that hash on every request, so a
revocation, an expiry or a rotation takes effect on the very next request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

from gateway.store import Profile, Store, TokenRecord
from gateway.store.tokens import LAST_USED_RESOLUTION_S

TOKEN_PREFIX = "gig_"  # noqa: S105 - a public marker, not a secret
TOKEN_BYTES = 32
# "gig_" + unpadded base64url of 32 bytes; anything else is not one of ours and skips the database.
TOKEN_LENGTH = len(TOKEN_PREFIX) + 43
BOOTSTRAP_USER = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    user: str
    role: str
    token_id: str  # a stable, non-secret id for the credential (binds MCP sessions to it)
    user_id: int
    profile_id: int | None = None  # set for a profile token: it reaches only this profile

    @property
    def is_profile_token(self) -> bool:
        return self.profile_id is not None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly made token: `secret` is shown once and never stored."""

    secret: str
    record: TokenRecord


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).rstrip(b"=").decode()


def token_prefix(token: str) -> str:
    """The first characters of a token, enough for a person to tell their tokens apart."""
    return token[: len(TOKEN_PREFIX) + 6]


async def issue_token(
    store: Store, *, user_id: int, name: str, profile_id: int | None = None, expires_at: float | None = None
) -> IssuedToken:
    secret = new_token()
    record = await store.tokens.create(
        user_id=user_id,
        profile_id=profile_id,
        name=name,
        token_hash=token_hash(secret),
        prefix=token_prefix(secret),
        expires_at=expires_at,
    )
    return IssuedToken(secret, record)


async def rotate_profile_token(store: Store, profile: Profile, name: str = "profile") -> IssuedToken:
    """A new token for the profile; every earlier token of the profile stops working at once."""
    # New first, then revoke the others: an interruption leaves one token too many, never none.
    issued = await issue_token(store, user_id=profile.user_id, name=name, profile_id=profile.id)
    await store.tokens.revoke_profile_tokens(profile.id, except_id=issued.record.id)
    return issued


class Authenticator:
    def __init__(self, admin_token: str) -> None:
        self._admin_digest = hashlib.sha256(admin_token.encode()).digest()
        self._admin_token_id = token_id(admin_token)
        self._touched: dict[int, float] = {}

    def is_bootstrap(self, token: str) -> bool:
        # Compare digests: constant time and independent of the token's length.
        return hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self._admin_digest)

    async def authenticate(self, token: str | None, store: Store) -> Principal | None:
        if not token:
            return None
        if self.is_bootstrap(token):
            admin = await store.cache.get(("user", BOOTSTRAP_USER), lambda: store.users.by_name(BOOTSTRAP_USER))
            if admin is None:
                return None
            return Principal(user=admin.name, role="admin", token_id=self._admin_token_id, user_id=admin.id)
        if not token.startswith(TOKEN_PREFIX) or len(token) != TOKEN_LENGTH:
            return None
        now = time.time()
        digest = token_hash(token)
        owner = await store.cache.get(("token", digest), lambda: store.tokens.active_by_hash(digest, now))
        # A cached owner was active when read; expiry is a matter of time, not of writes: check it here.
        if owner is None or not owner.token.active(now):
            return None
        await self._touch(store, owner.token.id, now)
        return Principal(
            user=owner.user_name,
            role=owner.role,
            token_id=f"tok-{owner.token.id}",
            user_id=owner.token.user_id,
            profile_id=owner.token.profile_id,
        )

    async def _touch(self, store: Store, record_id: int, now: float) -> None:
        # The rate of touches is a duration (monotonic); the stamp written is a wall-clock time.
        tick = time.monotonic()
        last = self._touched.get(record_id)
        if last is not None and tick - last < LAST_USED_RESOLUTION_S:
            return
        self._touched[record_id] = tick
        if len(self._touched) > 10_000:  # bounded: forget the oldest half rather than grow forever
            for key in sorted(self._touched, key=self._touched.__getitem__)[:5_000]:
                del self._touched[key]
        await store.tokens.touch(record_id, now)


async def resolve_profile(store: Store, principal: Principal, slug: str | None) -> Profile | None:
    """The profile a request reaches: the named one or the default, if this credential may reach it.

    Someone else's profile is None exactly like a missing one, so its existence is not revealed.
    """
    if principal.profile_id is not None:
        pid = principal.profile_id
        profile = await store.cache.get(("profile", pid), lambda: store.profiles.by_id(pid))
        if profile is None or (slug is not None and slug != profile.slug):
            return None
        return profile
    if slug:
        profile = await store.cache.get(("profile-slug", slug), lambda: store.profiles.by_slug(slug))
    else:
        uid = principal.user_id
        profile = await store.cache.get(("profile-default", uid), lambda: store.profiles.default_for(uid))
    if profile is None or profile.user_id != principal.user_id:
        return None
    return profile


def unauthorized(public_url: str, message: str = "a valid bearer token is required") -> web.Response:
    metadata = f"{public_url}/.well-known/oauth-protected-resource/mcp"
    return web.json_response(
        {"error": {"code": "unauthorized", "message": message}},
        status=401,
        headers={"WWW-Authenticate": f'Bearer realm="gigmcp", resource_metadata="{metadata}"'},
    )
