"""Direct TLS: the SDK client over HTTPS against a self-signed CA, TLS 1.1 refused, mutual TLS enforced,
HSTS on TLS responses, and a bad certificate stopping the start with one line naming the variable."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.gateway import REPO, TOKEN, Gateway

pytestmark = [pytest.mark.root]
NOW = datetime.datetime.now(datetime.UTC)


@dataclass
class Pki:
    dir: Path
    ca_key: Any = None
    ca_cert: Any = None
    paths: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gigmcp test CA")])
        self.ca_cert = (self._builder(name, name, self.ca_key.public_key())
                        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                       critical=True)
                        .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key()),
                                       critical=False)
                        .sign(self.ca_key, hashes.SHA256()))
        self.paths["ca"] = self._write("ca.crt", self.ca_cert.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _builder(subject: x509.Name, issuer: x509.Name, public_key: Any) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(NOW - datetime.timedelta(days=1))
                .not_valid_after(NOW + datetime.timedelta(days=7)))

    def _write(self, name: str, data: bytes) -> Path:
        path = self.dir / name
        path.write_bytes(data)
        return path

    def issue(self, name: str, *, server: bool) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        # Python 3.13 verifies strictly (VERIFY_X509_STRICT): key identifiers must be present.
        builder = (self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), self.ca_cert.subject,
                                 key.public_key())
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                                  critical=False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        return (self._write(f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM)),
                self._write(f"{name}.key", key.private_bytes(serialization.Encoding.PEM,
                                                             serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption())))


@dataclass
class TlsGateway(Gateway):
    """The support gateway, reached over HTTPS (the health poll and admin requests included)."""

    client_context: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                auth: bool = True) -> tuple[int, dict[str, str], bytes]:
        hdrs = {"Authorization": f"Bearer {TOKEN}"} if auth else {}
        hdrs.update(headers or {})
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.client_context) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def client_context(pki: Pki, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.paths["ca"]))
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


@contextlib.contextmanager
def tls_gateway(pki: Pki, *, mutual: bool = False) -> Iterator[TlsGateway]:
    cert, key = pki.issue("localhost", server=True)
    env = {"GIG_TLS_CERT_FILE": str(cert), "GIG_TLS_KEY_FILE": str(key), "GIG_EGRESS": "false",
           "GIG_PUBLIC_URL": "https://localhost"}
    client_cert = pki.issue("client", server=False) if mutual else None
    if mutual:
        env["GIG_TLS_CLIENT_CA_FILE"] = str(pki.paths["ca"])
    gw = TlsGateway(env=env, client_context=client_context(pki, client_cert))
    gw.env["GIG_ALLOWED_HOSTS"] = f"127.0.0.1:{gw.port},localhost:{gw.port}"
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


@contextlib.asynccontextmanager
async def https_mcp_client(url: str, verify: ssl.SSLContext) -> AsyncIterator[Any]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60, verify=verify)
    async with http, Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
        yield client


def handshake(port: int, ctx: ssl.SSLContext) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        return tls.recv(4096).decode(errors="replace")


def refused(port: int, ctx: ssl.SSLContext) -> bool:
    """No HTTP answer: with TLS 1.3 the server rejects a client certificate after the client's handshake
    completes, so the refusal shows up as an alert (SSLError) or a closed connection on the first read."""
    try:
        return not handshake(port, ctx).startswith("HTTP/")
    except (ssl.SSLError, ConnectionError):
        return True


@pytest.fixture(scope="module")
def gw(pki: Pki) -> Iterator[TlsGateway]:
    with tls_gateway(pki) as gateway:
        yield gateway


async def test_sdk_client_over_https(gw: TlsGateway, pki: Pki) -> None:
    async with https_mcp_client(f"{gw.url}/mcp", client_context(pki)) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert "echo_echo" in tools
        result = await client.call_tool("echo_echo", {"message": "over tls"})
    assert result.content[0].text == "over tls"


def test_hsts_on_tls_responses(gw: TlsGateway) -> None:
    status, headers, _ = gw.request("GET", "/api/servers")
    assert status == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000"


def test_tls_1_1_is_refused(gw: TlsGateway, pki: Pki) -> None:
    old = client_context(pki)
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with contextlib.suppress(ssl.SSLError):
        old.set_ciphers("ALL:@SECLEVEL=0")  # let the client itself offer TLS 1.1
    with pytest.raises(ssl.SSLError):
        handshake(gw.port, old)
    assert handshake(gw.port, client_context(pki)).startswith("HTTP/1.1 200")


def test_mutual_tls_refuses_a_client_without_certificate(pki: Pki) -> None:
    with tls_gateway(pki, mutual=True) as gw:
        assert gw.get("/health")[0] == 200  # the fixture's client presents a certificate
        assert refused(gw.port, client_context(pki))
        (pki.dir / "other").mkdir(exist_ok=True)
        other = Pki(pki.dir / "other")  # a certificate from a CA the gateway does not trust
        stranger = client_context(pki, other.issue("stranger", server=False))
        assert refused(gw.port, stranger)
        assert not refused(gw.port, client_context(pki, pki.issue("client2", server=False)))


def test_an_expired_certificate_stops_the_start_with_one_line(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(NOW - datetime.timedelta(days=30))
            .not_valid_after(NOW - datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    env = {"PATH": "/usr/bin:/bin", "GIG_BEARER_TOKEN": TOKEN, "GIG_DATA_DIR": str(tmp_path),
           "GIG_TLS_CERT_FILE": str(tmp_path / "c.pem"), "GIG_TLS_KEY_FILE": str(tmp_path / "k.pem")}
    result = subprocess.run([sys.executable, "-m", "gateway", "serve"], env=env, cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gigmcp: configuration error: GIG_TLS_CERT_FILE: "), lines
    assert "expired" in lines[0]
    json.dumps(lines)  # plain text, no trace
