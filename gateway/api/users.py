"""Users (admin only) and `GET /api/me` (anyone: who am I, which profiles do I reach)."""

from __future__ import annotations

from aiohttp import web

from gateway.api.core import USER_NAME, Call, Reply, Route, conflict, no_content, not_found, ok, timestamp
from gateway.api.lookup import caller, stop_sandboxes
from gateway.api.schema import TIMESTAMP, array, component, nullable, obj, string
from gateway.auth import BOOTSTRAP_USER
from gateway.store import Store, User

ROLE = string(enum=("admin", "user"))
USER = component(
    "User",
    obj(
        {"name": USER_NAME, "role": ROLE, "created_at": TIMESTAMP, "default_profile": nullable(string())},
        ["name", "role", "created_at", "default_profile"],
    ),
)
USER_LIST = component("UserList", obj({"users": array(USER)}, ["users"]))
NEW_USER = obj({"name": USER_NAME, "role": ROLE}, ["name"])
ME = component(
    "Me",
    obj(
        {
            "name": USER_NAME,
            "role": ROLE,
            "default_profile": nullable(string()),
            "profiles": array(string()),
        },
        ["name", "role", "default_profile", "profiles"],
    ),
)


async def user_data(store: Store, user: User) -> dict[str, object]:
    default = await store.profiles.default_for(user.id)
    return {
        "name": user.name,
        "role": user.role,
        "created_at": timestamp(user.created_at),
        "default_profile": default.slug if default else None,
    }


async def me(call: Call) -> web.StreamResponse:
    user = await caller(call)
    profiles = await call.state.store.profiles.list_for(user.id)
    default = next((p.slug for p in profiles if p.is_default), None)
    return ok({"name": user.name, "role": user.role, "default_profile": default,
               "profiles": [p.slug for p in profiles]})


async def list_users(call: Call) -> web.StreamResponse:
    store = call.state.store
    return ok({"users": [await user_data(store, u) for u in await store.users.list()]})


async def create_user(call: Call) -> web.StreamResponse:
    store = call.state.store
    user = await store.users.create(call.body["name"], call.body.get("role", "user"))
    if user is None:
        conflict(f"user {call.body['name']!r} already exists")
    await store.profiles.ensure_default(user)
    return ok(await user_data(store, user), status=201)


async def get_user(call: Call) -> web.StreamResponse:
    user = await call.state.store.users.by_name(call.path["name"])
    if user is None:
        not_found("user")
    return ok(await user_data(call.state.store, user))


async def delete_user(call: Call) -> web.StreamResponse:
    store = call.state.store
    user = await store.users.by_name(call.path["name"])
    if user is None:
        not_found("user")
    if user.name == BOOTSTRAP_USER or user.id == call.principal.user_id:
        conflict("the bootstrap admin and the caller cannot be deleted")
    profile_ids = [p.id for p in await store.profiles.list_for(user.id)]
    await stop_sandboxes(call, profile_ids, "user deleted")
    for profile_id in profile_ids:
        call.state.aggregates.pop(profile_id, None)
    await store.users.delete(user.id)
    return no_content()


ROUTES = [
    Route("GET", "/api/me", "Who the caller is and which profiles they reach", "users", me,
          replies={200: Reply("the caller", ME)}),
    Route("GET", "/api/users", "List users", "users", list_users, access="admin",
          replies={200: Reply("all users", USER_LIST)}),
    Route("POST", "/api/users", "Create a user (with a default profile)", "users", create_user, access="admin",
          body=NEW_USER, replies={201: Reply("the new user", USER)}),
    Route("GET", "/api/users/{name}", "Show a user", "users", get_user, access="admin",
          replies={200: Reply("the user", USER)}),
    Route("DELETE", "/api/users/{name}", "Delete a user with their tokens, profiles, consents and credentials",
          "users", delete_user, access="admin", replies={204: Reply("deleted")}),
]
