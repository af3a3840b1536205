"""Parse GitLab URLs, git remotes and references (group/project!12) into paths and ids.

Accepted anywhere an id is: `https://host/g/sub/p/-/merge_requests/12`, `.../-/jobs/5`,
`git@host:g/p.git`, `g/p!12`, `g/p#3`, plain numbers and `!12`/`#3`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

# URL segment after "/-/" -> kind of object it names.
_SEGMENTS = {
    "merge_requests": "mr",
    "issues": "issue",
    "work_items": "issue",
    "pipelines": "pipeline",
    "jobs": "job",
    "commit": "commit",
    "commits": "commits",
    "blob": "blob",
    "tree": "tree",
    "snippets": "snippet",
    "tags": "tag",
    "releases": "release",
    "environments": "environment",
    "wikis": "wiki",
}
_NUMERIC = frozenset({"mr", "issue", "pipeline", "job", "snippet", "environment"})
_REFERENCE = re.compile(r"^(?P<path>[\w.\-]+(?:/[\w.\-]+)+)(?P<sigil>[!#$])(?P<num>\d+)$")
_SCP_REMOTE = re.compile(r"^[\w.\-]+@[\w.\-]+:(?P<path>[\w.\-/]+?)(?:\.git)?/?$")
_SHORT = re.compile(r"^[!#$]?(\d+)$")
_SIGILS = {"!": "mr", "#": "issue", "$": "snippet"}


@dataclass(frozen=True)
class Parsed:
    """What a URL or reference names: a namespace path and optionally one object in it."""

    path: str = ""
    kind: str = ""
    number: int | None = None
    ref: str = ""
    file_path: str = ""
    is_group: bool = False


def _split_path(path: str, base_path: str) -> str:
    path = unquote(path)
    if base_path and path.startswith(base_path + "/"):
        path = path[len(base_path) :]
    return path.strip("/")


def parse(value: str, base_path: str = "") -> Parsed | None:
    """Parse a GitLab URL, git remote or cross-project reference; None if it is none of those."""
    text = value.strip()
    m = _REFERENCE.match(text)
    if m:
        return Parsed(path=m["path"], kind=_SIGILS[m["sigil"]], number=int(m["num"]))
    m = _SCP_REMOTE.match(text)
    if m:
        return Parsed(path=m["path"].strip("/"), kind="project")
    if "://" not in text:
        return None
    parts = urlsplit(text)
    if not parts.hostname:
        return None
    path = _split_path(parts.path, base_path)
    if path.endswith(".git"):
        path = path[:-4]
    if path.startswith("groups/"):
        group_path = path[len("groups/") :].split("/-/")[0]
        return Parsed(path=group_path.strip("/"), kind="group", is_group=True)
    if path.startswith("-/snippets/"):
        num = path.split("/")[2]
        return Parsed(kind="snippet", number=int(num)) if num.isdigit() else None
    if "/-/" in path:
        namespace, rest = path.split("/-/", 1)
    else:
        namespace, rest = _legacy_split(path)
    if not rest:
        return Parsed(path=namespace, kind="project")
    segs = rest.split("/")
    kind = _SEGMENTS.get(segs[0], "")
    if not kind:
        return Parsed(path=namespace, kind="project")
    if kind in _NUMERIC:
        num = segs[1] if len(segs) > 1 else ""
        return Parsed(path=namespace, kind=kind, number=int(num) if num.isdigit() else None)
    if kind == "commit":
        return Parsed(path=namespace, kind="commit", ref=segs[1] if len(segs) > 1 else "")
    if kind in ("blob", "tree", "commits"):
        ref = segs[1] if len(segs) > 1 else ""
        return Parsed(path=namespace, kind=kind, ref=ref, file_path="/".join(segs[2:]))
    return Parsed(path=namespace, kind=kind, ref="/".join(segs[1:]))


def _legacy_split(path: str) -> tuple[str, str]:
    """URLs from GitLab < 12 lack the "/-/" separator: split at the first known resource segment."""
    segs = path.split("/")
    for idx in range(2, len(segs)):
        if segs[idx] in ("merge_requests", "issues", "pipelines", "jobs", "commit") and idx + 1 < len(segs):
            return "/".join(segs[:idx]), "/".join(segs[idx:])
    return path, ""


def number_of(value: object, kind: str, base_path: str = "") -> tuple[int | None, Parsed | None]:
    """An id or IID from an int, "12", "!12", "#12", a reference or a URL of the right kind."""
    if isinstance(value, bool):
        return None, None
    if isinstance(value, int):
        return value, None
    if isinstance(value, float) and value.is_integer():
        return int(value), None
    if not isinstance(value, str):
        return None, None
    m = _SHORT.match(value.strip())
    if m:
        return int(m.group(1)), None
    parsed = parse(value, base_path)
    if parsed is not None and parsed.kind == kind and parsed.number is not None:
        return parsed.number, parsed
    return None, parsed


def namespace_of(value: object, base_path: str = "") -> tuple[int | str | None, Parsed | None]:
    """A numeric id or a namespace path from an id, a path, a URL, a remote or a reference."""
    if isinstance(value, bool):
        return None, None
    if isinstance(value, int):
        return value, None
    if not isinstance(value, str):
        return None, None
    text = value.strip()
    if text.isdigit():
        return int(text), None
    parsed = parse(text, base_path)
    if parsed is not None:
        return (parsed.path or None), parsed
    text = unquote(text).strip("/")
    if text.endswith(".git"):
        text = text[:-4]
    return (text or None), None


def encode_segment(value: object, keep_slashes: bool = False) -> str:
    """Percent-encode one path segment; dots stay literal (some proxies reject %2E)."""
    return quote(str(value), safe="/" if keep_slashes else "")
