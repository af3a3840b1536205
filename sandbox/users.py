"""Identity of sandboxes: the unprivileged host account bwrap runs as, and the user database seen inside.

bwrap started by root keeps host root inside the sandbox, so every sandbox runs as a dedicated system
account (`gigmcp-sb` by default). Inside, the same uid and gid are used, with a generated `/etc/passwd`
and `/etc/group` that name only that account.
"""

from __future__ import annotations

import pwd
from dataclasses import dataclass

SANDBOX_USER = "gigmcp-sb"
SANDBOX_HOME = "/home/sandbox"
INSIDE_NAME = "sandbox"
_NOBODY = 65534  # the overflow id: files of unmapped host owners (/usr, /proc) show up as this


@dataclass(frozen=True, slots=True)
class SandboxUser:
    """A host account usable as a sandbox identity."""

    name: str
    uid: int
    gid: int


def lookup(name: str = SANDBOX_USER) -> SandboxUser:
    """Resolve the sandbox account; refuse root and explain how to create a missing account."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise LookupError(
            f"sandbox user {name!r} does not exist; create it with: "
            f"useradd --system --no-create-home --shell /usr/sbin/nologin {name}"
        ) from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise LookupError(f"sandbox user {name!r} has uid or gid 0; it must be an unprivileged account")
    return SandboxUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def passwd_file(uid: int, gid: int) -> bytes:
    """The `/etc/passwd` seen inside: the sandbox account and nobody (owner of unmapped files)."""
    lines = [f"{INSIDE_NAME}:x:{uid}:{gid}:gigmcp sandbox:{SANDBOX_HOME}:/usr/sbin/nologin"]
    if uid != _NOBODY:
        lines.append(f"nobody:x:{_NOBODY}:{_NOBODY}:nobody:/nonexistent:/usr/sbin/nologin")
    return ("\n".join(lines) + "\n").encode()


def group_file(gid: int) -> bytes:
    """The `/etc/group` seen inside."""
    lines = [f"{INSIDE_NAME}:x:{gid}:"]
    if gid != _NOBODY:
        lines.append(f"nogroup:x:{_NOBODY}:")
    return ("\n".join(lines) + "\n").encode()
