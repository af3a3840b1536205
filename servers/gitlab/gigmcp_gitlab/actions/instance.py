"""Instance information: version, edition (CE/EE), metadata, Markdown rendering."""

from __future__ import annotations

from .dsl import b, get, post, s
from .model import Kind

D = "instance"

ACTIONS = (
    get(
        "instance_version",
        D,
        "GitLab version, edition (CE/EE) and KAS info",
        "/version",
        handler="instance_version",
        aliases=("version", "edition", "ee", "ce", "about"),
    ),
    post(
        "markdown_render",
        D,
        "Render GitLab Markdown to HTML (read-only)",
        "/markdown",
        s("text", "Markdown", True),
        b("gfm", "GitLab Flavored Markdown"),
        s("project_path", "Project path for resolving references", api="project"),
        kind=Kind.READ,
        idempotent=True,
    ),
)
