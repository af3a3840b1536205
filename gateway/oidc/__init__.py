"""OIDC login for the dashboard (authlib): discovery, code + PKCE + state + nonce, verified ID tokens,
users by (issuer, subject), roles from a configurable claim, opaque browser sessions with CSRF tokens.

| Module | What it holds |
|---|---|
| `roles` | role names from a claim of any common shape; admin or user (pure) |
| `client` | `OidcClient`: discovery, authorization URL, code exchange, ID token verification, logout URL |
| `service` | `OidcService`: login start and callback (flows in the store), user upsert |
| `sessions` | `SessionManager`: session cookies, hashed tokens in the store, CSRF tokens and Origin checks |
"""

from gateway.oidc.client import OidcClient, OidcError
from gateway.oidc.roles import role_for, roles_from_claims
from gateway.oidc.service import FLOW_COOKIE, LoginResult, LoginStart, OidcService, safe_return_to
from gateway.oidc.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    SAFE_METHODS,
    ResolvedSession,
    SessionManager,
    csrf_ok,
    origin_ok,
)

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "FLOW_COOKIE",
    "SAFE_METHODS",
    "LoginResult",
    "LoginStart",
    "OidcClient",
    "OidcError",
    "OidcService",
    "ResolvedSession",
    "SessionManager",
    "csrf_ok",
    "origin_ok",
    "role_for",
    "roles_from_claims",
    "safe_return_to",
]
