"""Vendor configurations: validation, the authorization URL, the RFC 9207 issuer check, the environment."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.config import ConfigError
from gateway.oauth import VendorConfig, VendorError, vendors_from_env
from gateway.oauth.client import OAuthError, TokenSet, _basic, parse_token_response


def _vendor(**overrides: object) -> VendorConfig:
    values: dict[str, object] = {"name": "gitlab", "authorize_url": "https://gitlab.example/oauth/authorize",
                                 "token_url": "https://gitlab.example/oauth/token", "client_id": "app-id"}
    return VendorConfig(**(values | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["https://gitlab.example/oauth/authorize", "http://127.0.0.1:4444/auth",
                                 "http://localhost/x?y=1", "https://h:8443/p/a-b_c~d"])
def test_accepted_urls(url: str) -> None:
    assert _vendor(authorize_url=url).authorize_url == url


@pytest.mark.parametrize("url", ["http://gitlab.example/oauth/authorize", "ftp://h/x", "https://h/x#frag",
                                 "https://user@h/x", "https:///x", "//h/x", "https://h/ x", ""])
def test_refused_urls(url: str) -> None:
    with pytest.raises(VendorError, match="authorize_url"):
        _vendor(authorize_url=url)


def test_other_fields_are_checked() -> None:
    with pytest.raises(VendorError, match="vendor name"):
        _vendor(name="Git_Lab")
    with pytest.raises(VendorError, match="client_id"):
        _vendor(client_id="has space")
    with pytest.raises(VendorError, match="scopes"):
        _vendor(scopes=("api", 'a"b'))
    with pytest.raises(VendorError, match="token_auth"):
        _vendor(token_auth="private_key_jwt")
    with pytest.raises(VendorError, match="revoke_url"):
        _vendor(revoke_url="http://example.com/revoke")


def test_authorization_url_carries_the_flow_parameters() -> None:
    vendor = _vendor(scopes=("api", "read_user"), authorize_url="https://h/oauth/authorize?tenant=1")
    url = vendor.authorization_url(redirect_uri="https://gw/oauth/callback", state="st", challenge="ch")
    query = parse_qs(urlsplit(url).query)
    assert query == {"tenant": ["1"], "response_type": ["code"], "client_id": ["app-id"],
                     "redirect_uri": ["https://gw/oauth/callback"], "state": ["st"], "scope": ["api read_user"],
                     "code_challenge": ["ch"], "code_challenge_method": ["S256"]}
    plain = _vendor(pkce=False).authorization_url(redirect_uri="https://gw/cb", state="s", challenge=None)
    assert "code_challenge" not in plain


def test_issuer_check() -> None:
    configured = _vendor(issuer="https://gitlab.example")
    assert configured.issuer_matches("https://gitlab.example") and configured.issuer_matches("https://gitlab.example/")
    assert not configured.issuer_matches("https://evil.example")
    derived = _vendor()  # no issuer: the authorization endpoint must lie under iss
    assert derived.issuer_matches("https://gitlab.example")
    assert not derived.issuer_matches("https://gitlab.example.evil")
    assert not derived.issuer_matches("https://gitlab.ex")
    assert not derived.issuer_matches("")


def test_gitlab_from_the_environment(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("gloas-secret\n")
    (found,) = vendors_from_env({"GIG_OAUTH_GITLAB_CLIENT_ID": "app", "GIG_OAUTH_GITLAB_CLIENT_SECRET_FILE":
                                 str(secret_file), "GIG_OAUTH_GITLAB_URL": "https://gitlab.corp.example/"})
    assert found.client_secret == "gloas-secret"
    config = found.config
    assert (config.name, config.client_id, config.scopes, config.pkce) == ("gitlab", "app", ("api",), True)
    assert config.authorize_url == "https://gitlab.corp.example/oauth/authorize"
    assert config.token_url == "https://gitlab.corp.example/oauth/token"
    assert config.revoke_url == "https://gitlab.corp.example/oauth/revoke"
    assert config.issuer == "https://gitlab.corp.example"
    (default,) = vendors_from_env({"GIG_OAUTH_GITLAB_CLIENT_ID": "app"})
    assert default.config.token_url == "https://gitlab.com/oauth/token" and default.client_secret is None
    assert vendors_from_env({"GIG_OTHER": "x"}) == []


def test_environment_errors_are_one_line_and_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GIG_OAUTH_ACME_"):
        vendors_from_env({"GIG_OAUTH_ACME_CLIENT_ID": "app"})  # no URL for a vendor that is not gitlab
    with pytest.raises(ConfigError, match="both set"):
        vendors_from_env({"GIG_OAUTH_GITLAB_CLIENT_ID": "a", "GIG_OAUTH_GITLAB_CLIENT_SECRET": "s",
                          "GIG_OAUTH_GITLAB_CLIENT_SECRET_FILE": str(tmp_path / "x")})
    with pytest.raises(ConfigError, match="cannot read") as caught:
        vendors_from_env({"GIG_OAUTH_GITLAB_CLIENT_ID": "a", "GIG_OAUTH_GITLAB_CLIENT_SECRET_FILE": "/nonexistent"})
    assert "\n" not in str(caught.value)
    (acme,) = vendors_from_env({"GIG_OAUTH_ACME_CORP_CLIENT_ID": "app", "GIG_OAUTH_ACME_CORP_AUTHORIZE_URL":
                                "https://id.acme/authorize", "GIG_OAUTH_ACME_CORP_TOKEN_URL": "https://id.acme/token",
                                "GIG_OAUTH_ACME_CORP_SCOPES": "read,write", "GIG_OAUTH_ACME_CORP_PKCE": "false"})
    assert acme.config.name == "acme-corp" and acme.config.scopes == ("read", "write") and not acme.config.pkce


def test_token_responses() -> None:
    ok = parse_token_response(200, b'{"access_token":"at","token_type":"bearer","expires_in":"7200",'
                                   b'"refresh_token":"rt","scope":"api"}')
    assert ok == TokenSet("at", "rt", 7200.0, "api")
    assert "at" not in repr(ok) and "rt'" not in repr(ok)
    assert parse_token_response(200, b'{"access_token":"at"}') == TokenSet("at", None, None, None)
    with pytest.raises(OAuthError) as caught:
        parse_token_response(400, b'{"error":"invalid_grant","error_description":"expired\\u0000 token"}')
    assert caught.value.error == "invalid_grant" and caught.value.account_rejected and not caught.value.transient
    assert str(caught.value) == "invalid_grant: expired? token"
    with pytest.raises(OAuthError) as caught:
        parse_token_response(503, b"<html>down</html>")
    assert caught.value.transient and not caught.value.account_rejected and str(caught.value) == "HTTP 503"
    for body in (b"[]", b"{}", b'{"access_token":""}', b'{"access_token":"a","token_type":"mac"}',
                 b'{"access_token":"a","expires_in":-5}', b'{"access_token":"a","refresh_token":7}', b"nope"):
        with pytest.raises(OAuthError):
            parse_token_response(200, body)


def test_client_secret_basic_form_encodes_before_base64() -> None:
    import base64

    header = _basic("my app", "p:w%d")
    assert base64.b64decode(header.removeprefix("Basic ")) == b"my%20app:p%3Aw%25d"
