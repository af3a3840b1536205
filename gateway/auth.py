"""Data-plane authentication: who a bearer token belongs to. Tokens are compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Principal:
    user: str
    role: str
    token_id: str  # a stable, non-secret id for the credential (binds MCP sessions to it)


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class Authenticator:
    def __init__(self, admin_token: str) -> None:
        self._admin_digest = hashlib.sha256(admin_token.encode()).digest()

    def authenticate(self, token: str | None) -> Principal | None:
        if not token:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        # Compare digests: constant time and independent of the token's length.
        if hmac.compare_digest(digest, self._admin_digest):
            return Principal(user="admin", role="admin", token_id=token_id(token))
        return None


def unauthorized(public_url: str, message: str = "a valid bearer token is required") -> web.Response:
    metadata = f"{public_url}/.well-known/oauth-protected-resource/mcp"
    return web.json_response(
        {"error": {"code": "unauthorized", "message": message}},
        status=401,
        headers={"WWW-Authenticate": f'Bearer realm="gigmcp", resource_metadata="{metadata}"'},
    )
