"""The generic executor: one code path from (action name, params) to a rendered result.

Order of checks: lookup -> policy (domain, denied, read-only) -> validation/coercion -> URL expansion
-> required params -> confirm for destructive actions -> quick-action guard -> version/tier gate ->
path resolution -> request (or a safe-mode preview at the moment a write would be sent) -> render.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from . import results, schema, urls
from .actions import BY_NAME, Action
from .actions.model import Param, route_names
from .client import GitLabClient, QueryParams, Response
from .config import Settings
from .errors import GitLabAPIError, ToolError, TransportError, describe
from .instance import Instance
from .policy import Policy, normalize_name, suggest
from .resolver import Resolver
from .results import Call, Outcome, decode_cursor, encode_cursor
from .textutil import quick_action_lines

log = logging.getLogger(__name__)

__all__ = ["HANDLERS", "Call", "Executor", "Outcome", "Preview", "decode_cursor", "encode_cursor", "handler"]

_NUMERIC_REFS = ("mr", "issue", "pipeline", "job", "snippet", "milestone")
_CONFIRM = Param("confirm", "boolean")
_OFFSET = Param("result_offset", "integer", minimum=0)


class Preview(Exception):
    """Raised when a write would be sent in safe mode."""

    def __init__(self, method: str, path: str, query: QueryParams | None, body: Any) -> None:
        super().__init__(method)
        self.request = {"method": method, "path": path, "query": dict(query or ()), "body": body}


Handler = Callable[["Executor", Call], Awaitable[Outcome]]
HANDLERS: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


def _query_pairs(name: str, value: Any, csv: bool) -> list[tuple[str, str]]:
    if isinstance(value, bool):
        return [(name, "true" if value else "false")]
    if isinstance(value, list):
        if csv:
            return [(name, ",".join(str(v) for v in value))]
        return [(f"{name}[]", str(v)) for v in value]
    if isinstance(value, dict):
        pairs: list[tuple[str, str]] = []
        for k, v in value.items():
            pairs.extend(_query_pairs(f"{name}[{k}]", v, csv))
        return pairs
    return [(name, str(value))]


class Executor:
    """Runs actions. One per server process; shares the HTTP client and the caches."""

    def __init__(self, settings: Settings, client: GitLabClient, policy: Policy) -> None:
        self.settings = settings
        self.client = client
        self.policy = policy
        self.resolver = Resolver(client)
        self.instance = Instance(client)

    # ---- entry point -------------------------------------------------------------------------------

    async def run(
        self, name: str, params: Mapping[str, Any] | None, *, confirm: bool = False, result_offset: int = 0
    ) -> Outcome:
        action: Action | None = None
        try:
            action = self.lookup(name)
            call = await self.prepare(action, dict(params or {}), confirm=confirm, result_offset=result_offset)
            fn = HANDLERS.get(action.handler, _generic)
            outcome = await fn(self, call)
            if call.notes:
                outcome.structured.setdefault("normalized_params", call.notes)
            return outcome
        except Preview as preview:
            assert action is not None
            return self._preview(action, preview.request)
        except ToolError as err:
            return self.error(err.message, err.hint, err.data)
        except GitLabAPIError as err:
            ids = tuple(p.name for p in action.params if p.ref) if action else ()
            message, hint = describe(err, action.name if action else "", ids)
            data: dict[str, Any] = {"status": err.status}
            if err.retry_after is not None:
                data["retry_after"] = err.retry_after
            if err.request_id:
                data["request_id"] = err.request_id
            return self.error(message, hint, data)
        except TransportError as err:
            return self.error(str(err), "", {"status": "unreachable"})

    def lookup(self, name: str) -> Action:
        key = normalize_name(name)
        action = BY_NAME.get(key)
        if action is None:
            visible = [a.name for a in self.policy.visible()]
            close = suggest(key, visible)
            raise ToolError(
                f"Unknown action `{name}`." + (f" Did you mean: {', '.join(close)}?" if close else ""),
                hint='Find actions with gitlab_find_actions (query="what you want to do").',
            )
        refusal = self.policy.refusal(action)
        if refusal:
            raise ToolError(f"Refused: {refusal}", hint="Nothing was sent to GitLab.", data={"refused": action.name})
        return action

    async def prepare(
        self, action: Action, params: dict[str, Any], *, confirm: bool = False, result_offset: int = 0
    ) -> Call:
        try:
            if "confirm" in params:
                confirm = bool(schema.coerce(_CONFIRM, params.pop("confirm"))) or confirm
            if "result_offset" in params:
                result_offset = int(schema.coerce(_OFFSET, params.pop("result_offset")) or 0)
        except schema.CoercionError as exc:
            raise ToolError(str(exc)) from None
        args, notes = schema.validate(action, params)
        self._expand_refs(action, args)
        missing = schema.missing_required(action, args)
        if missing:
            raise ToolError(
                f"Missing required parameter(s) for {action.name}: {', '.join(missing)}.",
                hint="Ids also accept GitLab URLs (e.g. an MR URL fills project and mr_iid).",
                data={"input_schema": action.input_schema()},
            )
        if action.destructive and not confirm and not self.settings.safe_mode:
            raise ToolError(
                f"`{action.name}` is destructive ({action.summary.lower()}). Nothing was done.",
                hint="Call again with confirm: true if the user really wants this.",
                data={"needs_confirm": True},
            )
        self._guard_quick_actions(action, args)
        await self.instance.check(action.name, action.min_version, action.tier)
        await self._resolve(action, args)
        path = self._path(action, args)
        call = Call(action=action, args=args, path=path, result_offset=max(0, result_offset), notes=notes)
        self._fill_request(call)
        return call

    # ---- preparation helpers -----------------------------------------------------------------------

    def _expand_refs(self, action: Action, args: dict[str, Any]) -> None:
        base = self.settings.base_path
        for p in action.params:
            if not p.ref or p.name not in args:
                continue
            value = args[p.name]
            parsed: urls.Parsed | None = None
            if p.ref in ("project", "group"):
                ns, parsed = urls.namespace_of(value, base)
                if ns is None:
                    raise ToolError(f"`{p.name}` must be a numeric id, a path like group/project, or a URL.")
                args[p.name] = ns
            elif p.ref in _NUMERIC_REFS:
                num, parsed = urls.number_of(value, p.ref, base)
                if num is None:
                    raise ToolError(f"`{p.name}` must be a number or a GitLab {p.ref} URL; got {value!r}.")
                args[p.name] = num
            elif p.ref == "commit" and isinstance(value, str) and "://" in value:
                parsed = urls.parse(value, base)
                if parsed is None or not parsed.ref:
                    raise ToolError(f"`{p.name}`: cannot find a commit SHA in {value!r}.")
                args[p.name] = parsed.ref
            if parsed is not None:
                self._fill_from(action, args, parsed)

    @staticmethod
    def _fill_from(action: Action, args: dict[str, Any], parsed: urls.Parsed) -> None:
        for p in action.params:
            if p.name in args:
                continue
            as_project = p.ref == "project" and p.name == "project" and not parsed.is_group
            as_group = p.ref == "group" and parsed.is_group
            if (as_project or as_group) and parsed.path:
                args[p.name] = parsed.path
            elif p.ref and p.ref == parsed.kind and parsed.number is not None:
                args[p.name] = parsed.number
            elif p.ref == "commit" and parsed.kind == "commit" and parsed.ref:
                args[p.name] = parsed.ref
            elif parsed.kind == "blob" and p.name == "path" and parsed.file_path:
                args[p.name] = parsed.file_path
            elif parsed.kind in ("blob", "tree") and p.name == "ref" and parsed.ref:
                args[p.name] = parsed.ref

    def _guard_quick_actions(self, action: Action, args: Mapping[str, Any]) -> None:
        if self.settings.allow_quick_actions:
            return
        for field_name in action.guard:
            text = args.get(field_name)
            if isinstance(text, str):
                found = quick_action_lines(text)
                if found:
                    shown = ", ".join(f"`{line[:40]}`" for line in found[:3])
                    raise ToolError(
                        f"Refused: `{field_name}` has line(s) GitLab would run as quick actions ({shown}). "
                        "Quick actions can merge, approve, close or reassign, bypassing this server's rules.",
                        hint="Reword so no line starts with '/', or put it in a code span or fenced block. "
                        "Operators can allow quick actions with GITLAB_ALLOW_QUICK_ACTIONS=true.",
                        data={"quick_actions": found},
                    )

    async def _resolve(self, action: Action, args: dict[str, Any]) -> None:
        for p in action.params:
            value = args.get(p.name)
            if value is None:
                continue
            if p.ref == "project" and isinstance(value, str):
                args[p.name] = await self.resolver.project(value)
            elif p.ref == "group" and isinstance(value, str):
                args[p.name] = await self.resolver.group(value)

    @staticmethod
    def _path(action: Action, args: Mapping[str, Any]) -> str:
        for template in action.path:
            names = [n for n in _placeholders(template)]
            if all(args.get(n) not in (None, "") for n in names):
                out = template
                for n in names:
                    p = action.param(n)
                    keep = p.keep_slashes if p else False
                    out = out.replace("{" + n + "}", urls.encode_segment(args[n], keep))
                return out
        scopes = sorted(
            {n for t in action.path for n in _placeholders(t)} - {p.name for p in action.params if p.required}
        )
        raise ToolError(
            f"`{action.name}` needs one of: {', '.join(scopes)}.",
            hint="Give a project (id, path or URL) or a group, depending on the scope you want.",
        )

    def _fill_request(self, call: Call) -> None:
        action = call.action
        used = {n for t in action.path for n in _placeholders(t)}
        query: list[tuple[str, str]] = []
        body: dict[str, Any] = {}
        in_query = action.method in ("GET", "DELETE")
        for p in action.params:
            if p.name in used or p.where == "none" or p.name not in call.args:
                continue
            value = call.args[p.name]
            where = p.where or ("query" if in_query else "body")
            if where == "query":
                query.extend(_query_pairs(p.wire, value, p.csv))
            else:
                body[p.wire] = ",".join(map(str, value)) if (p.csv and isinstance(value, list)) else value
        for key, value in action.fixed.items():
            if in_query:
                query.extend(_query_pairs(key, value, False))
            else:
                body[key] = value
        if action.paginated:
            state: dict[str, Any] = {}
            if call.args.get("cursor"):
                state = decode_cursor(str(call.args["cursor"]))
            per_page = int(call.args.get("per_page") or state.get("per_page") or 20)
            state["per_page"] = per_page
            call.page_state = state
            query = [(k, v) for k, v in query if k not in state]
            query.extend((k, str(v)) for k, v in state.items() if not k.startswith("_"))
        call.query = query
        call.body = body or None

    # ---- sending and rendering ---------------------------------------------------------------------

    async def send(
        self,
        call: Call,
        method: str | None = None,
        path: str | None = None,
        *,
        query: QueryParams | None = None,
        body: Any = None,
        raw: bool = False,
        use_call_request: bool = False,
    ) -> Response:
        method = (method or call.action.method).upper()
        path = path or call.path
        if use_call_request:
            query, body = call.query, call.body
        mutating = not call.action.read_only and method not in ("GET", "HEAD")
        if mutating and self.settings.safe_mode:
            raise Preview(method, path, query, body)
        idempotent = True if method in ("GET", "HEAD") else call.action.idempotent
        return await self.client.request(
            method, path, params=query, json=body, idempotent=idempotent, mutating=mutating, raw=raw
        )

    def error(self, message: str, hint: str = "", data: Mapping[str, Any] | None = None) -> Outcome:
        text = f"**Error:** {message}" + (f"\n\n{hint}" if hint else "")
        structured: dict[str, Any] = {"error": message}
        if hint:
            structured["hint"] = hint
        if data:
            structured.update(data)
        return Outcome(text, structured, is_error=True)

    def _preview(self, action: Action, request: dict[str, Any]) -> Outcome:
        lines = [
            f"**Safe mode: nothing was sent to GitLab.** `{action.name}` would send:",
            f"{request['method']} {self.settings.api_url}{request['path']}",
        ]
        if request["query"]:
            lines.append("query: " + json.dumps(request["query"], ensure_ascii=False))
        if request["body"] is not None:
            lines.append("body: " + json.dumps(request["body"], ensure_ascii=False, default=str))
        if action.destructive:
            lines.append("This action is destructive: outside safe mode it needs confirm: true.")
        structured = {
            "status": "preview",
            "mode": "safe",
            "action": action.name,
            "request": request,
            "destructive": action.destructive,
        }
        return Outcome("\n".join(lines), structured)

    def finish(self, call: Call, text: str, structured: dict[str, Any]) -> Outcome:
        return results.finish(self.settings, call, text, structured)

    def render(self, call: Call, data: Any, headers: Mapping[str, str] | None = None, title: str = "") -> Outcome:
        return results.render_result(self.settings, call, data, headers, title)

    def render_list(
        self,
        call: Call,
        items: list[Any],
        headers: Mapping[str, str],
        title: str = "",
        row_fn: Callable[[Any], str] | None = None,
        item_fn: Callable[[Any], Any] | None = None,
    ) -> Outcome:
        return results.render_list(self.settings, call, items, headers, title, row_fn, item_fn)


def _placeholders(template: str) -> list[str]:
    return route_names(template)


async def _generic(ex: Executor, call: Call) -> Outcome:
    resp = await ex.send(call, use_call_request=True)
    data = resp.data
    if call.action.pick and isinstance(data, Mapping):
        data = data.get(call.action.pick)
        if data is None:
            data = []
    return ex.render(call, data, resp.headers)
