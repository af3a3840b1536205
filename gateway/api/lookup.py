"""Lookups shared by the resource modules: the caller's own profile, an installed server, a target user,
and the side effects a change has on the data plane (rebuilt aggregates, stopped sandboxes).

Someone else's profile or token is reported exactly like a missing one (404), never as forbidden,
so that probing reveals nothing about other users.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from gateway.api.core import ApiError, Call, not_found
from gateway.store import InstalledServer, Profile, User


async def own_profile(call: Call, slug: str) -> Profile:
    profile = await call.state.store.profiles.by_slug(slug)
    if profile is None or profile.user_id != call.principal.user_id:
        not_found("profile")
    return profile


def installed_server(call: Call, name: str) -> InstalledServer:
    server = call.state.installed.get(name)
    if server is None:
        not_found("installed server")
    return server


async def caller(call: Call) -> User:
    user = await call.state.store.users.by_id(call.principal.user_id)
    if user is None:  # deleted between authentication and now
        raise ApiError(401, "unauthorized", "a valid bearer token is required")
    return user


async def target_user(call: Call, name: str | None) -> User:
    """The caller, or (for an admin) the named user."""
    if name is None or name == call.principal.user:
        return await caller(call)
    if call.principal.role != "admin":
        raise ApiError(403, "forbidden", "only an admin may act for another user")
    user = await call.state.store.users.by_name(name)
    if user is None:
        not_found("user")
    return user


async def profiles_changed(call: Call, profile_ids: Iterable[int]) -> None:
    """Rebuild the profiles' aggregates on next use and tell their connected clients to re-list."""
    for profile_id in profile_ids:
        call.state.aggregates.pop(profile_id, None)
        for kind in ("tools", "prompts", "resources"):
            await call.state.frontdoor.backend_notification("", profile_id, f"notifications/{kind}/list_changed", None)


async def stop_sandboxes(call: Call, profile_ids: Iterable[int], reason: str, server: str | None = None) -> int:
    ids = set(profile_ids)

    def matches(key: Hashable) -> bool:
        return isinstance(key, tuple) and key[1] in ids and (server is None or key[0] == server)

    return await call.state.supervisor.stop_matching(matches, reason)
