"""Expiry under a wall clock that can jump.

Expiry stamps are wall-clock times: they outlive the process and would be shared by several gateway
replicas. Durations inside one process (timeouts, idle reaping, rate-limit windows, caches) use the
monotonic clock, which no clock step moves. A wall-clock jump forward expires whatever it passes,
which is right: the clock is the authority. A jump backward must neither bring back a credential
that had expired nor let one live longer than it was issued for. So a credential with an expiry is
valid only while `created_at - CLOCK_SKEW_S <= now < expires_at`: when the clock is set back to
before a credential was issued (beyond a small skew), the credential is refused until the clock has
caught up again. Its usable life therefore never exceeds its lifetime plus the skew, whatever the
clock does. Credentials without an expiry are not affected.
"""

from __future__ import annotations

# NTP corrections and replicas' clocks disagree by far less; a step back beyond this is a clock jump.
CLOCK_SKEW_S = 300.0


def within_lifetime(now: float, created_at: float, expires_at: float | None, skew_s: float = CLOCK_SKEW_S) -> bool:
    """Whether a credential issued at `created_at` and expiring at `expires_at` (None: never) is valid at `now`."""
    if expires_at is None:
        return True
    return created_at - skew_s <= now < expires_at


def clock_went_back(now: float, stamped_at: float, skew_s: float = CLOCK_SKEW_S) -> bool:
    """Whether `now` is before `stamped_at` by more than the skew: the wall clock was set back since."""
    return now < stamped_at - skew_s
