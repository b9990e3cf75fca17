"""Sign-in, tokens, sign-out and the caller's own account."""

from __future__ import annotations

import base64
import hashlib
import json

import jwt
import pytest
from fastapi.testclient import TestClient

from aws_extension.contract import PERMISSIONS
from aws_extension.middleware.app import create_app
from aws_extension.middleware.config import Config
from aws_extension.middleware.records.sqlite import SqliteRecords
from aws_extension.middleware.security.passwords import PasswordHasher, ScryptParams
from aws_extension.middleware.security.throttle import ThrottlePolicy
from aws_extension.middleware.services.bootstrap import create_super_admin
from tests.server.conftest import API_TOKEN, PASSWORD, SIGNING_SECRET, Api, FakeClock

NEW_PASSWORD = "new pass 2!"


def session_ok(session: dict, username: str) -> None:
    assert session["token_type"] == "bearer"
    assert session["expires_in"] == 15 * 60
    assert session["user"]["username"] == username
    assert set(session) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}


def test_login_returns_a_session_with_the_user_and_permissions(
    api: Api, admin_password: str
) -> None:
    response = api.post("/auth/login", json={"username": "admin", "password": admin_password})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    session = response.json()
    session_ok(session, "admin")
    user = session["user"]
    assert user["roles"] == ["admin"]
    assert user["permissions"] == list(PERMISSIONS)
    assert user["created_by"] == "system"
    assert user["created_at"].endswith("Z")
    assert set(user) == {
        "username",
        "roles",
        "permissions",
        "created_by",
        "created_at",
        "updated_at",
    }


def test_the_access_token_carries_the_documented_claims(
    api: Api, admin_password: str, clock: FakeClock
) -> None:
    session = api.login("admin", admin_password)
    access = jwt.decode(session["access_token"], options={"verify_signature": False})
    refresh = jwt.decode(session["refresh_token"], options={"verify_signature": False})
    assert jwt.get_unverified_header(session["access_token"])["alg"] == "HS256"
    assert access["sub"] == refresh["sub"] == "admin"
    assert (access["typ"], refresh["typ"]) == ("access", "refresh")
    assert access["ep"] == refresh["ep"]
    assert access["iat"] == int(clock.now)
    assert access["exp"] - access["iat"] == 15 * 60
    assert refresh["exp"] - refresh["iat"] == 30 * 24 * 3600


@pytest.mark.parametrize(
    ("username", "password"),
    [("admin", "wrong password"), ("nobody", "wrong password"), ("Admin", "see fixture")],
)
def test_unknown_user_and_wrong_password_get_the_same_answer(
    api: Api, admin_password: str, username: str, password: str
) -> None:
    if password == "see fixture":
        password = admin_password  # usernames are case-sensitive
    response = api.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["code"] == "wrong_credentials"
    assert body["detail"] == "Wrong username or password."


def test_me_returns_the_callers_profile(api: Api, admin: str) -> None:
    response = api.get("/me", token=admin)
    assert response.status_code == 200
    assert response.json()["username"] == "admin"
    assert response.json()["permissions"] == list(PERMISSIONS)


def test_expired_access_token_is_refused_and_refresh_gives_a_new_one(
    api: Api, admin_password: str, clock: FakeClock
) -> None:
    session = api.login("admin", admin_password)
    clock.advance(15 * 60)
    expired = api.get("/me", token=session["access_token"])
    assert expired.status_code == 401
    assert expired.json()["code"] == "invalid_token"
    assert "expired" in expired.json()["detail"]
    refreshed = api.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 200
    assert refreshed.headers["cache-control"] == "no-store"
    renewed = refreshed.json()
    session_ok(renewed, "admin")
    assert renewed["refresh_token"] == session["refresh_token"]
    assert renewed["access_token"] != session["access_token"]
    assert api.get("/me", token=renewed["access_token"]).status_code == 200


def test_refresh_token_expires_after_thirty_days(
    api: Api, admin_password: str, clock: FakeClock
) -> None:
    refresh_token = api.login("admin", admin_password)["refresh_token"]
    clock.advance(30 * 24 * 3600 - 1)
    assert api.post("/auth/refresh", json={"refresh_token": refresh_token}).status_code == 200
    clock.advance(1)
    response = api.post("/auth/refresh", json={"refresh_token": refresh_token})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_tokens_of_the_wrong_kind_are_refused(api: Api, admin_password: str) -> None:
    session = api.login("admin", admin_password)
    as_bearer = api.get("/me", token=session["refresh_token"])
    assert as_bearer.status_code == 401
    assert as_bearer.json()["code"] == "invalid_token"
    as_refresh = api.post("/auth/refresh", json={"refresh_token": session["access_token"]})
    assert as_refresh.status_code == 401
    assert as_refresh.json()["code"] == "invalid_token"


def _tamper(token: str, **changes: object) -> str:
    """The token with its payload changed but the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{encoded}.{signature}"


def test_forged_and_tampered_tokens_are_refused(
    api: Api, admin_password: str, clock: FakeClock
) -> None:
    api.create_user(api.token("admin", admin_password), "bob", [])
    token = api.token("bob", PASSWORD)
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = [
        _tamper(token, sub="admin"),
        _tamper(token, exp=claims["exp"] + 10**6),
        jwt.encode({**claims, "sub": "admin"}, "another secret of enough length 0123456789"),
        jwt.encode({**claims, "sub": "admin"}, None, algorithm="none"),
        jwt.encode({**claims, "iss": "someone-else"}, SIGNING_SECRET, algorithm="HS256"),
        jwt.encode(
            {k: v for k, v in claims.items() if k != "ep"}, SIGNING_SECRET, algorithm="HS256"
        ),
        token[:-2],
    ]
    for bad in forged:
        response = api.get("/me", token=bad)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_token"
    assert api.get("/me", token=token).json()["username"] == "bob"


def test_logout_revokes_access_and_refresh_tokens_of_every_session(
    api: Api, admin_password: str
) -> None:
    first = api.login("admin", admin_password)
    second = api.login("admin", admin_password)
    response = api.post("/auth/logout", token=first["access_token"])
    assert response.status_code == 204
    assert response.content == b""
    for session in (first, second):
        assert api.get("/me", token=session["access_token"]).status_code == 401
        refused = api.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
        assert refused.status_code == 401
        assert refused.json()["code"] == "invalid_token"
    fresh = api.token("admin", admin_password)
    assert api.get("/me", token=fresh).status_code == 200


def test_password_change_revokes_old_tokens_and_returns_new_ones(
    api: Api, admin_password: str
) -> None:
    old = api.login("admin", admin_password)
    body = {"current_password": admin_password, "new_password": NEW_PASSWORD}
    response = api.put("/me/password", token=old["access_token"], json=body)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    new = response.json()
    session_ok(new, "admin")
    assert api.get("/me", token=old["access_token"]).status_code == 401
    assert api.get("/me", token=new["access_token"]).status_code == 200
    for session, status in ((old, 401), (new, 200)):
        refresh = api.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
        assert refresh.status_code == status
    wrong = api.post("/auth/login", json={"username": "admin", "password": admin_password})
    assert wrong.status_code == 401
    api.login("admin", NEW_PASSWORD)


def test_password_change_needs_the_right_current_password(api: Api, admin: str) -> None:
    body = {"current_password": "not it at all", "new_password": NEW_PASSWORD}
    response = api.put("/me/password", token=admin, json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert api.get("/me", token=admin).status_code == 200


def test_password_change_checks_the_new_password_length(
    api: Api, admin: str, admin_password: str
) -> None:
    body = {"current_password": admin_password, "new_password": "short"}
    response = api.put("/me/password", token=admin, json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.new_password"


def test_every_user_can_read_itself_and_change_its_password(api: Api, admin: str) -> None:
    api.create_user(admin, "nobody-special", [])
    token = api.token("nobody-special", PASSWORD)
    me = api.get("/me", token=token).json()
    assert (me["roles"], me["permissions"], me["created_by"]) == ([], [], "admin")
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert api.put("/me/password", token=token, json=body).status_code == 200
    api.login("nobody-special", NEW_PASSWORD)


def throttle_trace(api: Api, username: str, clock: FakeClock) -> list[tuple]:
    """Statuses, codes and Retry-After through a sequence of wrong passwords and waits."""
    trace = []

    def attempt() -> None:
        response = api.post("/auth/login", json={"username": username, "password": "bad guess"})
        trace.append(
            (response.status_code, response.json()["code"], response.headers.get("retry-after"))
        )

    for _ in range(4):
        attempt()  # three free failures, the fourth locks for 2 s
    attempt()  # locked
    clock.advance(1)
    attempt()  # still locked, 1 s to go
    clock.advance(1)
    attempt()  # fifth failure: locks for 4 s
    attempt()
    return trace


EXPECTED_TRACE = [
    (401, "wrong_credentials", None),
    (401, "wrong_credentials", None),
    (401, "wrong_credentials", None),
    (401, "wrong_credentials", None),
    (429, "too_many_attempts", "2"),
    (429, "too_many_attempts", "1"),
    (401, "wrong_credentials", None),
    (429, "too_many_attempts", "4"),
]


def test_failed_sign_ins_lock_an_existing_username(
    api: Api, admin_password: str, clock: FakeClock
) -> None:
    assert throttle_trace(api, "admin", clock) == EXPECTED_TRACE
    # Locked means locked: the right password does not get through either.
    locked = api.post("/auth/login", json={"username": "admin", "password": admin_password})
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "4"
    assert locked.json()["detail"] == "Too many failed sign-ins for this username."


def test_unknown_usernames_are_throttled_the_same_way(api: Api, clock: FakeClock) -> None:
    assert throttle_trace(api, "ghost", clock) == EXPECTED_TRACE


def test_the_lock_grows_to_at_most_five_minutes(api: Api, clock: FakeClock) -> None:
    waits, failures = [], 0
    while failures < 13:
        response = api.post("/auth/login", json={"username": "ghost", "password": "bad guess"})
        if response.status_code == 429:
            waits.append(int(response.headers["retry-after"]))
            clock.advance(waits[-1])
        else:
            assert response.status_code == 401
            failures += 1
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 300]


def test_the_throttle_ignores_case(api: Api, admin_password: str) -> None:
    for name in ("ADMIN", "Admin", "aDmin", "admiN"):
        api.post("/auth/login", json={"username": name, "password": "bad guess"})
    response = api.post("/auth/login", json={"username": "admin", "password": admin_password})
    assert response.status_code == 429


def test_a_successful_sign_in_resets_the_count(
    api: Api, admin_password: str, clock: FakeClock
) -> None:
    for _ in range(3):
        api.post("/auth/login", json={"username": "admin", "password": "bad guess"})
    api.login("admin", admin_password)
    statuses = [
        api.post("/auth/login", json={"username": "admin", "password": "bad guess"}).status_code
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 401]
    response = api.post("/auth/login", json={"username": "admin", "password": admin_password})
    assert response.status_code == 429


def test_wrong_current_passwords_are_throttled_too(
    api: Api, admin: str, admin_password: str
) -> None:
    body = {"current_password": "bad guess", "new_password": NEW_PASSWORD}
    statuses = [api.put("/me/password", token=admin, json=body).status_code for _ in range(5)]
    assert statuses == [400, 400, 400, 400, 429]
    good = {"current_password": admin_password, "new_password": NEW_PASSWORD}
    assert api.put("/me/password", token=admin, json=good).status_code == 429


def test_sign_in_upgrades_a_hash_made_with_older_parameters(
    records: SqliteRecords, clock: FakeClock
) -> None:
    old = PasswordHasher(ScryptParams(n=2**4))
    create_super_admin(records, old, clock, username="root", password=PASSWORD, role="all")
    config = Config(
        api_tokens=(API_TOKEN,), signing_secret=SIGNING_SECRET, scrypt=ScryptParams(n=2**5)
    )
    client = TestClient(create_app(config, records, clock=clock))
    response = client.post(
        "/auth/login",
        json={"username": "root", "password": PASSWORD},
        headers={"x-api-key": API_TOKEN},
    )
    assert response.status_code == 200
    stored = records.get("user", "root").doc["password_hash"]
    assert stored.split("$")[1] == "n=32,r=8,p=1"
    assert PasswordHasher(ScryptParams(n=2**5)).verify(PASSWORD, stored)
    # The upgrade must not sign the new session out.
    token = response.json()["access_token"]
    me = client.get("/me", headers={"x-api-key": API_TOKEN, "Authorization": f"Bearer {token}"})
    assert me.status_code == 200


def test_unknown_user_costs_the_same_scrypt_work_as_a_wrong_password(
    records: SqliteRecords, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the dummy hash an unknown name answers far faster; timing would tell.

    Counted rather than timed: each answer must run exactly one scrypt derivation with the
    same cost parameters, which is what makes the two indistinguishable by time, and a count
    does not flake on a busy machine.
    """
    params = ScryptParams(n=2**12)
    hasher = PasswordHasher(params)
    create_super_admin(records, hasher, clock, username="real", password=PASSWORD, role="all")
    config = Config(
        api_tokens=(API_TOKEN,),
        signing_secret=SIGNING_SECRET,
        scrypt=params,
        throttle=ThrottlePolicy(free_failures=1000),
    )
    client = TestClient(create_app(config, records, clock=clock))
    derivations: list[tuple[int, int, int]] = []
    real_scrypt = hashlib.scrypt

    def counting_scrypt(password: bytes, **kwargs: int) -> bytes:
        derivations.append((kwargs["n"], kwargs["r"], kwargs["p"]))
        return real_scrypt(password, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting_scrypt)

    def work(username: str) -> list[tuple[int, int, int]]:
        derivations.clear()
        response = client.post(
            "/auth/login",
            json={"username": username, "password": "bad guess"},
            headers={"x-api-key": API_TOKEN},
        )
        assert response.status_code == 401
        assert response.json()["code"] == "wrong_credentials"
        return list(derivations)

    known = work("real")
    assert known == [(params.n, params.r, params.p)]
    assert work("ghost") == known
