"""PKCE (RFC 7636, S256), authorization `state` values and their digests: pure functions, no I/O.

A verifier is 43 to 128 characters of the unreserved set; its S256 challenge is the unpadded
base64url SHA-256. A state is 256 random bits; only its SHA-256 is stored, so a copy of the database
does not hold a usable state. The browser binding is another random value kept in a cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
STATE_BYTES = 32
VERIFIER_BYTES = 64  # 86 base64url characters


def new_verifier() -> str:
    return secrets.token_urlsafe(VERIFIER_BYTES)


def is_valid_verifier(verifier: str) -> bool:
    return VERIFIER_RE.fullmatch(verifier) is not None


def challenge_s256(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(code_verifier))) without padding (RFC 7636 §4.2)."""
    if not is_valid_verifier(verifier):
        raise ValueError("a PKCE verifier is 43 to 128 characters of [A-Za-z0-9-._~]")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_state() -> str:
    return secrets.token_urlsafe(STATE_BYTES)


def digest(value: str) -> str:
    """The hex SHA-256 under which a state or a browser binding is stored and looked up."""
    return hashlib.sha256(value.encode()).hexdigest()


def same_digest(value: str, expected_digest: str) -> bool:
    return hmac.compare_digest(digest(value), expected_digest)
