"""Error types and the mapping of GitLab HTTP failures to messages that say what to do next."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_MAX_MESSAGE = 400


class ToolError(Exception):
    """A failure shown to the model as an `isError` result, with an optional hint and data."""

    def __init__(self, message: str, hint: str = "", data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.data = data or {}


@dataclass
class GitLabAPIError(Exception):
    """A non-2xx answer from GitLab (after any retries)."""

    status: int
    message: str
    method: str = "GET"
    path: str = ""
    retry_after: float | None = None
    request_id: str = ""
    attempts: int = 1
    body: Any = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"GitLab {self.status} on {self.method} {self.path}: {self.message}"


class TransportError(Exception):
    """GitLab could not be reached (DNS, TLS, connect, timeout)."""


def gitlab_message(body: Any) -> str:
    """Flatten GitLab's error bodies: {"message": str | list | {field: [msgs]}} or {"error": str}."""
    if isinstance(body, dict):
        for key in ("message", "error", "error_description"):
            if key in body:
                return _flatten(body[key])[:_MAX_MESSAGE]
        return _flatten(body)[:_MAX_MESSAGE]
    if isinstance(body, str):
        return body.strip()[:_MAX_MESSAGE]
    return ""


def _flatten(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(_flatten(v) for v in value)
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            text = _flatten(v)
            parts.append(text if k == "base" else f"{k} {text}")
        return "; ".join(parts)
    return str(value)


def describe(err: GitLabAPIError, action: str = "", id_params: tuple[str, ...] = ()) -> tuple[str, str]:
    """Return (message, hint) for a GitLab failure."""
    msg = err.message or "(no message)"
    ids = ", ".join(f"`{p}`" for p in id_params) or "the ids"
    status = err.status
    if status == 400:
        return (
            f"GitLab rejected the request as invalid (400): {msg}",
            f'Check the parameter values; the exact schema is returned by gitlab_find_actions names=["{action}"].',
        )
    if status == 401:
        return (
            f"GitLab rejected the credentials (401 Unauthorized): {msg}",
            "Standalone: set GITLAB_TOKEN to a valid, unexpired personal access token (scope `api`, "
            "or `read_api` for reads). Behind the gigmcp gateway the token is injected by the egress "
            "proxy: reconnect or re-authorize the GitLab account in the gateway.",
        )
    if status == 403:
        return (
            f"Forbidden (403): {msg}",
            "The token lacks a scope (writes need `api`; `read_api` only reads) or your role in this "
            "project/group is too low for this action; some actions also need GitLab Premium.",
        )
    if status == 404:
        return (
            f"Not found (404): {msg}",
            f"It does not exist or the token cannot see it (GitLab answers 404 for private resources). "
            f"Check {ids}; IIDs are the #/!numbers shown in the UI, not global ids. List first "
            f"(e.g. the matching *_list action) to find valid values.",
        )
    if status == 405:
        return (
            f"Not allowed in the current state (405): {msg}",
            "The resource's state forbids this (e.g. MR is draft, closed or not mergeable, project "
            "archived). Read its current state first.",
        )
    if status == 406:
        return (
            f"Not acceptable (406): {msg}",
            "The branch cannot be merged as is (conflicts?). Rebase or resolve conflicts first.",
        )
    if status == 409:
        return (
            f"Conflict (409): {msg}",
            "It already exists or changed concurrently (e.g. branch/tag exists, an MR is already open "
            "for this source branch, SHA mismatch). Re-read the current state, then retry or update "
            "the existing object instead.",
        )
    if status == 412:
        return (
            f"Precondition failed (412): {msg}",
            "The object changed since you read it (SHA or last_commit_id mismatch). Re-read and retry.",
        )
    if status == 422:
        return (
            f"GitLab refused the values (422 Unprocessable): {msg}",
            "Fix the fields named in the message; see the action schema for valid values.",
        )
    if status == 429:
        wait = f"{err.retry_after:.0f} s" if err.retry_after is not None else "a short while"
        return (
            f"Rate limited by GitLab (429): {msg}",
            f"Wait {wait} (Retry-After) before calling again; batch or narrow requests (filters, "
            f"per_page) to use fewer calls.",
        )
    if status >= 500:
        return (
            f"GitLab server error ({status}) after {err.attempts} attempt(s): {msg}",
            "GitLab may be degraded or the request too heavy. Retry later or narrow the request.",
        )
    return (f"GitLab answered {status}: {msg}", "")
