"""The relying party's wire work: discovery, the authorization URL, the code exchange, the ID token check.

authlib makes the PKCE challenge and the random values; its JOSE library (joserfc) verifies the ID
token: signature against the provider's JWKS (fetched again once when a key id is unknown, so key
rotation at the IdP needs no restart), then issuer, audience (and `azp` when there are several),
expiry, issue time and nonce. Nothing here logs a token, a code or the client secret.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gateway.config import OidcConfig

DISCOVERY_TTL_S = 3600.0
LEEWAY_S = 60
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


class OidcError(Exception):
    """The login cannot go on; `code` is stable, the message is fit for the user (never a secret)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    token_auth_methods: tuple[str, ...]


class OidcClient:
    def __init__(self, config: OidcConfig, *, timeout_s: float = 10.0) -> None:
        self.config = config
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._metadata: Metadata | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def _get_json(self, url: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        try:
            async with self._http().get(url, headers=headers, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise OidcError("idp_unavailable", f"the identity provider answered {resp.status} for {url}")
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OidcError("idp_unavailable", f"the identity provider cannot be reached: {type(exc).__name__}")
        if not isinstance(data, dict):
            raise OidcError("idp_unavailable", f"the identity provider sent no JSON object at {url}")
        return data

    async def metadata(self) -> Metadata:
        now = time.monotonic()
        if self._metadata is not None and now - self._metadata_at < DISCOVERY_TTL_S:
            return self._metadata
        data = await self._get_json(f"{self.config.issuer}/.well-known/openid-configuration")
        # OIDC Discovery §4.3: the document must name exactly the issuer it was fetched for.
        if str(data.get("issuer", "")).rstrip("/") != self.config.issuer:
            raise OidcError("idp_misconfigured", "the provider's discovery document names another issuer")
        try:
            meta = Metadata(
                issuer=str(data["issuer"]),
                authorization_endpoint=str(data["authorization_endpoint"]),
                token_endpoint=str(data["token_endpoint"]),
                jwks_uri=str(data["jwks_uri"]),
                userinfo_endpoint=data.get("userinfo_endpoint"),
                end_session_endpoint=data.get("end_session_endpoint"),
                token_auth_methods=tuple(data.get("token_endpoint_auth_methods_supported")
                                         or ["client_secret_basic"]),
            )
        except KeyError as exc:
            raise OidcError("idp_misconfigured", f"the provider's discovery document lacks {exc.args[0]}")
        methods = data.get("code_challenge_methods_supported")
        if methods is not None and "S256" not in methods:
            raise OidcError("idp_misconfigured", "the provider does not support PKCE S256")
        self._metadata, self._metadata_at = meta, now
        return meta

    async def authorization_url(self, *, state: str, nonce: str, verifier: str) -> str:
        meta = await self.metadata()
        return str(add_params_to_uri(meta.authorization_endpoint, [
            ("response_type", "code"),
            ("client_id", self.config.client_id),
            ("redirect_uri", self.config.redirect_url),
            ("scope", " ".join(self.config.scopes)),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", create_s256_code_challenge(verifier)),
            ("code_challenge_method", "S256"),
        ]))

    async def exchange(self, code: str, verifier: str) -> dict[str, Any]:
        meta = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.config.redirect_url,
                "code_verifier": verifier}
        auth = None
        if "client_secret_basic" in meta.token_auth_methods or "client_secret_post" not in meta.token_auth_methods:
            auth = aiohttp.BasicAuth(self.config.client_id, self.config.client_secret)
        else:
            form |= {"client_id": self.config.client_id, "client_secret": self.config.client_secret}
        try:
            async with self._http().post(meta.token_endpoint, data=form, auth=auth, allow_redirects=False,
                                         headers={"Accept": "application/json"}) as resp:
                data = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OidcError("idp_unavailable", f"the token endpoint cannot be reached: {type(exc).__name__}")
        if status != 200 or not isinstance(data, dict):
            error = data.get("error", "") if isinstance(data, dict) else ""
            raise OidcError("code_rejected", f"the identity provider refused the code ({str(error)[:60] or status})")
        if not isinstance(data.get("id_token"), str):
            raise OidcError("no_id_token", "the identity provider sent no ID token")
        return data

    async def _keyset(self, refresh: bool) -> KeySet:
        if self._keys is None or refresh:
            meta = await self.metadata()
            try:
                self._keys = KeySet.import_key_set(await self._get_json(meta.jwks_uri))  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError) as exc:
                raise OidcError("idp_misconfigured", f"the provider's JWKS is not usable: {type(exc).__name__}")
        return self._keys

    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, after every check the spec asks of a relying party; else `OidcError`."""
        meta = await self.metadata()
        token = None
        for refresh in (False, True):
            try:
                token = jwt.decode(id_token, await self._keyset(refresh), algorithms=ALGORITHMS)
                break
            except JoseError as exc:
                if refresh:
                    raise OidcError("bad_id_token", f"the ID token's signature does not verify ({exc.error})")
            except ValueError:
                raise OidcError("bad_id_token", "the ID token is malformed")
        assert token is not None
        claims = dict(token.claims)
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_S,
            iss={"essential": True, "value": meta.issuer},
            sub={"essential": True},
            aud={"essential": True, "value": self.config.client_id},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise OidcError("bad_id_token", f"the ID token is not valid here ({exc.error}: {exc.description})")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.config.client_id:
            raise OidcError("bad_id_token", "the ID token was issued to another party (azp)")
        return claims

    async def userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """Claims the provider releases only at its userinfo endpoint (often the roles); {} when it has none."""
        meta = await self.metadata()
        if not meta.userinfo_endpoint or not access_token:
            return {}
        data = await self._get_json(meta.userinfo_endpoint, {"Authorization": f"Bearer {access_token}"})
        # OIDC Core §5.3.4: a userinfo answer for another subject must not be used.
        if data.get("sub") != subject:
            raise OidcError("bad_userinfo", "the userinfo answer is for another subject")
        return data

    async def logout_url(self, post_logout_redirect: str, id_token_hint: str | None = None) -> str | None:
        """The provider's RP-initiated logout URL, or None when it offers none."""
        try:
            meta = await self.metadata()
        except OidcError:
            return None
        if not meta.end_session_endpoint:
            return None
        params = [("client_id", self.config.client_id), ("post_logout_redirect_uri", post_logout_redirect)]
        if id_token_hint:
            params.append(("id_token_hint", id_token_hint))
        return str(add_params_to_uri(meta.end_session_endpoint, params))
