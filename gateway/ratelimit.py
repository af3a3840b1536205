"""Token-bucket rate limits: per token and profile on `tools/call`, per client address on login/token routes.

A bucket holds at most `burst` tokens and refills at `rate` tokens a second; a request takes one
token or is refused with the seconds until one is available. Buckets live in memory, keyed by
whatever the caller passes; the table is bounded (least recently used keys are forgotten, which
only ever lets a forgotten key start again with a full bucket).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

Clock = Callable[[], float]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Many token buckets of one shape (`rate` per second, `burst` at most), one per key."""

    def __init__(self, rate: float, burst: int, *, clock: Clock = time.monotonic, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    def take(self, key: Hashable) -> float:
        """Take one token for `key`: 0.0 when allowed, else the seconds until a token is available."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after_header(wait_s: float) -> str:
    """Whole seconds for `Retry-After`, never 0 (a client retrying at once would be refused again)."""
    return str(max(1, math.ceil(wait_s)))


def call_refusal(wait_s: float) -> dict[str, object]:
    """The CallToolResult for a refused `tools/call`: a tool error, so the model sees when to retry."""
    return {
        "content": [{"type": "text", "text": f"Rate limit exceeded: too many tool calls. "
                                             f"Retry after {wait_s:.1f} seconds."}],
        "isError": True,
    }


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ClientAddress = Callable[[web.Request], str]


def address_limit_middleware(limiter: RateLimiter, prefixes: Iterable[str], client_address: ClientAddress,
                             on_refused: Callable[[str], None] | None = None,
                             exempt: Callable[[web.Request], bool] | None = None) -> Middleware:
    """An aiohttp middleware limiting requests under `prefixes` per client address (429 + Retry-After).

    Reusable for any login-like route: the caller decides which paths, how the client address is
    found (see `gateway.forwarded`, so that a proxy's address is not everybody's address), and which
    requests do not count (`exempt`, e.g. ones already authenticated by a valid credential).
    """
    paths = tuple(prefixes)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not any(request.path == p or request.path.startswith(p.rstrip("/") + "/") for p in paths):
            return await handler(request)
        if exempt is not None and exempt(request):
            return await handler(request)
        wait = limiter.take(("address", client_address(request)))
        if wait > 0:
            if on_refused is not None:
                on_refused(request.path)
            return web.json_response(
                {"error": {"code": "rate_limited", "message": f"too many requests; retry after {wait:.1f} seconds"}},
                status=429, headers={"Retry-After": retry_after_header(wait)},
            )
        return await handler(request)

    return middleware
