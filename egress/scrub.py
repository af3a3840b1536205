"""Replace secrets by their placeholders in data flowing back to a sandbox.

`scrub` works on a whole buffer; `StreamScrubber` is a mitmproxy stream callable that does the same
across chunk boundaries by holding back the longest tail that could still begin a secret.
"""

from __future__ import annotations

from collections.abc import Iterable


def _pairs(replacements: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    # Longest secret first so that a secret containing another one is replaced whole.
    pairs = {(s.encode(), p.encode()) for s, p in replacements if s}
    return sorted(pairs, key=lambda sp: len(sp[0]), reverse=True)


def scrub(data: bytes, replacements: Iterable[tuple[str, str]]) -> bytes:
    for secret, placeholder in _pairs(replacements):
        data = data.replace(secret, placeholder)
    return data


def scrub_text(text: str, replacements: Iterable[tuple[str, str]]) -> str:
    for secret, placeholder in sorted(set(replacements), key=lambda sp: len(sp[0]), reverse=True):
        if secret:
            text = text.replace(secret, placeholder)
    return text


class StreamScrubber:
    """Callable for `flow.response.stream`: chunk in, scrubbed chunk out; b"" flushes the tail.

    Also counts the bytes received from upstream (for the audit record).
    """

    def __init__(self, replacements: Iterable[tuple[str, str]]) -> None:
        self._pairs = _pairs(replacements)
        self._hold = max((len(s) for s, _ in self._pairs), default=1) - 1
        self._tail = b""
        self.bytes_in = 0

    def _held_suffix(self, buf: bytes) -> int:
        """Length of the longest proper suffix of buf that is a prefix of some secret."""
        for k in range(min(self._hold, len(buf)), 0, -1):
            end = buf[-k:]
            if any(s.startswith(end) for s, _ in self._pairs):
                return k
        return 0

    def __call__(self, chunk: bytes) -> bytes:
        self.bytes_in += len(chunk)
        if not self._pairs:
            return chunk
        buf = self._tail + chunk
        if not chunk:  # end of message
            self._tail = b""
            return scrub_pairs(buf, self._pairs)
        buf = scrub_pairs(buf, self._pairs)
        keep = self._held_suffix(buf)
        self._tail = buf[len(buf) - keep :] if keep else b""
        return buf[: len(buf) - keep]


def scrub_pairs(data: bytes, pairs: list[tuple[bytes, bytes]]) -> bytes:
    for secret, placeholder in pairs:
        data = data.replace(secret, placeholder)
    return data
