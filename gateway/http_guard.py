"""DNS-rebinding protection as pure functions: is this Host, this Origin, one we serve?"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True, slots=True)
class HostPolicy:
    hosts: frozenset[str]  # lower-case host names without port; "*" allows any
    origins: frozenset[str]  # scheme://host[:port], lower-case; "*" allows any

    @classmethod
    def build(cls, public_url: str, extra_hosts: tuple[str, ...], extra_origins: tuple[str, ...]) -> HostPolicy:
        public = urlsplit(public_url)
        public_host = _host_only(public.netloc)
        hosts = {*LOOPBACK_NAMES, public_host, *(h.lower() for h in extra_hosts)}
        origins = {f"{public.scheme}://{public.netloc}".lower(), *(o.lower().rstrip("/") for o in extra_origins)}
        return cls(frozenset(hosts), frozenset(origins))

    def host_allowed(self, host_header: str | None) -> bool:
        if "*" in self.hosts:
            return True
        if not host_header:
            return False
        return _host_only(host_header) in self.hosts

    def origin_allowed(self, origin: str | None) -> bool:
        if origin is None or "*" in self.origins:
            return True
        origin = origin.lower().rstrip("/")
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        # Local tools (inspector, IDEs) run on a loopback origin with any port.
        return parts.scheme in ("http", "https") and _host_only(parts.netloc) in LOOPBACK_NAMES


def _host_only(netloc: str) -> str:
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        end = netloc.find("]")
        return netloc[: end + 1] if end != -1 else netloc
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc
