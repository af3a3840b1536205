"""Which actions are offered: presets, domain selection, denied actions and read-only mode, per action."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from .actions import BY_NAME, CATALOG, DOMAINS, Action
from .config import ConfigError, Settings


@dataclass(frozen=True)
class Preset:
    """A named selection: domains offered, domains limited to reads, actions denied, global read-only."""

    description: str
    domains: frozenset[str]
    read_only_domains: frozenset[str] = frozenset()
    denied: frozenset[str] = frozenset()
    read_only: bool = False


_ALL = frozenset(DOMAINS)
PRESETS: dict[str, Preset] = {
    "all": Preset("every domain, reads and writes", _ALL),
    "readonly": Preset("every domain, reads only", _ALL, read_only=True),
    "reviewer": Preset(
        "code review: MRs and review threads writable; code, CI and issues readable",
        frozenset(
            {
                "projects",
                "users",
                "merge_requests",
                "mr_review",
                "repository",
                "branches",
                "tags",
                "pipelines",
                "jobs",
                "issues",
                "labels",
                "search",
                "instance",
            }
        ),
        read_only_domains=frozenset(
            {
                "projects",
                "users",
                "repository",
                "branches",
                "tags",
                "pipelines",
                "jobs",
                "issues",
                "labels",
                "search",
                "instance",
            }
        ),
        denied=frozenset({"mr_merge", "mr_delete", "mr_close"}),
    ),
    "ci": Preset(
        "CI/CD: pipelines, jobs, variables, environments writable; code and MRs readable",
        frozenset(
            {
                "projects",
                "users",
                "pipelines",
                "jobs",
                "variables",
                "environments",
                "repository",
                "branches",
                "tags",
                "merge_requests",
                "instance",
                "search",
            }
        ),
        read_only_domains=frozenset(
            {"projects", "users", "repository", "branches", "tags", "merge_requests", "instance", "search"}
        ),
    ),
    "developer": Preset(
        "day-to-day development: everything except deleting projects and groups",
        _ALL,
        denied=frozenset({"project_delete", "group_delete", "project_transfer", "branch_delete_merged"}),
    ),
    "planner": Preset(
        "planning: issues, milestones, labels, wiki writable; MRs and code readable",
        frozenset(
            {
                "projects",
                "groups",
                "users",
                "members",
                "issues",
                "milestones",
                "labels",
                "wiki",
                "search",
                "merge_requests",
                "instance",
            }
        ),
        read_only_domains=frozenset({"projects", "groups", "users", "members", "merge_requests", "search", "instance"}),
    ),
}


class Policy:
    """Decides, per action, whether it is listed and whether it may run."""

    def __init__(self, settings: Settings) -> None:
        preset = PRESETS.get(settings.preset)
        if preset is None:
            raise ConfigError(f"GITLAB_PRESET must be one of {', '.join(PRESETS)}, got {settings.preset!r}")
        unknown = [d for d in settings.domains if d not in DOMAINS]
        if unknown:
            raise ConfigError(f"GITLAB_DOMAINS has unknown domains {unknown}; known: {', '.join(DOMAINS)}")
        bad = [a for a in settings.denied_actions if a not in BY_NAME]
        if bad:
            raise ConfigError(f"GITLAB_DENIED_ACTIONS names unknown actions: {', '.join(bad)}")
        self.preset_name = settings.preset
        self.read_only = settings.read_only or preset.read_only
        self.domains = preset.domains & settings.domains if settings.domains else preset.domains
        self.read_only_domains = preset.read_only_domains
        self.denied = preset.denied | settings.denied_actions

    def refusal(self, action: Action) -> str | None:
        """Why this action may not run, or None if it may."""
        if action.domain not in self.domains:
            return (
                f"`{action.name}` is outside the enabled domains ({self.preset_name} preset/GITLAB_DOMAINS: "
                f"{', '.join(sorted(self.domains))})."
            )
        if action.name in self.denied:
            who = f"preset {self.preset_name}, GITLAB_DENIED_ACTIONS"
            return f"`{action.name}` is denied by configuration ({who})."
        if not action.read_only:
            if self.read_only:
                return f"`{action.name}` changes data and the server is read-only (GITLAB_READ_ONLY=true)."
            if action.domain in self.read_only_domains:
                where = f"preset {self.preset_name} keeps {action.domain} read-only"
                return f"`{action.name}` changes data; {where}."
        return None

    def visible(self) -> list[Action]:
        return [a for a in CATALOG if self.refusal(a) is None]

    def visible_domains(self) -> list[str]:
        seen = {a.domain for a in self.visible()}
        return [d for d in DOMAINS if d in seen]


def normalize_name(name: str) -> str:
    key = name.strip().lower().replace("-", "_").replace(".", "_").replace(" ", "_")
    if key.startswith("gitlab_"):
        key = key[len("gitlab_") :]
    return key


def suggest(name: str, candidates: Iterable[str]) -> list[str]:
    return difflib.get_close_matches(normalize_name(name), list(candidates), n=3, cutoff=0.5)
