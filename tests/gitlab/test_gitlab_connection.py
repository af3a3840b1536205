"""Connection settings: HTTP(S)_PROXY is honoured, private CAs via GITLAB_CA_BUNDLE or SSL_CERT_FILE."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_gitlab import Running, running_fake

from .conftest import TOKEN, env_for, inproc, run, text

x509 = pytest.importorskip("cryptography.x509")


@pytest.fixture
def self_signed(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-gitlab.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "ca.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    yield cert_path, key_path


async def test_private_ca_bundle_and_ssl_cert_file(
    self_signed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    async with running_fake(ssl_context=ctx) as fake:
        assert fake.url.startswith("https://")
        async with inproc(env_for(fake, GITLAB_MAX_RETRIES="0")) as client:
            untrusted = await run(client, "user_current")
        assert untrusted.is_error and "GITLAB_CA_BUNDLE" in text(untrusted)
        async with inproc(env_for(fake, GITLAB_CA_BUNDLE=str(cert))) as client:
            trusted = await run(client, "user_current")
        assert not trusted.is_error, text(trusted)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        async with inproc(env_for(fake)) as client:
            via_env = await run(client, "user_current")
        assert not via_env.is_error, text(via_env)


async def test_http_proxy_is_honoured(fake: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """GITLAB_URL names a host that does not resolve; only the proxy (the fake) can answer."""
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", fake.url)
    env = env_for(fake, GITLAB_URL="http://gitlab.invalid", NO_PROXY="")
    async with inproc(env) as client:
        result = await run(client, "user_current")
    assert not result.is_error, text(result)
    assert fake.fake.requests and all(r.proxied for r in fake.fake.requests)
    assert fake.fake.requests[-1].headers.get("Host") == "gitlab.invalid"
    assert fake.fake.requests[-1].auth() == TOKEN
    assert os.environ["HTTP_PROXY"] == fake.url
