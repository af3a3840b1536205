"""PKCE (RFC 7636 S256), states and digests: pure functions."""

from __future__ import annotations

import pytest

from gateway.oauth.pkce import (
    challenge_s256,
    digest,
    is_valid_verifier,
    new_state,
    new_verifier,
    same_digest,
)


def test_rfc7636_appendix_b_vector() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert challenge_s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_new_verifiers_are_valid_random_and_unpadded() -> None:
    verifiers = {new_verifier() for _ in range(50)}
    assert len(verifiers) == 50
    for verifier in verifiers:
        assert 43 <= len(verifier) <= 128 and is_valid_verifier(verifier)
        challenge = challenge_s256(verifier)
        assert len(challenge) == 43 and "=" not in challenge and "+" not in challenge and "/" not in challenge


@pytest.mark.parametrize("verifier", ["short", "a" * 42, "a" * 129, "a" * 42 + "/", "a" * 43 + " ", "ä" * 43])
def test_challenge_refuses_invalid_verifiers(verifier: str) -> None:
    assert not is_valid_verifier(verifier)
    with pytest.raises(ValueError, match="43 to 128"):
        challenge_s256(verifier)


def test_states_are_random_and_stored_only_as_digests() -> None:
    states = {new_state() for _ in range(100)}
    assert len(states) == 100 and all(len(s) >= 43 for s in states)
    state = next(iter(states))
    stored = digest(state)
    assert len(stored) == 64 and state not in stored
    assert same_digest(state, stored)
    assert not same_digest(state + "x", stored)
