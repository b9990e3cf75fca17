"""No response ever carries a password or a password hash.

Every API test already ends with this check (the `api` fixture's teardown scans each body it
received for the passwords sent and the hash prefix); here it runs across every route that
takes or could echo a password, and the watch itself is shown to notice a leak.
"""

from __future__ import annotations

from aws_extension.middleware.security.passwords import PasswordHasher
from tests.server.conftest import FAST_SCRYPT, PASSWORD, Api, SecretWatch

NEW_PASSWORD = "brand new 7!"


def test_password_routes_never_echo_passwords_or_hashes(api: Api, admin: str) -> None:
    api.create_role(admin, "artist", ["inference:all"])
    api.create_user(admin, "ann", ["artist"])
    api.login("ann", PASSWORD)
    api.put("/users/ann", token=admin, json={"password": NEW_PASSWORD, "roles": ["artist"]})
    ann = api.token("ann", NEW_PASSWORD)
    api.put(
        "/me/password", token=ann, json={"current_password": NEW_PASSWORD, "new_password": PASSWORD}
    )
    api.put(
        "/me/password",
        token=admin,
        json={"current_password": "wrong guess", "new_password": PASSWORD},
    )
    api.post("/users", token=admin, json={"username": "ann", "password": NEW_PASSWORD, "roles": []})
    api.post("/users", token=admin, json={"username": "x", "password": "short", "roles": []})
    api.post("/auth/login", json={"username": "ann", "password": NEW_PASSWORD})
    api.post("/auth/login", json={"username": "ann", "password": PASSWORD, "extra": PASSWORD})
    for path in ("/users", "/users/ann", "/users/admin", "/me", "/roles"):
        api.get(path, token=admin)
    assert len(api.watch.bodies) >= 15
    leaked = api.watch.leaks()
    assert not leaked, f"responses contained a password or hash: {leaked}"


def test_the_watch_notices_a_password_or_a_hash() -> None:
    watch = SecretWatch()
    watch.sent({"username": "ann", "password": PASSWORD})
    watch.received("GET /clean", b'{"username": "ann"}')
    assert watch.leaks() == []
    watch.received("GET /echo", b'{"password": "' + PASSWORD.encode() + b'"}')
    watch.received("GET /hash", PasswordHasher(FAST_SCRYPT).hash("anything").encode())
    watch.received("GET /field", b'{"password_hash": null}')
    assert watch.leaks() == ["GET /echo", "GET /hash", "GET /field"]
