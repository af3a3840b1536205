"""Configuration: every `GIG_*` variable parsed and validated once at start into a frozen `Config`.

A bad or missing value raises `ConfigError` whose message is one line naming the variable; the CLI
prints it and exits. Secrets may come from `<NAME>_FILE` instead of `<NAME>`; they are never echoed.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.forwarded import TRUST_NONE, TrustProxy, parse_trust_proxy

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


@dataclass(frozen=True, slots=True)
class OidcConfig:
    """Dashboard login with an OIDC provider (`GIG_OIDC_*`); None in `Config.oidc` when not configured."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_url: str
    roles_claim: str = "urn:zitadel:iam:org:project:roles"
    admin_role: str = "admin"
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    session_ttl_s: float = 8 * 3600.0


@dataclass(frozen=True, slots=True)
class Config:
    listen_host: str
    listen_port: int
    data_dir: Path
    db_path: Path
    bearer_token: str
    registry_dir: Path
    public_url: str
    allowed_origins: tuple[str, ...]
    allowed_hosts: tuple[str, ...]
    max_body_bytes: int
    call_timeout_s: float
    idle_timeout_s: float
    fast_path: bool
    max_live_sandboxes: int
    sandbox_uid: int
    sandbox_gid: int
    sandbox_python: str
    install: tuple[str, ...]
    spawn_timeout_s: float
    log_level: str
    debug_endpoints: bool
    unprefixed_servers: tuple[str, ...] = field(default=())
    egress_enabled: bool = True
    egress_subnet: str = "10.88.0.0/16"
    proxy_port: int = 3128
    upstream_ca_file: str | None = None
    egress_test_overrides: tuple[tuple[str, str], ...] = ()
    node_runtime_dir: str | None = None
    egress_if_prefix: str = "gsb"
    server_config: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # A signed index (file:// or https://) verified with `registry_pubkey`; None: read `registry_dir` as is.
    registry_index_url: str | None = None
    registry_pubkey: str = ""
    oidc: OidcConfig | None = None
    # Direct TLS (gateway/tls.py); all None: plain HTTP, e.g. behind a TLS-terminating proxy.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_key_passphrase: str | None = field(default=None, repr=False)
    tls_client_ca_file: str | None = None
    trust_proxy: TrustProxy = TRUST_NONE
    # Token buckets (gateway/ratelimit.py): tools/call per token and profile (0: unlimited), and the
    # login/token routes per client address.
    rate_limit_rps: float = 0.0
    rate_limit_burst: int = 20
    auth_rate_limit_rps: float = 5.0
    auth_rate_limit_burst: int = 100
    metrics_public: bool = False
    read_only: bool = False
    safe_mode: bool = False

    @property
    def servers_dir(self) -> Path:
        return self.data_dir / "servers"


def _get(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = env.get(name)
    if value is None or value == "":
        return default
    return value


def _secret(env: Mapping[str, str], name: str, *, required: bool) -> str | None:
    direct = _get(env, name)
    file_name = _get(env, f"{name}_FILE")
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
    if direct:
        return direct.strip()
    if required:
        raise ConfigError(f"{name} (or {name}_FILE) is required")
    return None


def _int(env: Mapping[str, str], name: str, default: int, *, lo: int, hi: int) -> int:
    raw = _get(env, name, str(default))
    assert raw is not None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}: {value} is out of range {lo}..{hi}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, lo: float, hi: float) -> float:
    raw = _get(env, name, str(default))
    assert raw is not None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number of seconds, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}: {value} is out of range {lo}..{hi}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (_get(env, name) or "").lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: expected true or false, got {raw!r}")


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = _get(env, name, "") or ""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def parse_listen(value: str) -> tuple[str, int]:
    """`:8080`, `127.0.0.1:8080`, `[::1]:8080` → (host, port); an empty host means all interfaces."""
    host, sep, port_s = value.rpartition(":")
    if not sep:
        raise ConfigError(f"GIG_LISTEN: expected HOST:PORT or :PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    try:
        port = int(port_s)
    except ValueError:
        raise ConfigError(f"GIG_LISTEN: port {port_s!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"GIG_LISTEN: port {port} is out of range")
    if host not in ("localhost", "0.0.0.0"):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"GIG_LISTEN: {host!r} is not an IP address") from None
    return host, port


def _sandbox_ids(env: Mapping[str, str]) -> tuple[int, int]:
    user = _get(env, "GIG_SANDBOX_USER", "gigmcp-sb")
    assert user is not None
    try:
        entry = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
    except KeyError:
        if user.isdigit():
            return int(user), int(user)
        # A missing dedicated user falls back to nobody, which is still unprivileged.
        try:
            entry = pwd.getpwnam("nobody")
        except KeyError:
            raise ConfigError(f"GIG_SANDBOX_USER: no such user {user!r} and no 'nobody'") from None
    if entry.pw_uid == 0:
        raise ConfigError("GIG_SANDBOX_USER: must not be root (bwrap run as root keeps host root inside)")
    return entry.pw_uid, entry.pw_gid


def _sandbox_python(env: Mapping[str, str]) -> str:
    explicit = _get(env, "GIG_SANDBOX_PYTHON")
    candidates = [explicit] if explicit else ["/usr/bin/python3", "/usr/local/bin/python3"]
    for candidate in candidates:
        assert candidate is not None
        # Only interpreters under /usr are visible inside a sandbox (it binds /usr read-only).
        if candidate.startswith("/usr/") and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigError(
        "GIG_SANDBOX_PYTHON: no Python under /usr for sandboxed servers (apt-get install python3 python3-venv)"
    )


def _readable(env: Mapping[str, str], name: str) -> str | None:
    path = _get(env, name)
    if path is None:
        return None
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{name}: cannot read {path}")
    return path


def _server_config(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """`GIG_SERVER_CONFIG_<SERVER>__<PARAM>=value` for boot installs, e.g. GIG_SERVER_CONFIG_GITLAB__GITLAB_URL."""
    out: dict[str, dict[str, str]] = {}
    prefix = "GIG_SERVER_CONFIG_"
    for key, value in env.items():
        if not key.startswith(prefix):
            continue
        server, sep, param = key[len(prefix):].partition("__")
        if not sep or not server or not param:
            raise ConfigError(f"{key}: expected GIG_SERVER_CONFIG_<SERVER>__<PARAMETER>")
        out.setdefault(server.lower().replace("_", "-"), {})[param.lower()] = value
    return out


def _if_prefix(env: Mapping[str, str]) -> str:
    # Two gateways on one host (tests, staging) need their own interface names and firewall table.
    prefix = _get(env, "GIG_EGRESS_IF_PREFIX", "gsb") or "gsb"
    if not (prefix.isascii() and prefix.isalnum() and prefix[0].isalpha() and len(prefix) <= 6):
        raise ConfigError(f"GIG_EGRESS_IF_PREFIX: {prefix!r} must be 1-6 letters or digits, starting with a letter")
    return prefix


def _node_runtime(env: Mapping[str, str]) -> str | None:
    explicit = _get(env, "GIG_NODE_RUNTIME_DIR")
    path = Path(explicit) if explicit else REPO_ROOT / "runtime" / "node"
    if (path / "node_modules" / "undici" / "package.json").is_file():
        return str(path)
    if explicit:
        raise ConfigError(f"GIG_NODE_RUNTIME_DIR: {path} has no node_modules/undici (run npm ci there)")
    return None


def _subnet(env: Mapping[str, str]) -> str:
    raw = _get(env, "GIG_EGRESS_SUBNET", "10.88.0.0/16") or ""
    try:
        net = ipaddress.ip_network(raw)
    except ValueError:
        raise ConfigError(f"GIG_EGRESS_SUBNET: {raw!r} is not an IPv4 network") from None
    if not isinstance(net, ipaddress.IPv4Network) or net.prefixlen > 28:
        raise ConfigError(f"GIG_EGRESS_SUBNET: {raw!r} must be an IPv4 network of /28 or larger")
    return str(net)


def _overrides(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in _list(env, "GIG_TEST_EGRESS_OVERRIDES"):
        name, sep, address = item.partition("=")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ConfigError(f"GIG_TEST_EGRESS_OVERRIDES: expected name=ip, got {item!r}") from None
        if not sep or not name:
            raise ConfigError(f"GIG_TEST_EGRESS_OVERRIDES: expected name=ip, got {item!r}")
        out.append((name.lower(), address))
    return tuple(out)


def _registry_index(env: Mapping[str, str]) -> tuple[str | None, str]:
    """The signed index to read, and the one public key trusted to sign it.

    An explicit `GIG_REGISTRY_INDEX_URL` wins; else `GIG_REGISTRY_DIR` (development, tests) is read as
    is; else the bundled index, signed by the key whose public half ships in `registry/keys/`.
    """
    url = _get(env, "GIG_REGISTRY_INDEX_URL")
    if url is None and _get(env, "GIG_REGISTRY_DIR") is not None:
        return None, ""
    if url is None:
        url = (REPO_ROOT / "registry" / "index.json").as_uri()
    if not url.startswith(("file://", "https://")):
        raise ConfigError(f"GIG_REGISTRY_INDEX_URL: must start with file:// or https://, got {url!r}")
    pubkey = _get(env, "GIG_REGISTRY_PUBKEY")
    if pubkey is None:
        try:
            pubkey = (REPO_ROOT / "registry" / "keys" / "registry-ed25519.pub").read_text().strip()
        except OSError as exc:
            raise ConfigError(f"GIG_REGISTRY_PUBKEY: not set and the bundled key is unreadable: {exc}") from None
    if len(pubkey) != 64 or any(c not in "0123456789abcdefABCDEF" for c in pubkey):
        raise ConfigError("GIG_REGISTRY_PUBKEY: expected an ed25519 public key as 64 hex digits")
    return url, pubkey.lower()


def _oidc(env: Mapping[str, str], public_url: str) -> OidcConfig | None:
    issuer = _get(env, "GIG_OIDC_ISSUER")
    if issuer is None:
        return None
    issuer = issuer.rstrip("/")
    local = issuer.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
    if not (issuer.startswith("https://") or local or _bool(env, "GIG_OIDC_ALLOW_HTTP", False)):
        raise ConfigError(f"GIG_OIDC_ISSUER: must be https:// (http:// only on loopback or with "
                          f"GIG_OIDC_ALLOW_HTTP=true for development), got {issuer!r}")
    client_id = _get(env, "GIG_OIDC_CLIENT_ID")
    if client_id is None:
        raise ConfigError("GIG_OIDC_CLIENT_ID is required when GIG_OIDC_ISSUER is set")
    secret = _secret(env, "GIG_OIDC_CLIENT_SECRET", required=True)
    assert secret is not None
    redirect = _get(env, "GIG_OIDC_REDIRECT_URL", f"{public_url}/auth/callback") or ""
    if not redirect.startswith(("http://", "https://")):
        raise ConfigError(f"GIG_OIDC_REDIRECT_URL: must be an http(s) URL, got {redirect!r}")
    scopes = tuple((_get(env, "GIG_OIDC_SCOPES", "openid profile email") or "").split())
    if "openid" not in scopes:
        raise ConfigError("GIG_OIDC_SCOPES: must include openid")
    return OidcConfig(
        issuer=issuer, client_id=client_id, client_secret=secret, redirect_url=redirect,
        roles_claim=_get(env, "GIG_OIDC_ROLES_CLAIM", "urn:zitadel:iam:org:project:roles") or "",
        admin_role=_get(env, "GIG_OIDC_ADMIN_ROLE", "admin") or "admin",
        scopes=scopes,
        session_ttl_s=_float(env, "GIG_SESSION_TTL", 8 * 3600.0, lo=60.0, hi=86400.0 * 30),
    )


def _tls(env: Mapping[str, str]) -> tuple[str | None, str | None, str | None, str | None]:
    cert, key = _get(env, "GIG_TLS_CERT_FILE"), _get(env, "GIG_TLS_KEY_FILE")
    passphrase = _secret(env, "GIG_TLS_KEY_PASSPHRASE", required=False)
    client_ca = _get(env, "GIG_TLS_CLIENT_CA_FILE")
    if cert and not key:
        raise ConfigError("GIG_TLS_KEY_FILE: required when GIG_TLS_CERT_FILE is set")
    if key and not cert:
        raise ConfigError("GIG_TLS_CERT_FILE: required when GIG_TLS_KEY_FILE is set")
    if not cert and (passphrase or client_ca):
        name = "GIG_TLS_KEY_PASSPHRASE" if passphrase else "GIG_TLS_CLIENT_CA_FILE"
        raise ConfigError(f"{name}: only meaningful with GIG_TLS_CERT_FILE and GIG_TLS_KEY_FILE")
    return cert, key, passphrase, client_ca


def _trust_proxy(env: Mapping[str, str]) -> TrustProxy:
    try:
        return parse_trust_proxy(_get(env, "GIG_TRUST_PROXY", "false") or "false")
    except ValueError as exc:
        raise ConfigError(f"GIG_TRUST_PROXY: {exc}") from None


def load_config(env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    host, port = parse_listen(_get(env, "GIG_LISTEN", ":8080") or ":8080")
    data_dir = Path(_get(env, "GIG_DATA_DIR", "/var/lib/gigmcp") or "/var/lib/gigmcp")
    if not data_dir.is_absolute():
        raise ConfigError(f"GIG_DATA_DIR: must be an absolute path, got {str(data_dir)!r}")
    db_path = Path(_get(env, "GIG_DB_PATH", str(data_dir / "gigmcp.db")) or "")
    token = _secret(env, "GIG_BEARER_TOKEN", required=True)
    assert token is not None
    if len(token) < 16:
        raise ConfigError("GIG_BEARER_TOKEN: must be at least 16 characters")
    registry_dir = Path(_get(env, "GIG_REGISTRY_DIR", str(REPO_ROOT / "registry")) or "")
    if not (registry_dir / "servers").is_dir():
        raise ConfigError(f"GIG_REGISTRY_DIR: {registry_dir} has no servers/ directory")
    index_url, pubkey = _registry_index(env)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    public_url = (_get(env, "GIG_PUBLIC_URL", f"http://{shown_host}:{port}") or "").rstrip("/")
    if not public_url.startswith(("http://", "https://")):
        raise ConfigError(f"GIG_PUBLIC_URL: must start with http:// or https://, got {public_url!r}")
    uid, gid = _sandbox_ids(env)
    level = (_get(env, "GIG_LOG_LEVEL", "info") or "info").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"GIG_LOG_LEVEL: expected debug, info, warning or error, got {level.lower()!r}")
    tls_cert, tls_key, tls_passphrase, tls_client_ca = _tls(env)
    return Config(
        listen_host=host,
        listen_port=port,
        data_dir=data_dir,
        db_path=db_path,
        bearer_token=token,
        registry_dir=registry_dir,
        public_url=public_url,
        allowed_origins=_list(env, "GIG_ALLOWED_ORIGINS"),
        allowed_hosts=_list(env, "GIG_ALLOWED_HOSTS"),
        max_body_bytes=_int(env, "GIG_MAX_BODY_BYTES", 4 * 1024 * 1024, lo=1024, hi=256 * 1024 * 1024),
        call_timeout_s=_float(env, "GIG_CALL_TIMEOUT", 120.0, lo=0.1, hi=3600.0),
        fast_path=_bool(env, "GIG_FAST_PATH", True),
        idle_timeout_s=_float(env, "GIG_IDLE_TIMEOUT", 600.0, lo=0.1, hi=86400.0 * 7),
        max_live_sandboxes=_int(env, "GIG_MAX_SANDBOXES", 200, lo=1, hi=10000),
        sandbox_uid=uid,
        sandbox_gid=gid,
        sandbox_python=_sandbox_python(env),
        install=_list(env, "GIG_INSTALL"),
        spawn_timeout_s=_float(env, "GIG_SPAWN_TIMEOUT", 30.0, lo=1.0, hi=600.0),
        log_level=level,
        debug_endpoints=_bool(env, "GIG_DEBUG_ENDPOINTS", False),
        unprefixed_servers=_list(env, "GIG_UNPREFIXED_SERVERS"),
        egress_enabled=_bool(env, "GIG_EGRESS", True),
        egress_subnet=_subnet(env),
        proxy_port=_int(env, "GIG_PROXY_PORT", 3128, lo=1, hi=65535),
        upstream_ca_file=_readable(env, "GIG_UPSTREAM_CA_FILE"),
        egress_test_overrides=_overrides(env),
        node_runtime_dir=_node_runtime(env),
        egress_if_prefix=_if_prefix(env),
        server_config=_server_config(env),
        registry_index_url=index_url,
        registry_pubkey=pubkey,
        oidc=_oidc(env, public_url),
        tls_cert_file=tls_cert,
        tls_key_file=tls_key,
        tls_key_passphrase=tls_passphrase,
        tls_client_ca_file=tls_client_ca,
        trust_proxy=_trust_proxy(env),
        rate_limit_rps=_float(env, "GIG_RATE_LIMIT_RPS", 0.0, lo=0.0, hi=100_000.0),
        rate_limit_burst=_int(env, "GIG_RATE_LIMIT_BURST", 20, lo=1, hi=1_000_000),
        auth_rate_limit_rps=_float(env, "GIG_AUTH_RATE_LIMIT_RPS", 5.0, lo=0.0, hi=100_000.0),
        auth_rate_limit_burst=_int(env, "GIG_AUTH_RATE_LIMIT_BURST", 100, lo=1, hi=1_000_000),
        metrics_public=_bool(env, "GIG_METRICS_PUBLIC", False),
        read_only=_bool(env, "GIG_READ_ONLY", False),
        safe_mode=_bool(env, "GIG_SAFE_MODE", False),
    )
