"""The oidc-provider test IdP: installed once into `.tools/idp` with `npm ci`, started on a free loopback port.

`running_idp(redirect_uri, access_ttl=3)` starts it with one confidential client whose redirect URI is the
gateway's callback; `headless_authorize` walks its devInteractions login and consent pages with aiohttp and
returns the redirect to the gateway, which the caller then follows (with the same cookie jar).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp

from tests.support.gateway import REPO, Gateway, free_port

SOURCE = Path(__file__).resolve().parent
INSTALL_DIR = REPO / ".tools" / "idp"
CLIENT_ID = "gigmcp"
DASHBOARD_CLIENT_ID = "gigmcp-dashboard"


class IdpUnavailable(RuntimeError):
    """Node or npm is missing, or the install failed: the tests that need the IdP skip with this reason."""


def ensure_installed() -> Path:
    """`npm ci` the pinned oidc-provider into `.tools/idp` once (again only when the lock file changes)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise IdpUnavailable("node and npm are needed for the oidc-provider test IdP")
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    lock = (SOURCE / "package-lock.json").read_bytes()
    digest = hashlib.sha256(lock + (SOURCE / "package.json").read_bytes()).hexdigest()
    stamp = INSTALL_DIR / ".installed"
    with open(INSTALL_DIR / ".lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # several test processes may start at once
        if not (stamp.exists() and stamp.read_text() == digest and (INSTALL_DIR / "node_modules").is_dir()):
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(SOURCE / name, INSTALL_DIR / name)
            done = subprocess.run(
                ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=INSTALL_DIR, capture_output=True, text=True, timeout=300,
            )
            if done.returncode != 0:
                raise IdpUnavailable(f"npm ci of the test IdP failed: {done.stderr.strip()[-500:]}")
            stamp.write_text(digest)
        shutil.copyfile(SOURCE / "idp.mjs", INSTALL_DIR / "idp.mjs")
    return INSTALL_DIR


@dataclass
class Idp:
    port: int
    client_secret: str
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    client_id: str = CLIENT_ID
    metadata: dict[str, Any] = field(default_factory=dict)  # RFC 8414 authorization server metadata
    dashboard_client_id: str = DASHBOARD_CLIENT_ID
    dashboard_client_secret: str = ""  # set when started with a dashboard redirect URI

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _json(self, path: str, data: bytes | None = None, auth: bool = False) -> Any:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if data else {}
        if auth:
            pair = f"{self.client_id}:{self.client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        request = urllib.request.Request(self.issuer + path, data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        """Token requests per grant type ({"ok", "error"}), revocations and introspections so far."""
        return dict(self._json("/_test/stats"))

    def refreshes(self) -> int:
        return int(self.stats()["token"].get("refresh_token", {}).get("ok", 0))

    def introspect(self, token: str) -> dict[str, Any]:
        return dict(self._json("/token/introspection", f"token={token}".encode(), auth=True))

    def token_log(self) -> list[dict[str, Any]]:
        assert self.log_path is not None
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith('{"event":"token"')]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def running_idp(redirect_uri: str, *, access_ttl: int = 3, log_dir: Path, dashboard_redirect: str | None = None,
                dashboard_post_logout: str | None = None, port: int | None = None) -> Iterator[Idp]:
    """`dashboard_redirect` adds the confidential client of the dashboard's OIDC login (`/auth/callback`)."""
    directory = ensure_installed()
    idp = Idp(port=port or free_port(), client_secret="idp-secret-" + os.urandom(8).hex())
    idp.log_path = log_dir / f"idp-{idp.port}.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "PORT": str(idp.port),
        "CLIENT_ID": idp.client_id,
        "CLIENT_SECRET": idp.client_secret,
        "REDIRECT_URI": redirect_uri,
        "ACCESS_TTL": str(access_ttl),
        "NODE_NO_WARNINGS": "1",
    }
    if dashboard_redirect:
        idp.dashboard_client_secret = "dash-secret-" + os.urandom(8).hex()
        env |= {"DASHBOARD_CLIENT_ID": idp.dashboard_client_id, "DASHBOARD_CLIENT_SECRET": idp.dashboard_client_secret,
                "DASHBOARD_REDIRECT_URI": dashboard_redirect, "DASHBOARD_POST_LOGOUT": dashboard_post_logout or ""}
    log = open(idp.log_path, "wb")  # noqa: SIM115 - handed to the child process
    idp.proc = subprocess.Popen(["node", "idp.mjs"], cwd=directory, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            if idp.proc.poll() is not None:
                raise IdpUnavailable(f"the test IdP exited: {idp.log_path.read_text()[-800:]}")
            with contextlib.suppress(OSError):
                idp.metadata = idp._json("/.well-known/oauth-authorization-server")
                break
            if time.monotonic() > deadline:
                raise IdpUnavailable("the test IdP did not start within 20 s")
            time.sleep(0.05)
        yield idp
    finally:
        idp.stop()
        log.close()


async def headless_authorize(session: aiohttp.ClientSession, authorize_url: str, redirect_uri: str,
                             user: str = "alice") -> str:
    """Walk the IdP's login and consent pages; return the redirect to `redirect_uri` (not followed).

    The session needs `aiohttp.CookieJar(unsafe=True)`: the default jar drops cookies of IP-address hosts.
    """
    url = authorize_url
    for _ in range(12):
        async with session.get(url, allow_redirects=False) as resp:
            location = resp.headers.get("Location")
            if resp.status in (302, 303) and location:
                url = urljoin(url, location)
                if url.startswith(redirect_uri):
                    return url
                continue
            html = await resp.text()
        form = re.search(r'<form[^>]*action="([^"]+)"', html)
        prompt = re.search(r'name="prompt" value="(\w+)"', html)
        if form is None or prompt is None:
            raise AssertionError(f"unexpected IdP page at {url}: {html[:300]}")
        action = urljoin(url, form.group(1))
        data = {"prompt": prompt.group(1)}
        if prompt.group(1) == "login":
            data |= {"login": user, "password": "any"}
        async with session.post(action, data=data, allow_redirects=False) as resp:
            url = urljoin(action, resp.headers["Location"])
    raise AssertionError("the IdP never redirected back to the gateway")


@contextlib.contextmanager
def oidc_gateway(log_dir: Path, *, install: str = "echo", roles_claim: str = "groups",
                 admin_role: str = "gig-admin", env: dict[str, str] | None = None) -> Iterator[tuple[Gateway, Idp]]:
    """A gateway whose dashboard logs in at a fresh test IdP (both stopped on exit).

    The IdP's `admin…` logins are in the `gig-admin` group, every login in `staff`.
    """
    gw = Gateway(install=install)
    with running_idp("http://127.0.0.1:1/oauth/callback", log_dir=log_dir,
                     dashboard_redirect=f"{gw.url}/auth/callback", dashboard_post_logout=f"{gw.url}/login") as idp:
        scopes = "openid profile email " + ("groups" if roles_claim == "groups" else "roles")
        gw.env.update({
            "GIG_OIDC_ISSUER": idp.issuer, "GIG_OIDC_CLIENT_ID": idp.dashboard_client_id,
            "GIG_OIDC_CLIENT_SECRET": idp.dashboard_client_secret, "GIG_OIDC_ROLES_CLAIM": roles_claim,
            "GIG_OIDC_ADMIN_ROLE": admin_role, "GIG_OIDC_SCOPES": scopes, **(env or {}),
        })
        gw.start()
        try:
            yield gw, idp
        finally:
            gw.stop()


async def dashboard_login(session: aiohttp.ClientSession, gw: Gateway, user: str) -> str:
    """Sign `session` in to the gateway's dashboard as `user` (headless); returns the CSRF token of the session."""
    async with session.post(f"{gw.url}/auth/login", data={"next": "/"}, headers={"Origin": gw.url},
                            allow_redirects=False) as resp:
        assert resp.status == 303, await resp.text()
        authorize = resp.headers["Location"]
    callback = await headless_authorize(session, authorize, f"{gw.url}/auth/callback", user=user)
    async with session.get(callback, allow_redirects=False) as resp:
        assert resp.status == 303, await resp.text()
    async with session.get(f"{gw.url}/account") as resp:
        html = await resp.text()
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, html[:500]
    return match.group(1)
