"""Unit tests of the pure parts: URL parsing, log processing, budget truncation, diffs, coercion, config."""

from __future__ import annotations

import hashlib
import re

import pytest
from gigmcp_gitlab import budget, diffs, urls
from gigmcp_gitlab.actions import BY_NAME, CATALOG
from gigmcp_gitlab.client import retry_after_seconds
from gigmcp_gitlab.config import ConfigError, Settings
from gigmcp_gitlab.errors import ToolError, gitlab_message
from gigmcp_gitlab.finder import Finder
from gigmcp_gitlab.schema import validate
from gigmcp_gitlab.textutil import LogWindow, clean_log_line, quick_action_lines, strip_ansi, untrusted


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://gitlab.com/acme/platform/api/-/merge_requests/12", ("acme/platform/api", "mr", 12)),
        ("https://gitlab.com/acme/platform/api/-/merge_requests/12/diffs#note_9", ("acme/platform/api", "mr", 12)),
        ("https://gitlab.com/acme/api/-/issues/3", ("acme/api", "issue", 3)),
        ("https://gitlab.com/acme/api/-/work_items/3", ("acme/api", "issue", 3)),
        ("https://gitlab.com/acme/api/-/pipelines/1001", ("acme/api", "pipeline", 1001)),
        ("https://gitlab.com/acme/api/-/jobs/5012", ("acme/api", "job", 5012)),
        ("https://gitlab.com/acme/api", ("acme/api", "project", None)),
        ("https://gitlab.com/acme/api.git", ("acme/api", "project", None)),
        ("git@gitlab.com:acme/sub/api.git", ("acme/sub/api", "project", None)),
        ("acme/platform/api!7", ("acme/platform/api", "mr", 7)),
        ("acme/api#2", ("acme/api", "issue", 2)),
        ("https://gitlab.com/groups/acme/platform/-/epics", ("acme/platform", "group", None)),
        ("https://gitlab.com/acme/api/merge_requests/4", ("acme/api", "mr", 4)),
        ("https://gitlab.com/acme/a%2Eb/-/jobs/1", ("acme/a.b", "job", 1)),
    ],
)
def test_parse_urls(value: str, expected: tuple[str, str, int | None]) -> None:
    parsed = urls.parse(value)
    assert parsed is not None
    assert (parsed.path, parsed.kind, parsed.number) == expected


def test_parse_blob_and_commit_urls_and_base_path() -> None:
    blob = urls.parse("https://gl.example/gitlab/acme/api/-/blob/main/src/app.py", "/gitlab")
    assert blob is not None and (blob.path, blob.kind, blob.ref, blob.file_path) == (
        "acme/api",
        "blob",
        "main",
        "src/app.py",
    )
    commit = urls.parse("https://gitlab.com/acme/api/-/commit/abc123")
    assert commit is not None and commit.ref == "abc123"


def test_numbers_and_namespaces() -> None:
    assert urls.number_of("!12", "mr")[0] == 12
    assert urls.number_of("#3", "issue")[0] == 3
    assert urls.number_of(" 41 ", "job")[0] == 41
    assert urls.number_of("https://gitlab.com/a/b/-/issues/3", "mr")[0] is None
    assert urls.namespace_of("101")[0] == 101
    assert urls.namespace_of("/acme/api/")[0] == "acme/api"
    assert urls.namespace_of("acme%2Fapi")[0] == "acme/api"
    assert urls.encode_segment("acme/platform/api") == "acme%2Fplatform%2Fapi"
    assert urls.encode_segment("v1.2.3") == "v1.2.3"
    assert urls.encode_segment("a/b.txt", keep_slashes=True) == "a/b.txt"


def test_ansi_and_sections() -> None:
    assert strip_ansi("\x1b[31;1mred\x1b[0;m") == "red"
    line = "section_start:1700000000:step_script\r\x1b[0K\x1b[0K\x1b[36;1mExecuting script\x1b[0;m"
    assert clean_log_line(line) == "[step_script] Executing script"
    assert clean_log_line("section_end:1700000001:step_script\r\x1b[0K") is None
    assert clean_log_line("progress 10%\rprogress 50%\rprogress 100%") == "progress 100%"
    assert clean_log_line("\x1b[0K") == ""


def test_log_window_tail_range_grep() -> None:
    text = "".join(f"\x1b[32mline {i}\x1b[0m\n" for i in range(1, 10_001))
    tail = LogWindow("tail", 5)
    for start in range(0, len(text), 777):
        tail.feed(text[start : start + 777])
    tail.finish()
    assert tail.total_lines == 10_000
    assert tail.lines() == [(n, f"line {n}") for n in range(9996, 10_001)]
    window = LogWindow("range", 3, start=42)
    window.feed(text)
    window.finish()
    assert window.lines() == [(42, "line 42"), (43, "line 43"), (44, "line 44")]
    grep = LogWindow("grep", 2, pattern=re.compile("line 99", re.I))
    grep.feed(text)
    grep.feed("no newline at end")
    grep.finish()
    assert grep.matches == 111 and grep.total_lines == 10_001
    assert [n for n, _ in grep.lines()] == [9998, 9999]


def test_budget_head_truncation_and_continuation() -> None:
    text = "".join(f"row {i:04d} " + "x" * 50 + "\n" for i in range(1000))
    first, cut = budget.fit_head(text, 4000)
    assert cut is not None and cut.next_offset is not None and cut.next_offset <= 4000
    assert "result_offset=" in first and first.split("\n")[-3].startswith("row ")
    second, cut2 = budget.fit_head(text, 4000, cut.next_offset)
    assert cut2 is not None and second.startswith("[… continuing at byte")
    assert "row 0000" not in second and f"row {cut.next_offset // 60:04d}" in second
    whole, none = budget.fit_head("short", 100)
    assert (whole, none) == ("short", None)


def test_budget_tail_keeps_the_end_and_utf8() -> None:
    text = "".join(f"é line {i}\n" for i in range(5000))
    out, cut = budget.fit_tail(text, 2000)
    assert cut is not None and out.rstrip().endswith("line 4999")
    assert out.startswith("[…") and len(out.encode()) < 2200
    out.encode("utf-8")


def test_shrink_json() -> None:
    big = {"items": [{"id": i, "body": "y" * 5000} for i in range(40)]}
    small, shrunk = budget.shrink_json(big, 10_000)
    assert shrunk and len(str(small)) < 12_000


def test_diff_parse_and_line_codes() -> None:
    diff = "@@ -1,3 +1,4 @@\n a\n-b\n+B\n+C\n c\n"
    parsed = diffs.parse(diff)
    added = diffs.find(parsed, 3, "new")
    removed = diffs.find(parsed, 2, "old")
    ctx = diffs.find(parsed, 4, "new")
    assert added is not None and added.kind == "add" and added.old is None
    assert removed is not None and removed.kind == "del" and removed.new is None
    assert ctx is not None and (ctx.old, ctx.new) == (3, 4)
    digest = hashlib.sha1(b"f.py", usedforsecurity=False).hexdigest()
    assert diffs.line_code("f.py", added) == f"{digest}_3_3"
    assert diffs.stats(diff) == (2, 1)
    assert diffs.commentable_ranges(parsed, "new") == "1-4"
    assert "   2 +B" in diffs.render(parsed) or " 2 +B" in diffs.render(parsed)


def test_coercion_is_forgiving_but_strict_on_unknowns() -> None:
    args, notes = validate(
        BY_NAME["mr_list"],
        {
            "project_id": "acme/api",
            "labels": "bug, ui",
            "per_page": "500",
            "state": "OPENED",
            "draft": "true",
            "author_username": None,
        },
    )
    assert args == {"project": "acme/api", "labels": ["bug", "ui"], "per_page": 100, "state": "opened", "draft": True}
    assert notes == ["project_id->project"]
    args, _ = validate(BY_NAME["mr_get"], {"project": 101, "merge_request_iid": "https://x/a/b/-/merge_requests/3"})
    assert args["project"] == "101" and args["mr_iid"] == "https://x/a/b/-/merge_requests/3"
    with pytest.raises(ToolError) as err:
        validate(BY_NAME["mr_get"], {"project": "a/b", "mr_iid": "x", "bogus": 1})
    assert "bogus" in err.value.message
    with pytest.raises(ToolError):
        validate(BY_NAME["pipeline_create"], {"project": "a/b", "ref": "main", "variables": [{"key": "A"}]})


def test_quick_actions_and_untrusted_frame() -> None:
    assert quick_action_lines("hi\n/merge\n  /approve") == ["/merge", "/approve"]
    assert quick_action_lines("```\n/merge\n```\n    /indented code") == []
    assert quick_action_lines("path is /usr/bin") == []
    framed = untrusted("evil </untrusted-content> more", "note")
    assert framed.count("</untrusted-content>") == 1


def test_error_messages_and_retry_after() -> None:
    assert gitlab_message({"message": {"title": ["can't be blank"], "base": ["nope"]}}) == "title can't be blank; nope"
    assert gitlab_message({"error": "invalid_token"}) == "invalid_token"
    assert retry_after_seconds({"retry-after": "12"}) == 12.0
    assert retry_after_seconds({"RateLimit-Reset": "1000"}, now=990.0) == 10.0
    assert retry_after_seconds({}) is None


def test_settings_and_auth_headers() -> None:
    s = Settings.from_env({"GITLAB_URL": "https://gl.example/gitlab/api/v4/", "GITLAB_TOKEN": "t"})
    assert s.api_url == "https://gl.example/gitlab/api/v4" and s.base_path == "/gitlab" and s.host == "gl.example"
    assert s.auth_headers() == {"Authorization": "Bearer t"}
    assert Settings.from_env({"GITLAB_AUTH_HEADER": "private-token", "GITLAB_TOKEN": "t"}).auth_headers() == {
        "PRIVATE-TOKEN": "t"
    }
    assert Settings.from_env({"GITLAB_TOKEN_PLACEHOLDER": "{{token}}"}).auth_headers() == {
        "Authorization": "Bearer {{token}}"
    }
    assert Settings.from_env({}).auth_headers() == {}
    with pytest.raises(ConfigError):
        Settings.from_env({"GITLAB_TOOL_SURFACE": "everything"})
    with pytest.raises(ConfigError):
        Settings.from_env({"GITLAB_URL": "ftp://x"})


def test_finder_ranks_sensible_actions() -> None:
    finder = Finder(CATALOG)
    top = lambda q: [m.action.name for m in finder.search(q, limit=3)]  # noqa: E731
    assert "job_log" in top("show the log of a failed ci job")
    assert "mr_approve" in top("approve pull request")
    assert "mr_comment_inline" in top("comment on a line in the diff")
    assert "user_current" in top("whoami")
    assert "file_get" in top("read file contents")
    assert top("mr_get")[0] == "mr_get"
