"""A stateful fake GitLab REST API (aiohttp) for tests.

Routes match GitLab's `/api/v4` paths against the *raw* (still percent-encoded) request path, so
`/projects/acme%2Fapi` resolves like GitLab while an unencoded `/projects/acme/api` does not.
Every request is recorded (method, raw path, query, headers including the auth header, body);
failures can be injected per path (e.g. 429 with Retry-After, 5xx, 401) for a number of times.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

from aiohttp import web

from .state import Store, seed

API = "/api/v4"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: str
    proxied: bool = False

    @property
    def is_write(self) -> bool:
        return self.method not in ("GET", "HEAD", "OPTIONS")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def auth(self) -> str:
        """The credential the request carried ("" when none)."""
        for key, value in self.headers.items():
            if key.lower() == "private-token":
                return value
            if key.lower() == "authorization" and value.lower().startswith("bearer "):
                return value[7:]
        return ""


@dataclass
class Injection:
    status: int
    path: re.Pattern[str]
    method: str | None
    times: int
    headers: dict[str, str]
    body: Any


@dataclass
class Req:
    """What a route handler gets: decoded path params, query, JSON/form body, headers."""

    method: str
    params: dict[str, str]
    query: Any
    body: dict[str, Any]
    headers: Any
    raw: web.Request

    def arg(self, name: str, default: Any = None) -> Any:
        if name in self.body:
            return self.body[name]
        return self.query.get(name, default)

    def list_arg(self, name: str) -> list[str]:
        """Array params arrive as JSON arrays, `name[]=a&name[]=b` or "a,b"."""
        if name in self.body:
            value = self.body[name]
            values = [str(v) for v in value] if isinstance(value, list) else str(value).split(",")
        else:
            values = self.query.getall(name + "[]", []) or [
                part for v in self.query.getall(name, []) for part in v.split(",")
            ]
        return [v for v in values if v != ""]

    def flag(self, name: str) -> bool | None:
        value = self.arg(name)
        if value is None:
            return None
        return value is True or str(value).lower() in ("true", "1", "yes")


Handler = Callable[["FakeGitLab", Req], Awaitable[web.StreamResponse]]


def error(status: int, message: Any) -> web.Response:
    return web.json_response({"message": message}, status=status)


def not_found(what: str) -> web.Response:
    return error(404, f"404 {what} Not Found")


class Fail(Exception):
    """Raised by route helpers to answer with an error response."""

    def __init__(self, status: int, message: Any) -> None:
        super().__init__(status)
        self.response = error(status, message)


class Router:
    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, fn: Handler) -> None:
        regex = re.sub(r":(\w+)", r"(?P<\1>[^/]+)", pattern)
        regex = re.sub(r"\*(\w+)", r"(?P<\1>.+)", regex)
        self.routes.append((method, re.compile("^" + regex + "$"), fn))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | str | None:
        allowed = False
        for m, regex, fn in self.routes:
            found = regex.match(path)
            if found:
                if m == method:
                    return fn, {k: unquote(v) for k, v in found.groupdict().items()}
                allowed = True
        return "405" if allowed else None


ROUTER = Router()


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ROUTER.add(method, pattern, fn)
        return fn

    return register


class FakeGitLab:
    """The fake: state, request log, injections, and the aiohttp application."""

    def __init__(
        self,
        tokens: set[str] | None = None,
        version: str = "17.5.0-ee",
        enterprise: bool = True,
        trace_lines: int = 50_000,
    ) -> None:
        self.tokens = {"glpat-test-token"} if tokens is None else tokens
        self.require_auth = True
        self.version = version
        self.enterprise = enterprise
        self.store: Store = seed(trace_lines=trace_lines)
        self.requests: list[RecordedRequest] = []
        self.injections: list[Injection] = []
        self.base_url = ""
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        from . import routes  # noqa: F401  (registers the API routes)

    # ---- test helpers ----------------------------------------------------------------------------

    def inject(
        self,
        status: int,
        path: str = ".*",
        method: str | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` instead of serving them."""
        self.injections.append(
            Injection(
                status,
                re.compile(path),
                method,
                times,
                headers or {},
                body if body is not None else {"message": f"{status} injected"},
            )
        )

    def writes(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.is_write]

    def reset(self) -> None:
        self.requests.clear()
        self.injections.clear()

    # ---- plumbing --------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    def _authorized(self, request: web.Request) -> bool:
        if not self.require_auth:
            return True
        token = request.headers.get("PRIVATE-TOKEN", "")
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = token or auth[7:]
        return token in self.tokens

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.split("?", 1)[0]
        proxied = raw_path.startswith(("http://", "https://"))
        if proxied:  # absolute-form target: we are being used as a forward proxy for plain HTTP
            raw_path = "/" + raw_path.split("://", 1)[1].split("/", 1)[-1]
        if raw_path.startswith("/__fake__/"):
            return await self._control(request, raw_path)
        body_text = await request.text() if request.can_read_body else ""
        self.requests.append(
            RecordedRequest(request.method, raw_path, dict(request.query), dict(request.headers), body_text, proxied)
        )
        if not raw_path.startswith(API):
            return error(404, "404 Not Found")
        path = raw_path[len(API) :] or "/"
        for inj in self.injections:
            if inj.times > 0 and inj.path.search(path) and (inj.method in (None, request.method)):
                inj.times -= 1
                return web.json_response(inj.body, status=inj.status, headers=inj.headers)
        if not self._authorized(request):
            return error(401, "401 Unauthorized")
        found = ROUTER.match(request.method, path)
        if found is None:
            return error(404, "404 Not Found")
        if found == "405":
            return error(405, "405 Method Not Allowed")
        assert not isinstance(found, str)
        fn, params = found
        body: dict[str, Any] = {}
        if body_text:
            ctype = request.headers.get("Content-Type", "")
            if "json" in ctype:
                try:
                    parsed = json.loads(body_text)
                except ValueError:
                    return error(400, "400 Bad request - invalid JSON")
                body = parsed if isinstance(parsed, dict) else {}
            else:
                body = dict((await request.post()).items())
        req = Req(request.method, params, request.query, body, request.headers, request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return await fn(self, req)
        except Fail as failure:
            return failure.response
        finally:
            self.in_flight -= 1

    async def _control(self, request: web.Request, path: str) -> web.StreamResponse:
        if path == "/__fake__/requests":
            return web.json_response([r.__dict__ for r in self.requests])
        if path == "/__fake__/reset":
            self.reset()
            return web.json_response({"ok": True})
        if path == "/__fake__/inject" and request.method == "POST":
            spec = await request.json()
            self.inject(
                int(spec["status"]),
                spec.get("path", ".*"),
                spec.get("method"),
                int(spec.get("times", 1)),
                spec.get("headers"),
                spec.get("body"),
            )
            return web.json_response({"ok": True})
        return error(404, "unknown control endpoint")

    # ---- helpers for routes ----------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def paginate(self, req: Req, items: list[Any]) -> web.Response:
        """Offset pagination with GitLab's headers (X-Total, X-Next-Page, Link, ...)."""
        try:
            page = max(1, int(req.query.get("page", 1)))
            per_page = max(1, min(100, int(req.query.get("per_page", 20))))
        except ValueError:
            return error(400, "400 Bad request - page is invalid")
        total = len(items)
        pages = max(1, math.ceil(total / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(total),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }
        base = self.url(req.raw.path)
        query = {k: v for k, v in req.query.items() if k not in ("page", "per_page")}
        links = []
        for rel, num in (("prev", page - 1), ("next", page + 1), ("first", 1), ("last", pages)):
            if (rel == "prev" and page <= 1) or (rel == "next" and page >= pages):
                continue
            links.append(f'<{base}?{urlencode({**query, "page": num, "per_page": per_page})}>; rel="{rel}"')
        headers["Link"] = ", ".join(links)
        return web.json_response(chunk, headers=headers)


@dataclass
class Running:
    fake: FakeGitLab
    url: str
    runner: web.AppRunner = field(repr=False)
