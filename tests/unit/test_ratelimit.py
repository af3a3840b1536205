"""Token buckets: the burst, the refill, separate keys, the bounded table, and the refusal texts."""

from __future__ import annotations

import pytest

from gateway.ratelimit import RateLimiter, call_refusal, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.take("t") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("t") == pytest.approx(0.5)  # one token every 0.5 s
    clock.now += 0.25
    assert limiter.take("t") == pytest.approx(0.25)
    clock.now += 0.25
    assert limiter.take("t") == 0.0
    clock.now += 60  # a long pause refills to the burst, never beyond
    assert [limiter.take("t") for _ in range(4)][-1] > 0


def test_keys_are_independent() -> None:
    limiter = RateLimiter(1.0, 1, clock=Clock())
    assert limiter.take(("tok-a", 1)) == 0.0
    assert limiter.take(("tok-a", 1)) > 0
    assert limiter.take(("tok-a", 2)) == 0.0
    assert limiter.take(("tok-b", 1)) == 0.0


def test_the_table_is_bounded() -> None:
    limiter = RateLimiter(1.0, 1, clock=Clock(), max_keys=10)
    for i in range(100):
        limiter.take(i)
    assert len(limiter) == 10


def test_refusal_texts() -> None:
    result = call_refusal(1.234)
    assert result["isError"] is True
    assert result["content"] == [{"type": "text", "text": "Rate limit exceeded: too many tool calls. "
                                                          "Retry after 1.2 seconds."}]
    assert retry_after_header(0.01) == "1" and retry_after_header(2.1) == "3"


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0, 1)
    with pytest.raises(ValueError):
        RateLimiter(1, 0)
