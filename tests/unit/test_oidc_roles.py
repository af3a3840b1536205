"""Role mapping from the configurable roles claim: plain lists (`groups`), Zitadel's role map, strings, paths."""

from __future__ import annotations

from gateway.oidc import role_for, roles_from_claims
from gateway.oidc.service import name_candidates, safe_return_to

ZITADEL = "urn:zitadel:iam:org:project:roles"


def test_plain_list_claim() -> None:
    claims = {"groups": ["staff", "gig-admin", 7, "staff"]}
    roles = roles_from_claims(claims, "groups")
    assert roles == ("gig-admin", "staff")
    assert role_for(roles, "gig-admin") == "admin"
    assert role_for(roles, "admin") == "user"


def test_zitadel_role_map_claim() -> None:
    claims = {ZITADEL: {"admin": {"2394": "acme.zitadel.cloud"}, "viewer": {"2394": "acme.zitadel.cloud"}}}
    roles = roles_from_claims(claims, ZITADEL)
    assert roles == ("admin", "viewer")
    assert role_for(roles, "admin") == "admin"
    assert role_for(roles_from_claims({ZITADEL: {"viewer": {}}}, ZITADEL), "admin") == "user"


def test_string_and_nested_path_claims() -> None:
    assert roles_from_claims({"roles": "a b,c"}, "roles") == ("a", "b", "c")
    assert roles_from_claims({"realm_access": {"roles": ["admin"]}}, "realm_access.roles") == ("admin",)


def test_absent_or_odd_claims_grant_nothing() -> None:
    assert roles_from_claims({}, "groups") == ()
    assert roles_from_claims({"groups": None}, "groups") == ()
    assert roles_from_claims({"groups": 5}, "groups") == ()
    assert roles_from_claims({"groups": ["admin"]}, "") == ()
    assert role_for((), "admin") == "user"
    assert role_for(("Admin",), "admin") == "user"  # exact, case-sensitive


def test_user_names_from_claims() -> None:
    assert name_candidates({"preferred_username": "Alice.Smith"})[0] == "alice-smith"
    assert name_candidates({"email": "9lives@example.com"})[0] == "u-9lives"
    assert name_candidates({})[0] == "user"
    assert name_candidates({"preferred_username": "bob"})[1] == "bob-2"


def test_return_to_is_local_only() -> None:
    assert safe_return_to("/apps?x=1") == "/apps?x=1"
    for bad in ("//evil.example", "https://evil.example/", "/\\evil", "", None, "apps"):
        assert safe_return_to(bad) == "/"
