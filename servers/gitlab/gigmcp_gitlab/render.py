"""Compact rendering of GitLab JSON: noise-free objects, Markdown tables and detail views."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .textutil import cell, untrusted

NOISE = frozenset(
    {
        "_links",
        "avatar_url",
        "description_html",
        "title_html",
        "readme_url",
        "ssh_url_to_repo",
        "container_registry_image_prefix",
        "permissions",
        "links",
        "imported",
        "imported_from",
        "service_desk_address",
        "service_desk_reply_to",
        "task_completion_status",
        "marked_for_deletion_at",
        "marked_for_deletion_on",
        "moved_to_id",
        "duplicated_to_id",
        "epic_iid",
        "epic",
        "iteration",
        "health_status",
        "has_tasks",
        "task_status",
        "blocking_discussions_resolved",
        "favicon",
        "illustration",
        "has_details",
        "details_path",
        "tooltip",
        "icon",
        "text_color",
        "empty_repo",
        "import_status",
        "import_url",
        "import_type",
        "import_error",
        "shared_runners_enabled",
        "lfs_enabled",
        "runners_token",
        "ci_job_token_scope_enabled",
        "emails_disabled",
        "emails_enabled",
        "build_git_strategy",
        "build_timeout",
        "auto_cancel_pending_pipelines",
        "ci_config_path",
        "public_jobs",
        "shared_with_groups",
        "compliance_frameworks",
        "container_expiration_policy",
        "web_path",
        "prepared_at",
        "first_contribution",
        "approvals_before_merge",
        "subscribed",
        "user_notes_count",
        "upvotes",
        "downvotes",
        "reference",
        "confidential_issues_count",
        "force_remove_source_branch",
        "merge_after",
        "squash_on_merge",
        "description_updated_at",
        "work_in_progress",
        "source_project_id",
        "target_project_id",
        "merge_when_pipeline_succeeds",
    }
)


def is_user(value: Mapping[str, Any]) -> bool:
    return "username" in value and ("name" in value or "avatar_url" in value or "state" in value)


def brief(value: Any) -> Any:
    """Collapse well-known nested objects to one scalar (users -> @name, commits -> short id, ...)."""
    if isinstance(value, Mapping):
        if is_user(value):
            return "@" + str(value["username"])
        if "user" in value and isinstance(value["user"], Mapping) and is_user(value["user"]) and len(value) <= 3:
            return "@" + str(value["user"]["username"])
        if "full_path" in value and "kind" in value:
            return value["full_path"]
        if "short_id" in value:
            return value["short_id"]
        if "text" in value and "group" in value and "label" in value:
            return value["text"]
        if "id" in value and "status" in value and "ref" in value:
            return f"#{value['id']} {value['status']}"
        if "runner_type" in value and "description" in value:
            return f"{value['description']} (#{value.get('id')})"
        if "title" in value and "id" in value and ("due_date" in value or "state" in value):
            return value["title"]
    return value


def compact(value: Any, depth: int = 0) -> Any:
    """Drop noise and empty values; nested users/namespaces/commits become short scalars."""
    if isinstance(value, Mapping):
        if depth > 0:
            short = brief(value)
            if short is not value:
                return short
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in NOISE or item is None or item == "" or item == [] or item == {}:
                continue
            if depth >= 3 and isinstance(item, (Mapping, list)):
                continue
            small = compact(item, depth + 1)
            if small == {} or small == []:
                continue
            out[key] = small
        return out
    if isinstance(value, list):
        return [compact(v, depth + 1) for v in value]
    if isinstance(value, str) and len(value) >= 20 and value[4:5] == "-" and value[10:11] == "T":
        return value[:16].replace("T", " ") if depth > 0 else value
    return value


def fmt(value: Any) -> str:
    """One value as short text for a table cell or a key line."""
    value = brief(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(compact(value), separators=(",", ":"), ensure_ascii=False, default=str)
    text = str(value)
    if len(text) >= 20 and text[4:5] == "-" and text[10:11] == "T":
        return text[:16].replace("T", " ")
    return text


def project_item(item: Any, columns: Sequence[str]) -> Any:
    """The fields of one list item kept in structured output."""
    if not isinstance(item, Mapping):
        return item
    keys = list(columns) + [k for k in ("id", "iid", "web_url") if k not in columns]
    return {k: compact(item[k], 1) for k in keys if k in item and item[k] not in (None, "", [], {})}


def default_columns(items: Sequence[Any]) -> tuple[str, ...]:
    first = next((it for it in items if isinstance(it, Mapping)), None)
    if first is None:
        return ()
    preferred = (
        "iid",
        "id",
        "name",
        "title",
        "path_with_namespace",
        "full_path",
        "username",
        "key",
        "state",
        "status",
        "ref",
        "author",
        "created_at",
    )
    cols = tuple(k for k in preferred if k in first)
    if cols:
        return cols[:6]
    return tuple(list(first)[:6])


def table(items: Iterable[Any], columns: Sequence[str]) -> list[str]:
    """Markdown table rows (header first)."""
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for item in items:
        if isinstance(item, Mapping):
            rows.append("| " + " | ".join(cell(fmt(item.get(c))) for c in columns) + " |")
        else:
            rows.append("| " + cell(fmt(item)) + " |")
    return rows


def block(item: Mapping[str, Any], columns: Sequence[str], text_fields: Sequence[str], label: str) -> str:
    """A list item carrying user text: a one-line header plus the framed text."""
    head = " · ".join(
        f"{c}: {cell(fmt(item.get(c)), 60)}"
        for c in columns
        if c not in text_fields and item.get(c) not in (None, "", [])
    )
    parts = [f"- {head}"]
    for field in text_fields:
        text = item.get(field)
        if isinstance(text, str) and text.strip():
            parts.append(untrusted(text, f"{label} {field}"))
    return "\n".join(parts)


USER_TEXT = frozenset({"description", "body", "note", "message", "content"})
SUMMARY_KEYS = frozenset(
    {
        "id",
        "iid",
        "name",
        "title",
        "state",
        "status",
        "web_url",
        "approved",
        "approvals_left",
        "approved_by",
        "sha",
        "ref",
        "path",
        "file_path",
        "branch",
        "key",
        "tag_name",
        "merge_status",
        "detailed_merge_status",
        "merged_at",
        "short_id",
        "path_with_namespace",
        "full_path",
        "username",
        "access_level",
        "value",
        "source_branch",
        "target_branch",
        "draft",
        "labels",
        "rebase_in_progress",
        "commit",
        "protected",
    }
)


def detail(
    obj: Mapping[str, Any], text_fields: Sequence[str], label: str, summary: Sequence[str] | None = None
) -> tuple[str, dict[str, Any]]:
    """Key lines for one object plus framed user text; returns (markdown, compact object).

    With `summary` (used for write results) only identity/state keys and the named keys are shown.
    """
    data = compact(obj)
    if not isinstance(data, dict):
        return fmt(data), {"value": data}
    text_fields = tuple(text_fields) + tuple(k for k in USER_TEXT if k not in text_fields)
    lines = []
    for key, value in data.items():
        if key in text_fields and summary is None:
            continue
        if summary is not None and key not in SUMMARY_KEYS and key not in summary:
            continue
        if summary is not None and key in text_fields:
            lines.append(f"- {key}: ({len(str(value))} chars)")
            continue
        lines.append(f"- {key}: {fmt(value)}")
    if summary is not None:
        return "\n".join(lines), data
    for field in text_fields:
        text = data.get(field)
        if isinstance(text, str) and text.strip():
            lines.append(f"\n**{field}**:")
            lines.append(untrusted(text, f"{label} {field}"))
    return "\n".join(lines), data
