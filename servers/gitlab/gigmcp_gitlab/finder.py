"""Deterministic keyword ranking of actions for the dynamic surface's find step."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .actions import Action

SYNONYMS: dict[str, tuple[str, ...]] = {
    "mr": ("merge", "request", "mr"),
    "pr": ("merge", "request", "mr"),
    "pull": ("merge", "request", "mr"),
    "ci": ("pipeline", "job"),
    "build": ("pipeline", "job"),
    "log": ("log", "trace"),
    "trace": ("log",),
    "output": ("log",),
    "comment": ("note", "comment", "discussion"),
    "reply": ("reply", "discussion", "note"),
    "review": ("review", "diff", "comment", "approve", "changed"),
    "diff": ("diff", "changed", "compare"),
    "change": ("changed", "diff", "update"),
    "code": ("file", "blob", "repository"),
    "repo": ("project", "repository"),
    "secret": ("variable",),
    "env": ("environment", "variable"),
    "whoami": ("current", "user"),
    "me": ("current", "user"),
    "remove": ("delete",),
    "show": ("get",),
    "fetch": ("get",),
    "read": ("get", "read"),
    "view": ("get",),
    "detail": ("get",),
    "new": ("create",),
    "add": ("create", "add"),
    "open": ("create", "opened"),
    "edit": ("update", "edit"),
    "modify": ("update",),
    "fail": ("failed", "job", "log"),
    "failing": ("failed", "job", "log"),
    "broken": ("failed", "job"),
    "rerun": ("retry",),
    "restart": ("retry",),
    "ticket": ("issue",),
    "bug": ("issue",),
    "thread": ("discussion",),
    "inline": ("inline", "line"),
    "line": ("inline", "line"),
    "deploy": ("deployment", "environment"),
    "last": ("latest",),
    "find": ("search", "list"),
    "all": ("list",),
    "merge": ("merge",),
    "accept": ("merge",),
    "lgtm": ("approve",),
    "write": ("create", "update"),
    "upload": ("create",),
    "download": ("artifact", "file"),
}
_WORD = re.compile(r"[a-z0-9]+")


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower())]


@dataclass(frozen=True)
class Match:
    action: Action
    score: float


class Finder:
    """Inverted index over action names, domains, summaries, aliases and parameter names."""

    def __init__(self, actions: Sequence[Action]) -> None:
        self.actions = list(actions)
        self._index: list[tuple[Action, dict[str, float]]] = []
        for a in self.actions:
            weights: dict[str, float] = {}
            fields: Iterable[tuple[str, float]] = (
                (a.name.replace("_", " "), 5.0),
                (a.domain.replace("_", " "), 3.0),
                (" ".join(a.aliases), 4.0),
                (a.summary, 2.0),
                (" ".join(p.name.replace("_", " ") for p in a.params), 0.5),
            )
            for text, weight in fields:
                for tok in tokens(text):
                    weights[tok] = max(weights.get(tok, 0.0), weight)
            self._index.append((a, weights))

    def search(self, query: str, domain: str = "", limit: int = 5) -> list[Match]:
        q = query.strip().lower()
        exact = q.replace(" ", "_").replace("gitlab_", "")
        terms: dict[str, float] = {}
        for tok in tokens(q):
            terms[tok] = max(terms.get(tok, 0.0), 1.0)
            for syn in SYNONYMS.get(tok, ()):
                for s in tokens(syn):
                    terms[s] = max(terms.get(s, 0.0), 0.7)
        results: list[Match] = []
        for action, weights in self._index:
            if domain and action.domain != domain:
                continue
            score = sum(w * weights.get(t, 0.0) for t, w in terms.items())
            if exact == action.name:
                score += 100.0
            if score > 0 or (domain and not q):
                # Reads first on ties: they are safe to try.
                results.append(Match(action, score + (0.01 if action.read_only else 0.0)))
        results.sort(key=lambda m: (-m.score, m.action.name))
        return results[: max(1, limit)] if q else results


def example(action: Action) -> dict[str, Any]:
    """A plausible call with only the required parameters filled in."""
    params: dict[str, Any] = {}
    for p in action.params:
        if not p.required:
            continue
        if p.ref == "project":
            params[p.name] = "group/project"
        elif p.ref == "group":
            params[p.name] = "group"
        elif p.type == "integer":
            params[p.name] = 1
        elif p.type == "boolean":
            params[p.name] = True
        elif p.type == "array":
            item_type = (p.items or {}).get("type", "string")
            params[p.name] = [{}] if item_type == "object" else (["value"] if item_type == "string" else [1])
        elif p.enum:
            params[p.name] = p.enum[0]
        else:
            params[p.name] = f"<{p.name}>"
    return params
