"""Multi-round input (2026-07-28 `input_required`) for backends that ask the old way.

A 2026-07-28 client cannot receive a server-to-client request; it gets an `input_required` result
and retries the original request with `inputResponses` and the echoed `requestState`. Backends speak
2025-11-25 to the gateway and ask mid-call with a real JSON-RPC request (sampling, elicitation,
roots). An `InputRound` bridges the two: the backend call keeps running in the gateway, parked
between the client's HTTP requests; each question it asks becomes an entry of `inputRequests`, and
the retry's answers are handed back to the waiting backend. The `requestState` is a random handle
to the parked call, bound to the caller, single-use and short-lived.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.mcp.backend import JSON, BackendError

CAPABILITY_OF = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}
MISSING_CAPABILITY = -32021
INVALID_PARAMS = -32602
GATHER_WINDOW_S = 0.05  # questions a backend asks together arrive within this window


class MissingCapability(BackendError):
    def __init__(self, capability: str) -> None:
        super().__init__(MISSING_CAPABILITY, f"this request needs the client capability '{capability}'",
                         {"requiredCapabilities": {capability: {}}})


@dataclass(slots=True)
class Question:
    method: str
    params: JSON | None
    answer: asyncio.Future[JSON]


@dataclass(slots=True)
class InputRound:
    """One backend call, possibly parked while its client is away answering questions."""

    owner: str
    capabilities: Mapping[str, Any]
    task: asyncio.Task[JSON] | None = None
    questions: asyncio.Queue[Question] = field(default_factory=asyncio.Queue)
    open: dict[str, Question] = field(default_factory=dict)
    failure: BackendError | None = None
    expires: float = 0.0
    _keys: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def ask(self, method: str, params: JSON | None) -> JSON:
        """The backend's server-to-client request, as the aggregator's relay callback."""
        capability = CAPABILITY_OF.get(method)
        if capability is None:
            raise BackendError(-32601, f"the gateway cannot relay {method} to this client")
        if capability not in self.capabilities:
            self.failure = MissingCapability(capability)
            self.questions.put_nowait(Question(method, params, asyncio.get_running_loop().create_future()))
            raise self.failure
        question = Question(method, params, asyncio.get_running_loop().create_future())
        self.questions.put_nowait(question)
        return await question.answer

    async def next_step(self) -> JSON | None:
        """Wait for the call to finish (its result) or to ask something (None: see `open`)."""
        assert self.task is not None
        getter = asyncio.ensure_future(self.questions.get())
        try:
            await asyncio.wait({self.task, getter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            self._take(getter.result())
            await asyncio.sleep(GATHER_WINDOW_S)
            while not self.questions.empty():
                self._take(self.questions.get_nowait())
        if self.failure is not None:
            raise self.failure
        if not self.open:
            return self.task.result()  # raises the backend's error, if any
        return None

    def _take(self, question: Question) -> None:
        self.open[f"q{next(self._keys)}"] = question

    def input_required(self, state: str) -> JSON:
        requests = {key: {"method": q.method, **({"params": q.params} if q.params else {})}
                    for key, q in self.open.items()}
        return {"resultType": "input_required", "inputRequests": requests, "requestState": state}

    def answer(self, responses: Mapping[str, Any]) -> None:
        """Hand the client's answers to the waiting backend; unanswered questions stay open."""
        for key in list(self.open):
            response = responses.get(key)
            if isinstance(response, dict):
                self.open.pop(key).answer.set_result(dict(response))

    def abandon(self) -> None:
        for question in self.open.values():
            if not question.answer.done():
                question.answer.set_exception(BackendError(-32800, "the client did not answer in time"))
                question.answer.exception()  # the backend call may already be gone: nobody else reads it
        if self.task is None:
            return
        if not self.task.done():
            self.task.cancel()
        elif not self.task.cancelled():
            self.task.exception()  # mark it retrieved: the failure was already reported to the client


class InputRounds:
    """Parked calls by `requestState`; each state is single-use and expires."""

    def __init__(self, ttl_s: float = 300.0, max_parked: int = 1000) -> None:
        self._ttl = ttl_s
        self._max = max_parked
        self._parked: dict[str, InputRound] = {}

    async def run(self, owner: str, capabilities: Mapping[str, Any],
                  start: Callable[[InputRound], Awaitable[JSON]]) -> JSON:
        """Start a call; return its result, or an `input_required` result that parks it."""
        round_ = InputRound(owner, capabilities)
        round_.task = asyncio.ensure_future(start(round_))
        return await self._advance(round_)

    async def resume(self, owner: str, state: str, responses: Mapping[str, Any]) -> JSON:
        round_ = self._parked.pop(state, None)
        if round_ is None or round_.owner != owner or round_.expires < time.monotonic():
            if round_ is not None:
                round_.abandon()
            raise BackendError(INVALID_PARAMS, "Invalid or expired requestState")
        round_.answer(responses)
        if round_.open:  # some answers are missing: ask for exactly those again
            return self._park(round_)
        return await self._advance(round_)

    async def _advance(self, round_: InputRound) -> JSON:
        try:
            result = await round_.next_step()
        except BaseException:
            round_.abandon()
            raise
        return result if result is not None else self._park(round_)

    def _park(self, round_: InputRound) -> JSON:
        self._expire()
        if len(self._parked) >= self._max:
            round_.abandon()
            raise BackendError(-32000, "too many requests are waiting for input; try again later")
        state = secrets.token_urlsafe(24)
        round_.expires = time.monotonic() + self._ttl
        self._parked[state] = round_
        return round_.input_required(state)

    def _expire(self) -> None:
        now = time.monotonic()
        for state in [s for s, r in self._parked.items() if r.expires < now]:
            self._parked.pop(state).abandon()

    def close(self) -> None:
        for round_ in self._parked.values():
            with contextlib.suppress(Exception):
                round_.abandon()
        self._parked.clear()
