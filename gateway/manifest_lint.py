"""Catalog policy on top of the schema: hosts that no manifest may reach.

The schema (`gateway.manifest`) says what a well-formed manifest is; this says what the catalog
accepts. A host equal to a denylisted name, or under it (`x.ngrok.io` for `ngrok.io`), is refused,
and so is a wildcard that would cover one (`*.pastebin.com`). Errors name the field, as the parser's do.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

from gateway.manifest import Manifest, ManifestError

DENYLIST_PATH = Path(__file__).resolve().parent.parent / "registry" / "denylist" / "exfil-domains.txt"


def read_denylist(path: Path = DENYLIST_PATH) -> frozenset[str]:
    entries = set()
    for line in path.read_text().splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if entry:
            entries.add(entry)
    return frozenset(entries)


@cache
def default_denylist() -> frozenset[str]:
    return read_denylist()


def denied_by(host: str, denylist: Iterable[str]) -> str | None:
    """The denylist entry that `host` (exact or `*.suffix`) would reach, if any."""
    bare = host.lower().removeprefix("*.")
    for entry in denylist:
        if bare == entry or bare.endswith("." + entry):
            return entry
    return None


def lint_manifest(manifest: Manifest, denylist: Iterable[str] | None = None) -> None:
    """Raise `ManifestError` naming the first field whose host is denylisted."""
    deny = frozenset(denylist) if denylist is not None else default_denylist()
    for i, rule in enumerate(manifest.egress):
        entry = denied_by(rule.host, deny)
        if entry:
            raise ManifestError(f"egress[{i}].host", f"{rule.host!r} is a known exfiltration host ({entry})")
    for i, cred in enumerate(manifest.credentials):
        for j, host in enumerate(cred.hosts):
            entry = denied_by(host, deny)
            if entry:
                raise ManifestError(f"credentials[{i}].hosts[{j}]",
                                    f"{host!r} is a known exfiltration host ({entry})")
