"""OAuth connected accounts: per-vendor client configurations, the authorization-code flow with PKCE and
state, vault-sealed tokens, coalesced refreshes, and the per-request access token the egress proxy injects.

| Module | What it holds |
|---|---|
| `vendors` | `VendorConfig` (validated), `vendors_from_env` (`GIG_OAUTH_<NAME>_*`) |
| `pkce` | S256 verifier/challenge, states and their digests (pure) |
| `client` | `TokenClient`: code exchange, refresh, revocation (aiohttp); `OAuthError` |
| `coalesce` | `Coalescer`: one running job per key, shared by every caller |
| `tokens` | `AccountTokens`: fresh access tokens, refresh before expiry, rotation persisted |
| `service` | `OAuthService`: vendors, connect/callback, accounts; what the API and the resolver call |
"""

from gateway.oauth.client import OAuthError, TokenClient, TokenSet
from gateway.oauth.coalesce import Coalescer
from gateway.oauth.service import (
    CALLBACK_PATH,
    AccountInfo,
    CallbackError,
    ConnectStart,
    OAuthService,
    OAuthSettings,
    OAuthUnavailable,
    ReadOnlyVendor,
    UnknownVendor,
)
from gateway.oauth.vendors import EnvVendor, VendorConfig, VendorError, vendors_from_env

__all__ = [
    "CALLBACK_PATH",
    "AccountInfo",
    "CallbackError",
    "Coalescer",
    "ConnectStart",
    "EnvVendor",
    "OAuthError",
    "OAuthService",
    "OAuthSettings",
    "OAuthUnavailable",
    "ReadOnlyVendor",
    "TokenClient",
    "TokenSet",
    "UnknownVendor",
    "VendorConfig",
    "VendorError",
    "vendors_from_env",
]
