"""Consent, the pure part: what changed between the manifest a user approved and the current one.

Works on manifest *data* (`Manifest.to_data()` or the stored JSON), not on the dataclass, so that a
field a later manifest version adds (credentials, config parameters) is compared without this module
having to change in lockstep. No I/O here: the store records consents, `gateway.access` enforces them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.supervisor import Unavailable

# Security-relevant fields reported as a before/after pair when they differ (hosts, credentials and
# tools are reported as added/removed sets instead).
COMPARED_FIELDS = ("version", "runtime", "command", "package", "env", "limits")


class ConsentRequired(Unavailable):
    """The profile's owner has not approved the server's current manifest; nothing was started.

    An `Unavailable` so that the MCP front door reports it like any server that cannot start, with
    this message (which says what to approve and how) as the JSON-RPC error.
    """

    def __init__(self, server: str, version: str, runtime_hash: str, *, approved_version: str | None = None) -> None:
        self.server = server
        self.runtime_hash = runtime_hash
        changed = f"; its manifest changed since you approved {approved_version}" if approved_version else ""
        super().__init__(
            f"consent required: approve server '{server}' {version} (hash {runtime_hash[:12]}){changed} "
            f"with `gigmcp consent grant {server}` or POST /api/consent/{server}"
        )


@dataclass(frozen=True, slots=True)
class ManifestDiff:
    hosts_added: tuple[str, ...] = ()
    hosts_removed: tuple[str, ...] = ()
    hosts_changed: tuple[str, ...] = ()  # same host, different ports, methods or paths
    credentials_added: tuple[str, ...] = ()
    credentials_removed: tuple[str, ...] = ()
    credentials_changed: tuple[str, ...] = ()
    tools_added: tuple[str, ...] = ()
    tools_removed: tuple[str, ...] = ()
    changes: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (before, after)

    @property
    def empty(self) -> bool:
        return not any((
            self.hosts_added, self.hosts_removed, self.hosts_changed,
            self.credentials_added, self.credentials_removed, self.credentials_changed,
            self.tools_added, self.tools_removed, self.changes,
        ))

    def to_data(self) -> dict[str, Any]:
        return {
            "hosts_added": list(self.hosts_added),
            "hosts_removed": list(self.hosts_removed),
            "hosts_changed": list(self.hosts_changed),
            "credentials_added": list(self.credentials_added),
            "credentials_removed": list(self.credentials_removed),
            "credentials_changed": list(self.credentials_changed),
            "tools_added": list(self.tools_added),
            "tools_removed": list(self.tools_removed),
            "changes": {name: {"from": before, "to": after} for name, (before, after) in self.changes.items()},
        }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return list(value) if isinstance(value, list) else []


def _hosts(data: Mapping[str, Any]) -> dict[str, str]:
    """host -> canonical form of every rule for that host (a host may have several entries)."""
    rules: dict[str, list[str]] = {}
    for entry in _list(data, "egress"):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("host"), str):
            continue
        rule = {
            "ports": sorted(entry.get("ports") or [443]),
            "methods": sorted(entry.get("methods") or []),
            "paths": sorted(entry.get("paths") or []),
        }
        rules.setdefault(str(entry["host"]).lower(), []).append(_canonical(rule))
    return {host: _canonical(sorted(forms)) for host, forms in rules.items()}


def _credentials(data: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in _list(data, "credentials"):
        if isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
            out[str(entry["id"])] = _canonical(dict(entry))
    return out


def _tools(data: Mapping[str, Any]) -> set[str]:
    return {str(t["name"]) for t in _list(data, "tools") if isinstance(t, Mapping) and isinstance(t.get("name"), str)}


def _keyed_diff(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[tuple[str, ...], ...]:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return tuple(added), tuple(removed), tuple(changed)


def _sorted(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(items))


def diff_manifests(approved: Mapping[str, Any] | None, current: Mapping[str, Any]) -> ManifestDiff:
    """What `current` adds, removes or changes relative to `approved` (None: nothing was approved yet)."""
    before = approved if approved is not None else {}
    hosts = _keyed_diff(_hosts(before), _hosts(current))
    creds = _keyed_diff(_credentials(before), _credentials(current))
    tools_before, tools_after = _tools(before), _tools(current)
    changes: dict[str, tuple[Any, Any]] = {}
    if approved is not None:
        for name in COMPARED_FIELDS:
            if _canonical(before.get(name)) != _canonical(current.get(name)):
                changes[name] = (before.get(name), current.get(name))
    return ManifestDiff(
        hosts_added=hosts[0],
        hosts_removed=hosts[1],
        hosts_changed=hosts[2],
        credentials_added=creds[0],
        credentials_removed=creds[1],
        credentials_changed=creds[2],
        tools_added=_sorted(tools_after - tools_before),
        tools_removed=_sorted(tools_before - tools_after),
        changes=changes,
    )
