"""HTTP client for the GitLab REST API: auth header, TLS/proxy, concurrency limit, retries, streaming.

Built on httpx2 (already a dependency of `mcp`) with `trust_env=True`, so HTTPS_PROXY, NO_PROXY and
SSL_CERT_FILE are honoured; GITLAB_CA_BUNDLE adds a private CA on top of the default trust store.
Idempotent requests are retried on 429/5xx with capped exponential backoff honouring Retry-After.
Writes are refused here as a last line of defence when the server runs read-only or in safe mode.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import ssl
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2

from . import __version__
from .config import Settings
from .errors import GitLabAPIError, ToolError, TransportError, gitlab_message

QueryParams = Sequence[tuple[str, str]]
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_BACKOFF = 8.0


@dataclass
class Response:
    """A successful answer: parsed JSON (or text/bytes) plus headers."""

    status: int
    data: Any
    headers: Mapping[str, str]
    content: bytes = b""


def build_ssl_context(settings: Settings) -> ssl.SSLContext | bool:
    """Default trust (SSL_CERT_FILE/SSL_CERT_DIR aware) plus GITLAB_CA_BUNDLE when set."""
    if not settings.ca_bundle:
        return True
    ctx = httpx2.create_ssl_context(trust_env=True)
    ctx.load_verify_locations(cafile=settings.ca_bundle)
    return ctx


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date) or RateLimit-Reset (epoch)."""
    raw = headers.get("retry-after") or headers.get("Retry-After")
    current = time.time() if now is None else now
    if raw:
        raw = raw.strip()
        if raw.isdigit():
            return float(raw)
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - current)
    reset = headers.get("ratelimit-reset") or headers.get("RateLimit-Reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset) - current)
    return None


class GitLabClient:
    """One per process; safe to share between concurrent tool calls."""

    def __init__(self, settings: Settings, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        headers = {
            "User-Agent": f"gigmcp-gitlab/{__version__}",
            "Accept": "application/json",
            **settings.auth_headers(),
        }
        self._http = httpx2.AsyncClient(
            base_url=settings.api_url,
            headers=headers,
            timeout=httpx2.Timeout(settings.timeout, connect=min(10.0, settings.timeout)),
            verify=build_ssl_context(settings),
            trust_env=True,
            follow_redirects=False,
            transport=transport,
        )
        self._sem = asyncio.Semaphore(settings.max_concurrency)
        self.request_count = 0

    async def aclose(self) -> None:
        await self._http.aclose()

    def _guard(self, method: str, mutating: bool) -> None:
        if not mutating:
            return
        if self.settings.read_only:
            raise ToolError(f"Refused {method}: the server is read-only (GITLAB_READ_ONLY=true).")
        if self.settings.safe_mode:
            raise ToolError(f"Refused {method}: safe mode is on (GITLAB_SAFE_MODE=true); writes are previewed.")

    def _backoff(self, attempt: int) -> float:
        base = self.settings.retry_base_delay * (2 ** (attempt - 1))
        return float(min(_MAX_BACKOFF, base * (0.8 + 0.4 * random.random())))

    def _transport_error(self, exc: Exception) -> TransportError:
        text = f"{type(exc).__name__}: {exc}"
        hint = "Check GITLAB_URL and network/proxy settings (HTTPS_PROXY, NO_PROXY)."
        if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(exc, ssl.SSLError):
            hint = (
                "TLS verification failed: for a self-managed instance with a private CA set "
                "GITLAB_CA_BUNDLE (or SSL_CERT_FILE) to its PEM bundle."
            )
        elif isinstance(exc, httpx2.TimeoutException):
            hint = "GitLab did not answer in time (GITLAB_TIMEOUT); retry or narrow the request."
        return TransportError(f"Cannot reach GitLab at {self.settings.gitlab_url} ({text}). {hint}")

    def _api_error(self, resp: httpx2.Response, method: str, path: str, attempts: int) -> GitLabAPIError:
        try:
            body: Any = resp.json()
        except ValueError:
            body = resp.text
        return GitLabAPIError(
            status=resp.status_code,
            message=gitlab_message(body) or resp.reason_phrase,
            method=method,
            path=path,
            retry_after=retry_after_seconds(resp.headers),
            request_id=resp.headers.get("x-request-id", ""),
            attempts=attempts,
            body=body,
        )

    async def _wait_before_retry(self, resp: httpx2.Response | None, attempt: int, idempotent: bool) -> bool:
        """Sleep and return True if the failed attempt should be retried."""
        if attempt > self.settings.max_retries:
            return False
        if resp is not None:
            if resp.status_code not in _RETRY_STATUSES or not idempotent:
                return False
            delay = retry_after_seconds(resp.headers) if resp.status_code in (429, 503) else None
            if delay is None:
                delay = self._backoff(attempt)
            if delay > self.settings.retry_max_wait:
                return False
        else:
            delay = self._backoff(attempt)
        await asyncio.sleep(delay)
        return True

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: QueryParams | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        mutating: bool | None = None,
        raw: bool = False,
    ) -> Response:
        """Send one request; raise GitLabAPIError / TransportError / ToolError on failure."""
        method = method.upper()
        is_read = method in ("GET", "HEAD")
        self._guard(method, is_read is False if mutating is None else mutating)
        idem = is_read if idempotent is None else idempotent
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._sem:
                    self.request_count += 1
                    resp = await self._http.request(method, path, params=list(params or ()), json=json)
            except httpx2.TransportError as exc:
                connect_failed = isinstance(exc, (httpx2.ConnectError, httpx2.ConnectTimeout))
                if (idem or connect_failed) and await self._wait_before_retry(None, attempt, True):
                    continue
                raise self._transport_error(exc) from exc
            if resp.status_code < 400:
                return self._parse(resp, raw)
            if await self._wait_before_retry(resp, attempt, idem):
                continue
            raise self._api_error(resp, method, path, attempt)

    @staticmethod
    def _parse(resp: httpx2.Response, raw: bool) -> Response:
        if raw:
            return Response(resp.status_code, None, resp.headers, resp.content)
        if resp.status_code == 204 or not resp.content:
            return Response(resp.status_code, None, resp.headers)
        ctype = resp.headers.get("content-type", "")
        if "json" in ctype:
            try:
                return Response(resp.status_code, resp.json(), resp.headers)
            except ValueError:
                pass
        return Response(resp.status_code, resp.text, resp.headers, resp.content)

    @asynccontextmanager
    async def stream(self, path: str, params: QueryParams | None = None) -> AsyncIterator[httpx2.Response]:
        """GET with a streamed body (job traces); retried like other reads before the body starts."""
        attempt = 0
        while True:
            attempt += 1
            started = False
            failed: httpx2.Response | None = None
            error: Exception
            async with self._sem:
                self.request_count += 1
                try:
                    async with self._http.stream("GET", path, params=list(params or ())) as resp:
                        if resp.status_code < 400:
                            started = True
                            yield resp
                            return
                        await resp.aread()
                        failed = resp
                        error = self._api_error(resp, "GET", path, attempt)
                except httpx2.TransportError as exc:
                    if started:
                        raise self._transport_error(exc) from exc
                    error = self._transport_error(exc)
            if await self._wait_before_retry(failed, attempt, True):
                continue
            raise error
