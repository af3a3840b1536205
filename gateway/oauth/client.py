"""The OAuth token client: code exchange, refresh and revocation against a vendor's endpoints (aiohttp).

Client authentication is `client_secret_basic` (RFC 6749 §2.3.1: id and secret form-encoded, then
Basic), `client_secret_post`, or only `client_id` for a public client without a secret. Responses are
read up to 64 KiB and checked (`parse_token_response`); errors become `OAuthError`, whose message holds
the vendor's error code and a short sanitized description, never a token or a secret.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote

import aiohttp

from gateway.oauth.vendors import VendorConfig

MAX_RESPONSE_BYTES = 64 * 1024
MAX_TOKEN_CHARS = 16 * 1024
MAX_EXPIRES_IN = 10 * 365 * 86400
# The vendor's own verdict on a refresh token: the account has to be connected again.
ACCOUNT_ERRORS = frozenset({"invalid_grant"})
_ERROR_CODE = re.compile(r"^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}$")  # RFC 6749 §5.2 error


class OAuthError(Exception):
    """A vendor refused a token request, or could not be reached.

    `error` is the RFC 6749 error code ("" when there is none), `transient` says whether trying again
    later may succeed (network errors, 5xx, 429), `status` is the HTTP status (0: no answer).
    """

    def __init__(self, message: str, *, error: str = "", status: int = 0, transient: bool = False) -> None:
        super().__init__(message)
        self.error = error
        self.status = status
        self.transient = transient

    @property
    def account_rejected(self) -> bool:
        return not self.transient and self.error in ACCOUNT_ERRORS


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_in: float | None
    scope: str | None


def _clean(text: str, limit: int = 160) -> str:
    return "".join(ch if 0x20 <= ord(ch) < 0x7F else "?" for ch in text)[:limit]


def _error_of(status: int, body: bytes) -> OAuthError:
    code, description = "", ""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        raw_code = data.get("error")
        if isinstance(raw_code, str) and _ERROR_CODE.fullmatch(raw_code):
            code = raw_code
        raw_description = data.get("error_description")
        if isinstance(raw_description, str):
            description = _clean(raw_description)
    transient = status >= 500 or status == 429
    what = code or f"HTTP {status}"
    return OAuthError(f"{what}: {description}" if description else what, error=code, status=status,
                      transient=transient)


def parse_token_response(status: int, body: bytes) -> TokenSet:
    """A successful token response (RFC 6749 §5.1) as a `TokenSet`; anything else raises `OAuthError`."""
    if status != 200:
        raise _error_of(status, body)
    try:
        data = json.loads(body)
    except ValueError:
        raise OAuthError("the token response is not JSON", status=status) from None
    if not isinstance(data, dict):
        raise OAuthError("the token response is not a JSON object", status=status)
    access = data.get("access_token")
    if not isinstance(access, str) or not access or len(access) > MAX_TOKEN_CHARS:
        raise OAuthError("the token response has no usable access_token", status=status)
    token_type = data.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise OAuthError(f"unsupported token_type {_clean(str(token_type), 32)!r}: only Bearer tokens are injected",
                         status=status)
    refresh = data.get("refresh_token")
    if refresh is not None and (not isinstance(refresh, str) or not refresh or len(refresh) > MAX_TOKEN_CHARS):
        raise OAuthError("the token response has an unusable refresh_token", status=status)
    expires_in: float | None = None
    raw_expiry = data.get("expires_in")
    if raw_expiry is not None:
        try:
            expires_in = float(raw_expiry)
        except (TypeError, ValueError):
            raise OAuthError("expires_in is not a number", status=status) from None
        if not 0 < expires_in <= MAX_EXPIRES_IN:
            raise OAuthError("expires_in is out of range", status=status)
    scope = data.get("scope")
    return TokenSet(access, refresh, expires_in, _clean(scope, 2048) if isinstance(scope, str) else None)


def _basic(client_id: str, secret: str) -> str:
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(pair).decode()


class TokenClient:
    """Token-endpoint and revocation calls for one gateway; shares one aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, *, timeout_s: float = 10.0) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _post(self, url: str, vendor: VendorConfig, secret: str | None,
                    form: dict[str, str]) -> tuple[int, bytes]:
        headers = {"Accept": "application/json"}
        if secret is None:
            form = {**form, "client_id": vendor.client_id}
        elif vendor.token_auth == "client_secret_post":  # noqa: S105 - a method name
            form = {**form, "client_id": vendor.client_id, "client_secret": secret}
        else:
            headers["Authorization"] = _basic(vendor.client_id, secret)
        try:
            async with self._session.post(url, data=form, headers=headers, timeout=self._timeout,
                                          allow_redirects=False) as resp:
                body = await resp.content.read(MAX_RESPONSE_BYTES)
                return resp.status, body
        except TimeoutError:
            raise OAuthError(f"{vendor.name} did not answer in time", transient=True) from None
        except aiohttp.ClientError as exc:
            raise OAuthError(f"{vendor.name} could not be reached ({type(exc).__name__})", transient=True) from None

    async def exchange_code(self, vendor: VendorConfig, secret: str | None, *, code: str, redirect_uri: str,
                            verifier: str | None) -> TokenSet:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if verifier is not None:
            form["code_verifier"] = verifier
        return parse_token_response(*await self._post(vendor.token_url, vendor, secret, form))

    async def refresh(self, vendor: VendorConfig, secret: str | None, refresh_token: str) -> TokenSet:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return parse_token_response(*await self._post(vendor.token_url, vendor, secret, form))

    async def revoke(self, vendor: VendorConfig, secret: str | None, token: str, hint: str) -> bool:
        """RFC 7009 revocation; True when the vendor confirmed (200). Never raises."""
        if not vendor.revoke_url:
            return False
        try:
            status, _ = await self._post(vendor.revoke_url, vendor, secret, {"token": token, "token_type_hint": hint})
        except OAuthError:
            return False
        return status == 200
