"""Settings read from the environment (and CLI overrides): instance URL, auth, surface, safety, limits."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SURFACES = ("dynamic", "domains", "individual")
TRUE = frozenset({"1", "true", "yes", "on"})


class ConfigError(ValueError):
    """A setting has an invalid value."""


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in TRUE


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    return max(lo, min(hi, value))


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _csv(env: Mapping[str, str], name: str) -> frozenset[str]:
    return frozenset(x.strip() for x in env.get(name, "").split(",") if x.strip())


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know; immutable once built."""

    gitlab_url: str = "https://gitlab.com"
    token: str = ""
    token_placeholder: str = ""
    auth_header: str = "bearer"
    surface: str = "dynamic"
    preset: str = "all"
    domains: frozenset[str] = field(default_factory=frozenset)
    denied_actions: frozenset[str] = field(default_factory=frozenset)
    read_only: bool = False
    safe_mode: bool = False
    allow_quick_actions: bool = False
    ca_bundle: str = ""
    max_result_bytes: int = 40_000
    max_concurrency: int = 4
    timeout: float = 30.0
    max_retries: int = 3
    retry_base_delay: float = 0.5
    retry_max_wait: float = 30.0
    log_tail_lines: int = 200

    @property
    def api_url(self) -> str:
        return self.gitlab_url.rstrip("/") + "/api/v4"

    @property
    def host(self) -> str:
        return urlsplit(self.gitlab_url).hostname or ""

    @property
    def base_path(self) -> str:
        """Path prefix of a GitLab installed under a sub-path (e.g. "/gitlab"), else ""."""
        return urlsplit(self.gitlab_url).path.rstrip("/")

    def auth_headers(self) -> dict[str, str]:
        """The auth header to send: the token, else the proxy placeholder, else nothing."""
        secret = self.token or self.token_placeholder
        if not secret:
            return {}
        if self.auth_header == "private-token":
            return {"PRIVATE-TOKEN": secret}
        return {"Authorization": f"Bearer {secret}"}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        url = (env.get("GITLAB_URL") or env.get("GITLAB_API_URL") or "https://gitlab.com").strip()
        if url.rstrip("/").endswith("/api/v4"):
            url = url.rstrip("/")[: -len("/api/v4")]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"GITLAB_URL must be an http(s) URL, got {url!r}")
        surface = (env.get("GITLAB_TOOL_SURFACE") or "dynamic").strip().lower()
        if surface not in SURFACES:
            raise ConfigError(f"GITLAB_TOOL_SURFACE must be one of {', '.join(SURFACES)}, got {surface!r}")
        header = (env.get("GITLAB_AUTH_HEADER") or "bearer").strip().lower()
        if header not in ("bearer", "private-token"):
            raise ConfigError(f"GITLAB_AUTH_HEADER must be bearer or private-token, got {header!r}")
        ca = (env.get("GITLAB_CA_BUNDLE") or "").strip()
        if ca and not os.path.exists(ca):
            raise ConfigError(f"GITLAB_CA_BUNDLE points to a missing file: {ca}")
        return cls(
            gitlab_url=url.rstrip("/"),
            token=(env.get("GITLAB_TOKEN") or env.get("GITLAB_PERSONAL_ACCESS_TOKEN") or "").strip(),
            token_placeholder=(env.get("GITLAB_TOKEN_PLACEHOLDER") or "").strip(),
            auth_header=header,
            surface=surface,
            preset=(env.get("GITLAB_PRESET") or "all").strip().lower(),
            domains=_csv(env, "GITLAB_DOMAINS"),
            denied_actions=_csv(env, "GITLAB_DENIED_ACTIONS"),
            read_only=_flag(env, "GITLAB_READ_ONLY"),
            safe_mode=_flag(env, "GITLAB_SAFE_MODE"),
            allow_quick_actions=_flag(env, "GITLAB_ALLOW_QUICK_ACTIONS"),
            ca_bundle=ca,
            max_result_bytes=_int(env, "GITLAB_MAX_RESULT_BYTES", 40_000, 2_000, 1_000_000),
            max_concurrency=_int(env, "GITLAB_MAX_CONCURRENCY", 4, 1, 64),
            timeout=_float(env, "GITLAB_TIMEOUT", 30.0) or 30.0,
            max_retries=_int(env, "GITLAB_MAX_RETRIES", 3, 0, 10),
            retry_base_delay=_float(env, "GITLAB_RETRY_BASE_DELAY", 0.5),
            retry_max_wait=_float(env, "GITLAB_RETRY_MAX_WAIT", 30.0),
            log_tail_lines=_int(env, "GITLAB_LOG_TAIL_LINES", 200, 1, 5000),
        )
