"""Config parameters of a manifest, and their values templated into the rest of it.

A manifest may declare parameters (`config: [{name: gitlab_url, type: url, default: ...}]`). At
install time each gets a value (the default, or one the admin gives), and every string of the
manifest may use it: `{gitlab_url}`, and for a URL also `{gitlab_url.host}`, `{gitlab_url.port}`,
`{gitlab_url.origin}` and `{gitlab_url.path}`. Egress rules and credential hosts are templated
too, so one install per GitLab instance reaches exactly that instance; the resolved manifest (and
so the runtime hash that consent is bound to) names the real host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from gateway.manifest import ManifestError

PARAM_TYPES = ("string", "url", "integer", "boolean")
RESERVED = "secret"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
PLACEHOLDER_RE = re.compile(r"\{([a-z][a-z0-9_]{0,31})(?:\.(host|port|origin|path))?\}")


def parse_params(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The `config` section, validated: name -> {type, default?, description}."""
    section = data.get("config", []) or []
    if not isinstance(section, list):
        raise ManifestError("config", "expected a list")
    params: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(section):
        path = f"config[{i}]"
        if not isinstance(item, Mapping):
            raise ManifestError(path, "expected a mapping")
        for key in item:
            if key not in ("name", "type", "default", "description", "required"):
                raise ManifestError(f"{path}.{key}", "unknown field")
        name = item.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name) or name == RESERVED:
            raise ManifestError(f"{path}.name", "expected a lowercase name (letters, digits, '_'), not 'secret'")
        kind = item.get("type", "string")
        if kind not in PARAM_TYPES:
            raise ManifestError(f"{path}.type", f"{kind!r} is not one of {', '.join(PARAM_TYPES)}")
        if name in params:
            raise ManifestError(f"{path}.name", f"duplicate parameter {name!r}")
        entry: dict[str, Any] = {"type": kind, "description": str(item.get("description", ""))}
        if "default" in item:
            entry["default"] = coerce(name, kind, item["default"], f"{path}.default")
        params[name] = entry
    return params


def coerce(name: str, kind: str, value: Any, path: str) -> Any:
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ManifestError(path, f"{name}: expected a whole number")
        try:
            return int(value)
        except ValueError:
            raise ManifestError(path, f"{name}: expected a whole number") from None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise ManifestError(path, f"{name}: expected true or false")
    if not isinstance(value, str) or not value:
        raise ManifestError(path, f"{name}: expected a non-empty string")
    if kind == "url":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ManifestError(path, f"{name}: {value!r} is not an http(s) URL without query")
    return value


def values_for(params: Mapping[str, dict[str, Any]], given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overlaid by given values; unknown or missing values are errors naming the parameter."""
    for name in given:
        if name not in params:
            raise ManifestError(f"config.{name}", "no such parameter")
    values: dict[str, Any] = {}
    for name, spec in params.items():
        if name in given:
            values[name] = coerce(name, spec["type"], given[name], f"config.{name}")
        elif "default" in spec:
            values[name] = spec["default"]
        else:
            raise ManifestError(f"config.{name}", "a value is required (no default)")
    return values


def _derived(value: Any, part: str | None, name: str) -> str:
    if part is None:
        return str(value).rstrip("/") if isinstance(value, str) else str(value).lower()
    parts = urlsplit(str(value))
    if parts.hostname is None:
        raise ManifestError("config", f"{{{name}.{part}}} needs a URL parameter")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {
        "host": parts.hostname.lower(),
        "port": str(port),
        "origin": f"{parts.scheme}://{parts.netloc}".lower(),
        "path": parts.path.rstrip("/"),
    }[part]


def render(data: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest data with every `{param}` replaced; `config` itself is kept as declared."""

    def sub(node: Any, path: str) -> Any:
        if isinstance(node, str):
            def repl(match: re.Match[str]) -> str:
                name, part = match.group(1), match.group(2)
                if name == RESERVED:
                    return match.group(0)  # credential formats keep {secret} for the proxy
                if name not in values:
                    raise ManifestError(path, f"unknown parameter {{{name}}}")
                return _derived(values[name], part, name)

            text = PLACEHOLDER_RE.sub(repl, node)
            # A port written as a template ("{url.port}") becomes the number the schema expects.
            return int(text) if path.endswith("]") and ".ports[" in path and text.isdigit() else text
        if isinstance(node, list):
            return [sub(v, f"{path}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, Mapping):
            return {k: (v if k == "config" and not path else sub(v, f"{path}.{k}" if path else str(k)))
                    for k, v in node.items()}
        return node

    out = sub(data, "")
    assert isinstance(out, dict)
    return out
