"""Helpers for the egress/network integration tests: a private test PKI, local TLS and plain upstreams,
network namespaces made with `unshare --net`, and commands run inside them with `nsenter`.

Everything stays on this machine: upstreams listen on 127.0.0.1 (reached by the proxy through the
test-only `allow_loopback`), sandboxes are namespaces these helpers create and always remove.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NAMES = ("allowed.test", "api.allowed.test", "evil.test", "other.test", "localhost")


def needs_root() -> pytest.MarkDecorator:
    missing = [t for t in ("nft", "unshare", "nsenter", "curl", "ip") if shutil.which(t) is None]
    reason = ""
    if os.geteuid() != 0:
        reason = "needs root (network namespaces, veth, nftables)"
    elif missing:
        reason = f"missing tools: {', '.join(missing)}"
    return pytest.mark.skipif(bool(reason), reason=reason or "ok")


# --- PKI -------------------------------------------------------------------------------------------


@dataclass
class Pki:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path


def make_pki(d: Path) -> Pki:
    """A throwaway CA and one server certificate for NAMES and 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gigmcp test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in NAMES]
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "allowed.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(d / "ca.pem", d / "server.pem", d / "server.key")
    pki.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return pki


# --- upstream ----------------------------------------------------------------------------------------


@dataclass
class Upstream:
    https_port: int
    http_port: int
    other_port: int  # a second TLS port: "allowed host, wrong port"
    seen: list[dict[str, Any]] = field(default_factory=list)

    def last(self) -> dict[str, Any]:
        return self.seen[-1]


def _upstream_app(up: Upstream) -> web.Application:
    async def echo(request: web.Request) -> web.StreamResponse:
        info = {
            "method": request.method,
            "path": request.path_qs,
            "host": request.headers.get("Host", ""),
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": (await request.read()).decode(errors="replace"),
        }
        up.seen.append(info)
        if request.path.startswith("/slow"):
            await asyncio.sleep(float(request.query.get("s", "3")))
        if request.path.startswith("/api/sse"):
            # An echoed secret split across two chunks of an event stream.
            auth = request.headers.get("Authorization", "")
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            half = len(auth) // 2
            await resp.write(f"data: {auth[:half]}".encode())
            await asyncio.sleep(0.05)
            await resp.write(f"{auth[half:]}\n\n".encode())
            await resp.write_eof()
            return resp
        headers = {"X-Echo-Auth": request.headers.get("Authorization", "")}
        return web.json_response(info, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def start_upstream(pki: Pki) -> tuple[Upstream, list[web.AppRunner]]:
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(pki.cert_pem), str(pki.key_pem))
    up = Upstream(0, 0, 0)
    runners = []
    ports = []
    for tls in (True, False, True):
        runner = web.AppRunner(_upstream_app(up), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx if tls else None)
        await site.start()
        server = site._server
        assert server is not None
        ports.append(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        runners.append(runner)
    up.https_port, up.http_port, up.other_port = ports
    return up, runners


# --- namespaces ----------------------------------------------------------------------------------------


class Netns:
    """A network namespace held by `unshare --net sleep`; removed when the process dies."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["unshare", "--net", "sleep", "600"])
        mine = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 5
        while True:
            try:
                if os.readlink(f"/proc/{self.proc.pid}/ns/net") != mine:
                    break
            except FileNotFoundError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("unshare did not enter a new network namespace")
            time.sleep(0.002)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    async def run(self, *argv: str, timeout: float = 15.0, input: bytes | None = None) -> Result:
        p = await asyncio.create_subprocess_exec(
            "nsenter",
            f"--net=/proc/{self.pid}/ns/net",
            "--",
            *argv,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(p.communicate(input), timeout)
        except TimeoutError:
            p.kill()
            await p.wait()
            raise
        return Result(p.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))

    async def python(self, code: str, timeout: float = 15.0) -> Any:
        """Run Python inside the namespace; the script prints one JSON value as its last line."""
        r = await self.run(sys.executable, "-c", code, timeout=timeout)
        assert r.rc == 0, r.err
        return json.loads(r.out.strip().splitlines()[-1])


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def deny_reason(self) -> str | None:
        for line in (self.err + "\n" + self.out).splitlines():
            if "x-gig-deny-reason:" in line.lower():
                return line.split(":", 1)[1].strip()
        return None


def curl_args(proxy: str, ca: str, *extra: str) -> list[str]:
    return [
        "curl",
        "-sS",
        "-v",
        "--max-time",
        "8",
        "--proxy",
        proxy,
        "--cacert",
        ca,
        "-w",
        "\n%{http_code} %{http_connect}",
        *extra,
    ]


def codes(r: Result) -> tuple[int, int]:
    """(http_code, http_connect) from curl's -w line."""
    last = r.out.strip().splitlines()[-1].split()
    return int(last[0]), int(last[1])


def body(r: Result) -> Any:
    text = "\n".join(r.out.strip().splitlines()[:-1])
    return json.loads(text) if text.startswith("{") else text


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    yield make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
async def upstream(pki: Pki) -> AsyncIterator[Upstream]:
    up, runners = await start_upstream(pki)
    yield up
    for r in runners:
        await r.cleanup()
