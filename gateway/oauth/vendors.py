"""OAuth vendor client configurations: what the gateway needs to run the authorization-code flow with a vendor.

A vendor is a name (`gitlab`), its authorize, token and (optional) revocation endpoints, the issuer
(optional, for RFC 9207), the client id, the scopes and whether PKCE is sent. The client secret is not
part of `VendorConfig`: it is sealed in the vault and opened only for a token request.

URLs are https, or http on a loopback host (tests, local development); the same regular expressions
check API bodies (`gateway.api.oauth`) and environment values, so both accept exactly the same URLs.

Environment (optional; the API is the main way): `GIG_OAUTH_<NAME>_CLIENT_ID` declares vendor `<name>`
(lowercase, `_` becomes `-`), with `GIG_OAUTH_<NAME>_CLIENT_SECRET` or `..._CLIENT_SECRET_FILE`, and
either `GIG_OAUTH_<NAME>_URL` (a GitLab-style server: `/oauth/authorize`, `/oauth/token`,
`/oauth/revoke`, issuer = the URL; for `gitlab` it defaults to https://gitlab.com) or explicit
`..._AUTHORIZE_URL`, `..._TOKEN_URL`, `..._REVOKE_URL`, `..._ISSUER`; `..._SCOPES` (default `api` for
gitlab) and `..._PKCE` (default true).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from gateway.config import ConfigError
from gateway.store.oauth import VendorRow

VENDOR_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
_REST = r"(?::[0-9]{1,5})?(?:/[A-Za-z0-9\-._~%!$&'()*+,;=:@/]*)?(?:\?[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]*)?"
URL_PATTERN = rf"^(?:https://{_HOST}|http://(?:127\.0\.0\.1|localhost|\[::1\])){_REST}$"
OPTIONAL_URL_PATTERN = rf"^(?:(?:https://{_HOST}|http://(?:127\.0\.0\.1|localhost|\[::1\])){_REST})?$"
_SCOPE_TOKEN = r"[\x21\x23-\x5b\x5d-\x7e]{1,128}"  # noqa: S105 - RFC 6749 §3.3 scope-token
SCOPES_PATTERN = rf"^(?:{_SCOPE_TOKEN}(?: {_SCOPE_TOKEN})*)?$"
CLIENT_ID_PATTERN = r"^[\x21-\x7e]{1,256}$"
CLIENT_SECRET_PATTERN = r"^[\x21-\x7e]{1,4096}$"  # noqa: S105 - a pattern
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
MAX_URL = 2048

_URL_RE = re.compile(URL_PATTERN[1:-1])
_NAME_RE = re.compile(VENDOR_NAME_PATTERN[1:-1])
_SCOPES_RE = re.compile(SCOPES_PATTERN[1:-1])
_CLIENT_ID_RE = re.compile(CLIENT_ID_PATTERN[1:-1])
_CLIENT_SECRET_RE = re.compile(CLIENT_SECRET_PATTERN[1:-1])
GITLAB_DEFAULT_URL = "https://gitlab.com"


class VendorError(ValueError):
    """A vendor configuration value is invalid; the message names the field, never a secret."""


@dataclass(frozen=True, slots=True)
class VendorConfig:
    name: str
    authorize_url: str
    token_url: str
    client_id: str
    revoke_url: str = ""
    issuer: str = ""
    scopes: tuple[str, ...] = ()
    pkce: bool = True
    token_auth: str = "client_secret_basic"  # noqa: S105 - a method name

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.name):
            raise VendorError(f"vendor name {self.name!r}: lowercase letters, digits and '-', at most 32")
        for field, value, required in (("authorize_url", self.authorize_url, True),
                                       ("token_url", self.token_url, True),
                                       ("revoke_url", self.revoke_url, False), ("issuer", self.issuer, False)):
            if (value or required) and (len(value) > MAX_URL or not _URL_RE.fullmatch(value)):
                raise VendorError(f"{field}: expected an https:// URL (http:// only on a loopback host)")
        if not _CLIENT_ID_RE.fullmatch(self.client_id):
            raise VendorError("client_id: expected 1 to 256 visible ASCII characters")
        if not _SCOPES_RE.fullmatch(" ".join(self.scopes)):
            raise VendorError("scopes: expected OAuth scope tokens separated by single spaces")
        if self.token_auth not in TOKEN_AUTH_METHODS:
            raise VendorError(f"token_auth: expected one of {', '.join(TOKEN_AUTH_METHODS)}")

    @classmethod
    def of(cls, row: VendorRow) -> VendorConfig:
        return cls(row.name, row.authorize_url, row.token_url, row.client_id, row.revoke_url, row.issuer, row.scopes,
                   row.pkce, row.token_auth)

    def authorization_url(self, *, redirect_uri: str, state: str, challenge: str | None) -> str:
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri, "state": state}
        if self.scopes:
            params["scope"] = " ".join(self.scopes)
        if challenge is not None:
            params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
        separator = "&" if urlsplit(self.authorize_url).query else "?"
        return self.authorize_url + separator + urlencode(params)

    def issuer_matches(self, iss: str) -> bool:
        """RFC 9207: the `iss` of an authorization response must be this vendor's issuer.

        With no issuer configured, the authorization endpoint must lie under `iss` (true of GitLab,
        Keycloak, Zitadel and oidc-provider), which still tells one vendor from another.
        """
        if self.issuer:
            return iss.rstrip("/") == self.issuer.rstrip("/")
        base = iss.rstrip("/")
        return bool(base) and (self.authorize_url == base or self.authorize_url.startswith(base + "/"))


@dataclass(frozen=True, slots=True)
class EnvVendor:
    config: VendorConfig
    client_secret: str | None


def _env_secret(env: Mapping[str, str], name: str) -> str | None:
    direct, file_name = env.get(name) or "", env.get(f"{name}_FILE") or ""
    if direct and file_name:
        raise ConfigError(f"{name} and {name}_FILE are both set; set only one")
    if file_name:
        try:
            value = Path(file_name).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {file_name}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"{name}_FILE: {file_name} is empty")
        return value
    return direct.strip() or None


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "true").strip().lower()
    if raw not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ConfigError(f"{name}: expected true or false, got {raw!r}")
    return raw in ("1", "true", "yes", "on")


def vendors_from_env(env: Mapping[str, str] | None = None) -> list[EnvVendor]:
    """Every vendor declared by `GIG_OAUTH_<NAME>_CLIENT_ID`; a bad value raises one-line `ConfigError`."""
    env = os.environ if env is None else env
    found = []
    for key in sorted(env):
        m = re.fullmatch(r"GIG_OAUTH_([A-Z][A-Z0-9_]{0,31})_CLIENT_ID", key)
        if m is None or not env[key]:
            continue
        prefix = f"GIG_OAUTH_{m.group(1)}_"
        name = m.group(1).lower().replace("_", "-")
        base = (env.get(prefix + "URL") or (GITLAB_DEFAULT_URL if name == "gitlab" else "")).rstrip("/")
        derived = {"AUTHORIZE_URL": "/oauth/authorize", "TOKEN_URL": "/oauth/token", "REVOKE_URL": "/oauth/revoke"}
        urls = {part: env.get(prefix + part) or (base + path if base else "") for part, path in derived.items()}
        scopes = env.get(prefix + "SCOPES", "api" if name == "gitlab" else "")
        try:
            config = VendorConfig(
                name=name,
                authorize_url=urls["AUTHORIZE_URL"],
                token_url=urls["TOKEN_URL"],
                client_id=env[key].strip(),
                revoke_url=urls["REVOKE_URL"],
                issuer=env.get(prefix + "ISSUER") or base,
                scopes=tuple(scopes.replace(",", " ").split()),
                pkce=_flag(env, prefix + "PKCE"),
            )
        except VendorError as exc:
            raise ConfigError(f"{prefix}*: {exc} (set {prefix}URL or {prefix}AUTHORIZE_URL and {prefix}TOKEN_URL)")
        secret = _env_secret(env, prefix + "CLIENT_SECRET")
        if secret is not None and not _CLIENT_SECRET_RE.fullmatch(secret):
            raise ConfigError(f"{prefix}CLIENT_SECRET: expected 1 to 4096 visible ASCII characters")
        found.append(EnvVendor(config, secret))
    return found
