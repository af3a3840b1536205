"""Role mapping, the pure part: which roles an ID token (or userinfo) grants, and so admin or user.

The roles claim is configurable (`GIG_OIDC_ROLES_CLAIM`) and may have any of the shapes IdPs use:
- a list of names, as a generic `groups` or `roles` claim;
- a map whose keys are the role names, as Zitadel's `urn:zitadel:iam:org:project:roles`
  (`{"admin": {"<org id>": "<org domain>"}}`);
- one string of names separated by spaces or commas;
- a dotted path into nested objects (`realm_access.roles`, Keycloak) when no claim has the exact name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

ADMIN = "admin"
USER = "user"


def _lookup(claims: Mapping[str, Any], claim: str) -> Any:
    if claim in claims:  # exact name first: Zitadel's claim names contain ':' and may contain '.'
        return claims[claim]
    value: Any = claims
    for part in claim.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def roles_from_claims(claims: Mapping[str, Any], claim: str) -> tuple[str, ...]:
    """The role names in `claim`, sorted and without duplicates; () when absent or of another shape."""
    value = _lookup(claims, claim) if claim else None
    if isinstance(value, Mapping):
        names = [str(k) for k in value]
    elif isinstance(value, list | tuple):
        names = [v for v in value if isinstance(v, str)]
    elif isinstance(value, str):
        names = re.split(r"[\s,]+", value)
    else:
        names = []
    return tuple(sorted({n.strip() for n in names if n.strip()}))


def role_for(roles: tuple[str, ...], admin_role: str) -> str:
    """`admin` iff the configured admin role is among the roles (exact, case-sensitive), else `user`."""
    return ADMIN if admin_role in roles else USER
