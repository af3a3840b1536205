"""Server manifests: strict parsing of the YAML a server ships with into frozen dataclasses.

Unknown fields are errors, and every error names the field path (`tools[2].name`). The runtime
hash covers everything that matters for security, so consent can be bound to it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")  # no "_": it separates server and tool names
# Semantic versioning: no leading zeros, no "v" prefix, optional pre-release and build parts.
VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
TOOL_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
RUNTIMES = ("python", "node", "binary")
SCHEMA_VERSION = 1
CATEGORIES = ("ai", "analytics", "comms", "crm", "data", "design", "dev-tools", "documents", "finance",
              "knowledge", "productivity", "search", "storage", "support", "testing", "web")
# A hostname label; an egress host is labels joined by dots (templates are rendered before parsing).
LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
INTEGRITY_RE = re.compile(r"^sha512-[A-Za-z0-9+/]{86}==$")
PYPI_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[0-9A-Za-z.!+-]+$")
NPM_RE = re.compile(r"^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*@[0-9A-Za-z.+-]+$")
REL_PATH_RE = re.compile(r"^[A-Za-z0-9._/-]+$")


class ManifestError(ValueError):
    """A manifest is invalid; `path` names the offending field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


@dataclass(frozen=True, slots=True)
class PackageSource:
    """Where a server's code comes from; exactly one of path, pypi, npm, file and url is set."""

    path: str = ""  # a local source directory (python), relative to the registry's repository root
    pypi: str = ""  # "name==version"
    hashes: tuple[str, ...] = ()  # sha256 of the artifact (pypi, file, url) or tree-sha256 of a path
    npm: str = ""  # "name@version" or "@scope/name@version"
    integrity: str = ""  # npm: the tarball's sha512 SRI, as `npm view NAME@VERSION dist.integrity` prints
    file: str = ""  # a local wheel (python), npm tarball (node) or executable (binary), relative to the registry
    url: str = ""  # binary: an https URL of the executable
    lock: str = ""  # the dependency lock (requirements with hashes / package-lock.json), relative to the registry
    lock_sha256: str = ""  # "sha256:..." of the lock's content, filled in when the catalog reads the lock

    def hash_data(self) -> dict[str, Any]:
        # The fields of the first schema always, later ones only when set: existing hashes (and consents) stay.
        return {k: v for k, v in asdict(self).items() if k in ("path", "pypi", "hashes") or v}

    @property
    def kind(self) -> str:
        return next(k for k in ("path", "pypi", "npm", "file", "url") if getattr(self, k))


@dataclass(frozen=True, slots=True)
class ToolEntry:
    name: str
    default: bool = True


@dataclass(frozen=True, slots=True)
class LimitsEntry:
    memory_mb: int = 512
    pids: int = 128
    cpu_percent: int = 100


@dataclass(frozen=True, slots=True)
class EgressEntry:
    host: str
    ports: tuple[int, ...] = (443,)
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()


CREDENTIAL_TYPES = ("api_key", "basic", "oauth2", "none")
ENV_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
HEADER_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")


@dataclass(frozen=True, slots=True)
class CredentialEntry:
    """A secret the server needs. The sandbox only ever sees a placeholder in `env`; the egress proxy
    swaps it for the real secret toward `hosts`, as `header` (with `format`) or as query parameter `query`."""

    id: str
    type: str
    hosts: tuple[str, ...]
    env: str = ""
    header: str = ""
    format: str = "{secret}"
    query: str = ""
    description: str = ""
    vendor: str = ""  # type oauth2: the OAuth vendor whose connected account supplies the token


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    version: str
    description: str
    runtime: str
    command: tuple[str, ...]
    package: PackageSource
    tools: tuple[ToolEntry, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    limits: LimitsEntry = field(default_factory=LimitsEntry)
    egress: tuple[EgressEntry, ...] = ()
    display_name: str = ""
    credentials: tuple[CredentialEntry, ...] = ()
    config_values: Mapping[str, Any] = field(default_factory=dict)  # the install's parameter values
    category: str = ""
    data_dir: str = ""  # where a writable per-(server, profile) directory appears inside the sandbox

    def runtime_hash(self) -> str:
        """SHA-256 over the security-relevant fields in a canonical JSON form."""
        relevant = {
            "name": self.name,
            "version": self.version,
            "runtime": self.runtime,
            "command": list(self.command),
            "package": self.package.hash_data(),
            "tools": sorted(t.name for t in self.tools),
            "env": dict(sorted(self.env.items())),
            "limits": asdict(self.limits),
            "egress": [asdict(e) for e in self.egress],
            # `vendor` only when set, so manifests without OAuth keep their hashes (and consents).
            "credentials": [{k: v for k, v in asdict(c).items() if k != "vendor" or v} for c in self.credentials],
            "config_values": dict(sorted(self.config_values.items())),
        }
        if self.data_dir:  # only when set, so manifests without one keep their hashes
            relevant["data_dir"] = self.data_dir
        blob = json.dumps(relevant, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def to_data(self) -> dict[str, Any]:
        """The manifest as plain data that `parse_manifest` accepts again (used to store it)."""
        package = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.package).items() if v}
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "runtime": self.runtime,
            "command": list(self.command),
            "package": package,
            "tools": [{"name": t.name, "default": t.default} for t in self.tools],
            "env": dict(self.env),
            "limits": asdict(self.limits),
            "egress": [
                {"host": e.host, "ports": list(e.ports), "methods": list(e.methods), "paths": list(e.paths)}
                for e in self.egress
            ],
        }
        if self.display_name:
            data["display_name"] = self.display_name
        if self.category:
            data["category"] = self.category
        if self.data_dir:
            data["data_dir"] = self.data_dir
        if self.config_values:
            data["config_values"] = dict(self.config_values)
        if self.credentials:
            data["credentials"] = [
                {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(c).items() if v not in ("", ())}
                | {"id": c.id, "type": c.type, "hosts": list(c.hosts)}
                for c in self.credentials
            ]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_data(), sort_keys=True)


def _expect_map(value: Any, path: str, allowed: set[str], required: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ManifestError(path, "expected a mapping")
    for key in value:
        if key not in allowed:
            raise ManifestError(f"{path}.{key}" if path else str(key), "unknown field")
    for key in sorted(required):
        if key not in value:
            raise ManifestError(f"{path}.{key}" if path else key, "required field is missing")
    return value


def _str(value: Any, path: str, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
    if not isinstance(value, str) or not value:
        raise ManifestError(path, "expected a non-empty string")
    if pattern and not pattern.match(value):
        raise ManifestError(path, f"{value!r} is not a valid {what or 'value'}")
    return value


def _int(value: Any, path: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ManifestError(path, f"expected a whole number from {lo} to {hi}")
    return value


def _str_list(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ManifestError(path, "expected a list")
    return tuple(_str(v, f"{path}[{i}]") for i, v in enumerate(value))


PACKAGE_KINDS = {"python": ("path", "pypi", "file"), "node": ("npm", "file"), "binary": ("file", "url")}


def _package(value: Any, runtime: str) -> PackageSource:
    fields = {"path", "pypi", "hashes", "npm", "integrity", "file", "url", "lock", "lock_sha256"}
    m = _expect_map(value, "package", fields, set())
    given = [k for k in ("path", "pypi", "npm", "file", "url") if k in m]
    allowed = PACKAGE_KINDS[runtime]
    if len(given) != 1 or given[0] not in allowed:
        raise ManifestError("package", f"a {runtime} server needs exactly one of {', '.join(allowed)}")
    kind = given[0]
    hashes = _str_list(m.get("hashes", []), "package.hashes")
    for i, digest in enumerate(hashes):
        if not (SHA256_RE.match(digest) or digest.startswith("tree-sha256:")):
            raise ManifestError(f"package.hashes[{i}]", f"{digest!r} is not 'sha256:<64 hex digits>'")
    needs_sha256 = kind in ("pypi", "url") or (kind == "file" and runtime != "node")
    if needs_sha256 and not any(SHA256_RE.match(h) for h in hashes):
        raise ManifestError("package.hashes", f"a {kind} package needs pinned sha256 hashes")
    integrity = str(m.get("integrity", "") or "")
    if runtime == "node":
        if not INTEGRITY_RE.match(integrity):
            raise ManifestError("package.integrity", "a node package needs its sha512 integrity ('sha512-...')")
    elif integrity:
        raise ManifestError("package.integrity", "only node packages have an npm integrity")
    pkg = PackageSource(
        path=_rel_or_abs(m["path"], "package.path") if kind == "path" else "",
        pypi=_str(m["pypi"], "package.pypi", PYPI_RE, "PyPI requirement (name==version)") if kind == "pypi" else "",
        hashes=hashes,
        npm=_str(m["npm"], "package.npm", NPM_RE, "npm package (name@version)") if kind == "npm" else "",
        integrity=integrity,
        file=_rel_or_abs(m["file"], "package.file") if kind == "file" else "",
        url=_str(m["url"], "package.url") if kind == "url" else "",
        lock=_rel_or_abs(m["lock"], "package.lock") if "lock" in m else "",
        lock_sha256=_str(m["lock_sha256"], "package.lock_sha256", SHA256_RE, "sha256") if "lock_sha256" in m else "",
    )
    if pkg.url and not pkg.url.startswith("https://"):
        raise ManifestError("package.url", "a binary is downloaded over https only")
    # Install scripts of an sdist would run on the host: Python packages are wheels, nothing else.
    if runtime == "python" and pkg.file and not pkg.file.endswith(".whl"):
        raise ManifestError("package.file", f"{pkg.file!r}: a Python package must be a wheel (.whl), not an sdist")
    if runtime == "node" and pkg.file and not pkg.file.endswith((".tgz", ".tar.gz")):
        raise ManifestError("package.file", f"{pkg.file!r}: a node package is an npm tarball (.tgz)")
    if kind == "npm" and not pkg.lock:
        raise ManifestError("package.lock", "an npm package needs its package-lock.json (installed with npm ci)")
    if pkg.lock and runtime == "binary":
        raise ManifestError("package.lock", "a binary has no dependency lock")
    return pkg


def _rel_or_abs(value: Any, path: str) -> str:
    # Local sources of tests and development registries may be absolute; catalog entries are relative.
    text = _str(value, path)
    if "\0" in text or (not text.startswith("/") and ".." in text.split("/") and path != "package.path"):
        raise ManifestError(path, f"{text!r}: expected a path inside the registry")
    return text


def _host(value: Any, path: str) -> str:
    host = _str(value, path).lower()
    if host == "*" or (host.startswith("*") and not host.startswith("*.")) or "*" in host[1:]:
        raise ManifestError(path, f"{host!r}: only exact hosts or '*.suffix' are allowed")
    bare = host[2:] if host.startswith("*.") else host
    labels = bare.split(".")
    if any(c in host for c in ":/@?#[] ") or not all(LABEL_RE.match(label) for label in labels):
        raise ManifestError(path, f"{host!r} is not a host name (no scheme, port, path or brackets)")
    if all(label.isdigit() for label in labels):
        raise ManifestError(path, f"{host!r}: IP literals are not allowed, name the host")
    if host.startswith("*.") and len(labels) < 2:
        raise ManifestError(path, f"{host!r}: a wildcard must keep at least two labels ('*.example.com')")
    return host


def _egress(value: Any) -> tuple[EgressEntry, ...]:
    if not isinstance(value, list):
        raise ManifestError("egress", "expected a list")
    out = []
    for i, item in enumerate(value):
        p = f"egress[{i}]"
        m = _expect_map(item, p, {"host", "ports", "methods", "paths"}, {"host"})
        host = _host(m["host"], f"{p}.host")
        ports = tuple(_int(v, f"{p}.ports[{j}]", 1, 65535) for j, v in enumerate(m.get("ports", [443])))
        methods = tuple(s.upper() for s in _str_list(m.get("methods", []), f"{p}.methods"))
        paths = _str_list(m.get("paths", []), f"{p}.paths")
        for j, path in enumerate(paths):
            if not path.startswith("/"):
                raise ManifestError(f"{p}.paths[{j}]", "a path prefix must start with /")
        out.append(EgressEntry(host, ports, methods, paths))
    return tuple(out)


def _credentials(value: Any, egress: tuple[EgressEntry, ...]) -> tuple[CredentialEntry, ...]:
    if not isinstance(value, list):
        raise ManifestError("credentials", "expected a list")
    out: list[CredentialEntry] = []
    for i, item in enumerate(value):
        p = f"credentials[{i}]"
        m = _expect_map(item, p, {"id", "type", "hosts", "env", "header", "format", "query", "description",
                                  "vendor"}, {"id", "type"})
        cred_id = _str(m["id"], f"{p}.id", TOOL_RE, "credential id")
        if any(c.id == cred_id for c in out):
            raise ManifestError(f"{p}.id", f"duplicate credential {cred_id!r}")
        kind = _str(m["type"], f"{p}.type")
        if kind not in CREDENTIAL_TYPES:
            raise ManifestError(f"{p}.type", f"{kind!r} is not one of {', '.join(CREDENTIAL_TYPES)}")
        hosts = tuple(h.lower() for h in _str_list(m.get("hosts", []), f"{p}.hosts"))
        if kind != "none" and not hosts:
            raise ManifestError(f"{p}.hosts", "a credential needs the hosts it may be sent to")
        for j, host in enumerate(hosts):
            # A credential for a host the server may not reach could never be used: a mistake, say so.
            if not any(e.host == host or (e.host.startswith("*.") and host.endswith(e.host[1:])) for e in egress):
                raise ManifestError(f"{p}.hosts[{j}]", f"{host!r} is not allowed by any egress rule")
        env = str(m.get("env", "") or "")
        if env and not ENV_RE.match(env):
            raise ManifestError(f"{p}.env", f"{env!r} is not an environment variable name")
        header = str(m.get("header", "") or "")
        if header and not HEADER_RE.match(header):
            raise ManifestError(f"{p}.header", f"{header!r} is not a header name")
        fmt = str(m.get("format", "{secret}") or "{secret}")
        if "{secret}" not in fmt:
            raise ManifestError(f"{p}.format", "must contain {secret}")
        query = str(m.get("query", "") or "")
        if header and query:
            raise ManifestError(f"{p}", "inject as a header or as a query parameter, not both")
        vendor = str(m.get("vendor", "") or "")
        if (kind == "oauth2") != bool(vendor):
            raise ManifestError(f"{p}.vendor", "an oauth2 credential names its OAuth vendor; other types have none")
        if vendor and not NAME_RE.match(vendor):
            raise ManifestError(f"{p}.vendor", f"{vendor!r} is not a valid OAuth vendor name")
        out.append(CredentialEntry(cred_id, kind, hosts, env, header, fmt, query, str(m.get("description", "")),
                                   vendor))
    return tuple(out)


def parse_manifest(data: Any) -> Manifest:
    top = {"schema_version", "name", "version", "description", "runtime", "command", "package", "tools", "env",
           "limits", "egress", "display_name", "credentials", "config", "config_values", "category", "data_dir"}
    m = _expect_map(data, "", top, {"name", "version", "description", "runtime", "command", "package"})
    if m.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise ManifestError("schema_version", f"this gateway reads manifest schema version {SCHEMA_VERSION}")
    runtime = _str(m["runtime"], "runtime")
    if runtime not in RUNTIMES:
        raise ManifestError("runtime", f"{runtime!r} is not one of {', '.join(RUNTIMES)}")
    category = str(m.get("category", "") or "")
    if category and category not in CATEGORIES:
        raise ManifestError("category", f"{category!r} is not one of {', '.join(CATEGORIES)}")
    data_dir = str(m.get("data_dir", "") or "")
    if data_dir and not re.fullmatch(r"/[a-z0-9_-]+(/[a-z0-9_-]+)*", data_dir):
        raise ManifestError("data_dir", f"{data_dir!r}: expected an absolute path such as /data")
    if data_dir.startswith(("/usr", "/bin", "/lib", "/etc", "/proc", "/dev", "/tmp", "/opt", "/home", "/sbin")):
        raise ManifestError("data_dir", f"{data_dir!r} is reserved by the sandbox layout; use e.g. /data")
    tools = []
    seen: set[str] = set()
    for i, item in enumerate(m.get("tools", []) or []):
        t = _expect_map(item, f"tools[{i}]", {"name", "default"}, {"name"})
        name = _str(t["name"], f"tools[{i}].name", TOOL_RE, "tool name")
        if name in seen:
            raise ManifestError(f"tools[{i}].name", f"duplicate tool {name!r}")
        seen.add(name)
        default = t.get("default", True)
        if not isinstance(default, bool):
            raise ManifestError(f"tools[{i}].default", "expected true or false")
        tools.append(ToolEntry(name, default))
    env = m.get("env", {}) or {}
    if not isinstance(env, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ManifestError("env", "expected a mapping of strings to strings")
    lim = _expect_map(m.get("limits", {}) or {}, "limits", {"memory_mb", "pids", "cpu_percent"}, set())
    limits = LimitsEntry(
        memory_mb=_int(lim.get("memory_mb", 512), "limits.memory_mb", 32, 65536),
        pids=_int(lim.get("pids", 128), "limits.pids", 8, 65536),
        cpu_percent=_int(lim.get("cpu_percent", 100), "limits.cpu_percent", 1, 6400),
    )
    from gateway.manifest_config import parse_params  # the config module builds on this one

    parse_params(m)
    config_values = m.get("config_values", {}) or {}
    if not isinstance(config_values, Mapping):
        raise ManifestError("config_values", "expected a mapping")
    egress = _egress(m.get("egress", []) or [])
    credentials = _credentials(m.get("credentials", []) or [], egress)
    command = _str_list(m["command"], "command")
    if not command:
        raise ManifestError("command", "must name at least the program")
    return Manifest(
        name=_str(m["name"], "name", NAME_RE, "server name (lowercase letters, digits, '-'; no '_')"),
        version=_str(m["version"], "version", VERSION_RE, "version (MAJOR.MINOR.PATCH)"),
        description=_str(m["description"], "description"),
        runtime=runtime,
        command=command,
        package=_package(m["package"], runtime),
        tools=tuple(tools),
        env=dict(env),
        limits=limits,
        egress=egress,
        display_name=str(m.get("display_name", "") or ""),
        credentials=credentials,
        config_values=dict(config_values),
        category=category,
        data_dir=data_dir,
    )


def load_manifest(path: Path) -> Manifest:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ManifestError("", f"{path.name}: not valid YAML: {exc}") from None
    try:
        return parse_manifest(data)
    except ManifestError as exc:
        raise ManifestError(exc.path, f"{path.name}: {exc}") from None
