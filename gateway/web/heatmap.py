"""The calendar heatmap of tool calls, the pure part: a year of days in weeks, each with a level 0-4."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class Day:
    day: str  # YYYY-MM-DD
    count: int
    level: int  # 0 (none) .. 4 (busiest quarter)


def weeks(counts: dict[str, int], today: date, n_weeks: int = 53) -> list[list[Day | None]]:
    """Columns of seven days (Monday first) ending with the week of `today`; None past today."""
    start = today - timedelta(days=today.weekday() + 7 * (n_weeks - 1))
    peak = max(counts.values(), default=0)
    out: list[list[Day | None]] = []
    for w in range(n_weeks):
        column: list[Day | None] = []
        for d in range(7):
            current = start + timedelta(days=7 * w + d)
            if current > today:
                column.append(None)
                continue
            key = current.isoformat()
            count = counts.get(key, 0)
            level = 0 if count == 0 or peak == 0 else min(4, 1 + (4 * (count - 1)) // peak)
            column.append(Day(key, count, level))
        out.append(column)
    return out
