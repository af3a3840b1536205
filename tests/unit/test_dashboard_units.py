"""Dashboard pure parts: the heatmap grid, CSRF tokens, cookie names, and the tool-call audit row."""

from __future__ import annotations

from datetime import date

from gateway.oidc.sessions import cookie_name, csrf_token, public_origin
from gateway.web.heatmap import weeks


def test_heatmap_is_a_year_of_weeks_ending_today() -> None:
    today = date(2026, 11, 21)  # a Saturday
    grid = weeks({"2026-11-21": 8, "2026-11-20": 1, "2025-01-01": 5}, today)
    assert len(grid) == 53 and all(len(col) == 7 for col in grid)
    last = grid[-1]
    assert last[5] is not None and last[5].day == "2026-11-21" and last[5].level == 4
    assert last[4] is not None and last[4].level == 1
    assert last[6] is None  # Sunday after today
    assert grid[0][0] is not None and grid[0][0].day == "2025-11-17"  # the Monday 52 weeks before this week's


def test_heatmap_without_calls_is_all_level_zero() -> None:
    grid = weeks({}, date(2026, 1, 1))
    assert {d.level for col in grid for d in col if d is not None} == {0}


def test_csrf_token_is_bound_to_the_session() -> None:
    assert csrf_token("a") == csrf_token("a") != csrf_token("b")
    assert len(csrf_token("a")) == 64


def test_cookie_name_and_origin_follow_the_public_url() -> None:
    assert cookie_name("https://gig.example.com") == "__Host-gig_session"
    assert cookie_name("http://127.0.0.1:8080") == "gig_session"
    assert public_origin("https://Gig.Example.com/prefix") == "https://gig.example.com"
