"""Personal and profile tokens: create (the secret is in this one response only), list, revoke."""

from __future__ import annotations

import time

from aiohttp import web

from gateway.api.core import SLUG, USER_NAME, Call, QueryParam, Reply, Route, no_content, not_found, ok
from gateway.api.core import timestamp as ts
from gateway.api.lookup import target_user
from gateway.api.schema import TIMESTAMP, array, component, integer, nullable, obj, string
from gateway.auth import IssuedToken, issue_token
from gateway.store import Store, TokenRecord

TOKEN_LABEL = string(pattern=r"^[^\u0000-\u001f\u007f]{1,100}$", description="a label; no control characters")
TOKEN_FIELDS = {
    "id": integer(),
    "name": string(),
    "kind": string(enum=("personal", "profile")),
    "profile": nullable(string()),
    "prefix": string(description="the first characters of the token, to tell tokens apart"),
    "created_at": TIMESTAMP,
    "expires_at": nullable(TIMESTAMP),
    "last_used_at": nullable(TIMESTAMP),
}
TOKEN = component("Token", obj(TOKEN_FIELDS, list(TOKEN_FIELDS)))
TOKEN_LIST = component("TokenList", obj({"tokens": array(TOKEN)}, ["tokens"]))
ISSUED = component(
    "IssuedToken",
    obj({**TOKEN_FIELDS, "token": string(description="the token itself: shown once, never again")},
        [*TOKEN_FIELDS, "token"]),
)
NEW_TOKEN = obj(
    {
        "name": TOKEN_LABEL,
        "expires_in_days": integer(minimum=1, maximum=3650),
        "profile": SLUG,
        "user": USER_NAME,
    },
    ["name"],
)


async def token_data(store: Store, record: TokenRecord) -> dict[str, object]:
    profile = await store.profiles.by_id(record.profile_id) if record.profile_id is not None else None
    return {
        "id": record.id,
        "name": record.name,
        "kind": record.kind,
        "profile": profile.slug if profile else None,
        "prefix": record.prefix,
        "created_at": ts(record.created_at),
        "expires_at": ts(record.expires_at),
        "last_used_at": ts(record.last_used_at),
    }


async def issued_data(store: Store, issued: IssuedToken) -> dict[str, object]:
    return {**await token_data(store, issued.record), "token": issued.secret}


async def list_tokens(call: Call) -> web.StreamResponse:
    user = await target_user(call, call.query.get("user"))
    store = call.state.store
    now = time.time()
    records = [r for r in await store.tokens.list_for(user.id) if r.active(now)]
    return ok({"tokens": [await token_data(store, r) for r in records]})


async def create_token(call: Call) -> web.StreamResponse:
    store = call.state.store
    user = await target_user(call, call.body.get("user"))
    profile_id = None
    if "profile" in call.body:
        profile = await store.profiles.by_slug(call.body["profile"])
        if profile is None or profile.user_id != user.id:
            not_found("profile")
        profile_id = profile.id
    days = call.body.get("expires_in_days")
    expires_at = time.time() + int(days) * 86400 if days is not None else None
    issued = await issue_token(store, user_id=user.id, name=call.body["name"], profile_id=profile_id,
                               expires_at=expires_at)
    return ok(await issued_data(store, issued), status=201)


async def revoke_token(call: Call) -> web.StreamResponse:
    store = call.state.store
    # An admin may revoke anyone's token; others only their own (someone else's is "no such token").
    owner = None if call.principal.role == "admin" else call.principal.user_id
    if not await store.tokens.revoke(call.path["id"], owner):
        not_found("token")
    return no_content()


ROUTES = [
    Route("GET", "/api/tokens", "List live tokens (an admin may name another user)", "tokens", list_tokens,
          query=(QueryParam("user", USER_NAME, "whose tokens (admin only)"),),
          replies={200: Reply("the tokens, without their secrets", TOKEN_LIST)}),
    Route("POST", "/api/tokens", "Create a personal token, or a token for one profile", "tokens", create_token,
          body=NEW_TOKEN, replies={201: Reply("the token; its secret is shown only here", ISSUED)}),
    Route("DELETE", "/api/tokens/{id}", "Revoke a token (effective on the next request)", "tokens", revoke_token,
          replies={204: Reply("revoked")}),
]
