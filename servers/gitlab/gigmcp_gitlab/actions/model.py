"""Plain-data description of one GitLab action: its parameters, HTTP route and safety class.

Every action the server offers is an `Action` value; a single generic executor turns an action plus
validated arguments into HTTP requests. Only a handful of actions name a custom `handler`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """Safety class of an action, decided per action (never per tool)."""

    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"


JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "array", "object"})
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Param:
    """One input parameter.

    `where` is "path", "query", "body" or "none" (consumed by a handler); empty means: path if the
    route names it, else query for GET/DELETE and body otherwise. `api` is the wire name when it
    differs from `name`. `ref` marks parameters that accept ids, paths or GitLab URLs ("project",
    "group", "mr", "issue", "pipeline", "job", "commit", "snippet", "milestone").
    """

    name: str
    type: str
    desc: str = ""
    required: bool = False
    enum: tuple[str, ...] = ()
    items: Mapping[str, Any] | None = None
    properties: Mapping[str, Any] | None = None
    api: str = ""
    where: str = ""
    ref: str = ""
    csv: bool = False
    keep_slashes: bool = False
    minimum: int | None = None
    maximum: int | None = None

    @property
    def wire(self) -> str:
        return self.api or self.name

    def schema(self) -> dict[str, Any]:
        """JSON schema of this parameter: always a `type`, arrays always with `items`."""
        out: dict[str, Any] = {"type": self.type}
        if self.desc:
            out["description"] = self.desc
        if self.enum:
            out["enum"] = list(self.enum)
        if self.type == "array":
            out["items"] = dict(self.items) if self.items is not None else {"type": "string"}
        if self.type == "object" and self.properties is not None:
            out["properties"] = dict(self.properties)
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


@dataclass(frozen=True)
class Action:
    """One GitLab operation.

    `path` holds one or more route templates ("/projects/{project}/issues"); the first whose
    placeholders are all supplied is used, which lets one action serve project and group scopes.
    `fixed` values are always sent (e.g. `state_event=close`). `pick` selects a sub-field of the
    JSON answer. `columns` are the list columns shown, `text_fields` the user-written fields shown
    as untrusted blocks, `guard` the fields checked for quick actions.
    """

    name: str
    domain: str
    summary: str
    method: str
    path: tuple[str, ...]
    params: tuple[Param, ...] = ()
    kind: Kind = Kind.READ
    idempotent: bool = True
    paginated: bool = False
    handler: str = ""
    fixed: Mapping[str, Any] = field(default_factory=dict)
    pick: str = ""
    columns: tuple[str, ...] = ()
    text_fields: tuple[str, ...] = ()
    guard: tuple[str, ...] = ()
    raw: bool = False
    min_version: str = ""
    tier: str = ""
    aliases: tuple[str, ...] = ()
    hint: str = ""

    @property
    def read_only(self) -> bool:
        return self.kind is Kind.READ

    @property
    def destructive(self) -> bool:
        return self.kind is Kind.DESTRUCTIVE

    def param(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name:
                return p
        return None

    def placeholders(self) -> set[str]:
        names: set[str] = set()
        for template in self.path:
            names.update(_PLACEHOLDER.findall(template))
        return names

    def input_schema(self) -> dict[str, Any]:
        """The exact JSON schema for this action's `params`."""
        props = {p.name: p.schema() for p in self.params}
        required = [p.name for p in self.params if p.required]
        schema: dict[str, Any] = {"type": "object", "properties": props}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        return schema


def route_names(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)
