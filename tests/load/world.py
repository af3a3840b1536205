"""The soak test's world: its own registry (fetch with an egress rule and a credential, and echo),
and users, profiles, consents, secrets and tokens made through the admin REST API.

Profiles are spread over several users so that consent, credentials and token checks are per user,
and they are reached two ways: a personal token on `/mcp/p/{slug}`, or a profile token on `/mcp`.
"""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path

from tests.load.clients import Target
from tests.support.api import api
from tests.support.gateway import REPO, Gateway


def write_registry(root: Path, https_port: int) -> Path:
    """A registry with `fetch` (may reach allowed.test on the upstream's port, carrying a per-user
    credential) and `echo`; `evil.test` resolves too, but no rule allows it."""
    servers = root / "registry" / "servers"
    servers.mkdir(parents=True)
    (servers / "fetch.yaml").write_text(textwrap.dedent(f"""\
        name: fetch
        version: 0.1.0
        description: fetch, for the soak test's egress calls
        runtime: python
        package: {{path: {REPO / 'servers' / 'fetch'}}}
        command: [gigmcp-fetch]
        egress:
          - {{host: allowed.test, ports: [{https_port}], methods: [GET], paths: [/api/]}}
        credentials:
          - id: token
            type: api_key
            hosts: [allowed.test]
            env: FETCH_TOKEN
            header: Authorization
            format: "Bearer {{secret}}"
        limits: {{memory_mb: 256, pids: 64, cpu_percent: 100}}
        """))
    (servers / "echo.yaml").write_text(textwrap.dedent(f"""\
        name: echo
        version: 0.1.0
        description: echo, for the soak test's plain calls
        runtime: python
        package: {{path: {REPO / 'servers' / 'echo'}}}
        command: [gigmcp-echo]
        limits: {{memory_mb: 256, pids: 64, cpu_percent: 100}}
        """))
    return root / "registry"


def _ok(result: tuple[int, object], *expected: int) -> object:
    status, body = result
    assert status in expected, f"HTTP {status}: {body}"
    return body


def provision(gw: Gateway, users: int, profiles_per_user: int) -> list[Target]:
    """`users` users with `profiles_per_user` profiles each (the default one included), every profile
    with fetch and echo; each user consents to both servers and stores a secret of their own."""
    targets: list[Target] = []
    for u in range(users):
        name = f"soak{u}"
        _ok(api(gw, "POST", "/api/users", {"name": name}), 201)
        personal = _ok(api(gw, "POST", "/api/tokens", {"name": "soak", "user": name}), 201)
        token = str(personal["token"])  # type: ignore[index]
        secret = f"soak-secret-{name}-{secrets.token_hex(12)}"
        for server in ("fetch", "echo"):
            _ok(api(gw, "POST", f"/api/consent/{server}", {}, token=token), 200, 201)
        _ok(api(gw, "PUT", "/api/credentials/fetch/token", {"value": secret}, token=token), 200, 201, 204)
        slugs = [f"{name}-default"] + [f"{name}-p{i}" for i in range(1, profiles_per_user)]
        for slug in slugs[1:]:
            _ok(api(gw, "POST", "/api/profiles", {"slug": slug}, token=token), 201)
        for i, slug in enumerate(slugs):
            for server in ("fetch", "echo"):
                _ok(api(gw, "PUT", f"/api/profiles/{slug}/servers/{server}", token=token), 200)
            if i % 2:
                # A profile token: `/mcp` with it lands on its own profile, never the user's default.
                issued = _ok(api(gw, "POST", f"/api/profiles/{slug}/token", {"name": "soak"}, token=token), 201)
                targets.append(Target(slug, name, "/mcp", str(issued["token"]), secret))  # type: ignore[index]
            else:
                targets.append(Target(slug, name, f"/mcp/p/{slug}", token, secret))
    return targets
