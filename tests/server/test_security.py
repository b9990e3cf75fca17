"""Password hashes, tokens and the throttle on their own, without HTTP."""

from __future__ import annotations

import jwt
import pytest

from aws_extension.middleware.errors import InvalidToken, TooManyAttempts
from aws_extension.middleware.records.sqlite import SqliteRecords
from aws_extension.middleware.security.passwords import PasswordHasher, ScryptParams
from aws_extension.middleware.security.throttle import LoginThrottle, ThrottlePolicy
from aws_extension.middleware.security.tokens import TokenSigner
from tests.server.conftest import FAST_SCRYPT, SIGNING_SECRET, FakeClock

PASSWORD = "correct horse"


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher(FAST_SCRYPT)


def test_a_hash_verifies_only_its_password(hasher: PasswordHasher) -> None:
    encoded = hasher.hash(PASSWORD)
    assert hasher.verify(PASSWORD, encoded)
    assert not hasher.verify(PASSWORD + " ", encoded)
    assert not hasher.verify("", encoded)
    assert PASSWORD not in encoded


def test_each_hash_has_its_own_salt(hasher: PasswordHasher) -> None:
    first, second = hasher.hash(PASSWORD), hasher.hash(PASSWORD)
    assert first != second
    assert first.split("$")[2] != second.split("$")[2]
    assert hasher.verify(PASSWORD, first) and hasher.verify(PASSWORD, second)


def test_the_stored_form_names_its_parameters(hasher: PasswordHasher) -> None:
    prefix, params, salt, digest = hasher.hash(PASSWORD).split("$")
    assert (prefix, params) == ("scrypt", "n=16,r=8,p=1")
    assert salt and digest


def test_hashes_verify_after_the_parameters_change(hasher: PasswordHasher) -> None:
    old = hasher.hash(PASSWORD)
    stronger = PasswordHasher(ScryptParams(n=2**5, r=4, p=2))
    assert stronger.verify(PASSWORD, old)
    assert stronger.needs_rehash(old)
    assert not stronger.needs_rehash(stronger.hash(PASSWORD))
    assert not hasher.needs_rehash(old)


def test_the_default_cost_is_the_documented_one() -> None:
    assert ScryptParams() == ScryptParams(n=2**14, r=8, p=1)


@pytest.mark.parametrize(
    "encoded",
    ["", "plaintext", "bcrypt$x$y$z", "scrypt$n=16$AAAA$AAAA", "scrypt$n=16,r=8,p=1$!!$??", None],
)
def test_malformed_or_absent_hashes_never_verify(
    hasher: PasswordHasher, encoded: str | None
) -> None:
    assert hasher.verify(PASSWORD, encoded) is False


@pytest.mark.parametrize("params", [{"n": 3}, {"n": 1}, {"r": 0}, {"p": 0}])
def test_invalid_scrypt_parameters_are_refused(params: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ScryptParams(**params)


@pytest.fixture
def signer(clock: FakeClock) -> TokenSigner:
    return TokenSigner(SIGNING_SECRET, issuer="test", access_ttl=60, refresh_ttl=600, clock=clock)


def test_a_token_round_trips_its_claims(signer: TokenSigner, clock: FakeClock) -> None:
    claims = signer.verify(signer.issue("ann", "access", "epoch-1"), "access")
    assert (claims.subject, claims.kind, claims.epoch) == ("ann", "access", "epoch-1")
    assert claims.issued_at == int(clock.now)
    assert claims.expires_at == int(clock.now) + 60


def test_tokens_expire_by_the_injected_clock(signer: TokenSigner, clock: FakeClock) -> None:
    access, refresh = signer.issue("a", "access", "e"), signer.issue("a", "refresh", "e")
    clock.advance(59)
    signer.verify(access, "access")
    clock.advance(1)
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(access, "access")
    signer.verify(refresh, "refresh")
    clock.advance(540)
    with pytest.raises(InvalidToken):
        signer.verify(refresh, "refresh")


def test_the_kind_must_match(signer: TokenSigner) -> None:
    with pytest.raises(InvalidToken, match="refresh"):
        signer.verify(signer.issue("a", "access", "e"), "refresh")
    with pytest.raises(InvalidToken, match="access"):
        signer.verify(signer.issue("a", "refresh", "e"), "access")


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": 5, "typ": "access", "ep": "e", "iss": "test"},
        {"sub": "a", "typ": "access", "ep": 7, "iss": "test"},
        {"sub": "a", "typ": "access", "iss": "test"},
        {"sub": "a", "typ": "access", "ep": "e", "iss": "other"},
        {"sub": "a", "typ": "admin", "ep": "e", "iss": "test"},
    ],
)
def test_tokens_with_bad_claims_are_refused(
    signer: TokenSigner, clock: FakeClock, claims: dict
) -> None:
    now = int(clock.now)
    token = jwt.encode({**claims, "iat": now, "exp": now + 60}, SIGNING_SECRET)
    with pytest.raises(InvalidToken):
        signer.verify(token, "access")


def test_a_token_signed_with_another_secret_is_refused(clock: FakeClock) -> None:
    other = TokenSigner("x" * 40, issuer="test", access_ttl=60, refresh_ttl=60, clock=clock)
    mine = TokenSigner("y" * 40, issuer="test", access_ttl=60, refresh_ttl=60, clock=clock)
    with pytest.raises(InvalidToken):
        mine.verify(other.issue("a", "access", "e"), "access")


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [(0, 0), (1, 0), (3, 0), (4, 2), (5, 4), (6, 8), (11, 256), (12, 300), (100, 300)],
)
def test_the_lock_policy(failures: int, seconds: int) -> None:
    assert ThrottlePolicy().lock_seconds(failures) == seconds


def test_the_throttle_counts_locks_and_resets(records: SqliteRecords, clock: FakeClock) -> None:
    throttle = LoginThrottle(records, ThrottlePolicy(free_failures=1, max_lock=10), clock)
    throttle.check("Ann")
    throttle.record_failure("Ann")
    throttle.check("ann")
    throttle.record_failure("ANN")
    with pytest.raises(TooManyAttempts) as caught:
        throttle.check("ann")
    assert caught.value.retry_after == 2
    assert caught.value.headers() == {"Retry-After": "2"}
    clock.advance(1.5)
    with pytest.raises(TooManyAttempts) as caught:
        throttle.check("ann")
    assert caught.value.retry_after == 1
    clock.advance(0.5)
    throttle.check("ann")
    throttle.check("bob")
    assert records.get("login_throttle", "ann").doc["failures"] == 2
    throttle.reset("aNN")
    assert records.get("login_throttle", "ann") is None
    throttle.reset("never-failed")
