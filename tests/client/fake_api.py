"""A small in-memory stand-in of the API over `responses`, for the tab's handler tests.

It answers the routes the API and User Settings sub-tab uses, in the contract's shapes
(docs/architecture.md), and records what it was sent, so a test can check for instance that
a password went to /auth/login and nowhere else. The real server is exercised by the
browser test; this keeps the handler tests fast and focused on the tab.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import responses

from aws_extension import contract

API = "http://api.test:8080"
API_TOKEN = "tok-fake-api-key-7781"
PASSWORD = "pw-Fake-Admin-4410"
REFRESH = "refresh-fake-0001"
ACCESS = "access-fake-0001"
STAMP = "2024-05-01T12:30:00Z"


def problem(status: int, code: str, detail: str) -> tuple[int, dict, str]:
    body = {"type": "about:blank", "title": "x", "status": status, "detail": detail, "code": code}
    return status, {"Content-Type": "application/problem+json"}, json.dumps(body)


def ok(body: Any, status: int = 200) -> tuple[int, dict, str]:
    return status, {"Content-Type": "application/json"}, json.dumps(body)


@dataclass
class FakeApi:
    mock: responses.RequestsMock
    roles: dict[str, list[str]] = field(
        default_factory=lambda: {"admin": list(contract.PERMISSIONS)}
    )
    users: dict[str, tuple[str, list[str]]] = field(
        default_factory=lambda: {"admin": (PASSWORD, ["admin"])}
    )
    revoked: set[str] = field(default_factory=set)
    sent: list[tuple[str, str, str]] = field(default_factory=list)
    api_version: str = contract.API_VERSION

    def __post_init__(self) -> None:
        routes = [
            ("GET", r"/ping", self._ping),
            ("POST", r"/auth/login", self._login),
            ("POST", r"/auth/refresh", self._refresh),
            ("POST", r"/auth/logout", self._logout),
            ("GET", r"/me", self._me),
            ("GET", r"/roles", self._list_roles),
            ("POST", r"/roles", self._create_role),
            ("GET", r"/users", self._list_users),
            ("POST", r"/users", self._create_user),
            ("DELETE", r"/roles/[^/?]+", self._delete_role),
            ("DELETE", r"/users/[^/?]+", self._delete_user),
        ]
        public = {"/ping", "/auth/login", "/auth/refresh"}
        for method, path, handler in routes:
            self.mock.add_callback(
                method,
                re.compile(re.escape(API) + path + r"(\?.*)?$"),
                callback=self._wrap(handler, signed_in=path not in public),
            )

    def _wrap(self, handler, signed_in: bool):
        def callback(request):
            body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
            self.sent.append((request.method, request.url, body))
            if request.headers.get("x-api-key") != API_TOKEN:
                return problem(403, contract.ERROR_INVALID_API_KEY, "Invalid API key.")
            if signed_in and self._caller(request) is None:
                return problem(401, contract.ERROR_INVALID_TOKEN, "The token is not valid.")
            return handler(request, json.loads(body) if body else {})

        return callback

    # -- helpers ---------------------------------------------------------------------------

    def user(self, name: str) -> dict:
        roles = self.users[name][1]
        permissions = sorted({p for r in roles for p in self.roles.get(r, [])})
        return {
            "username": name,
            "roles": roles,
            "permissions": permissions,
            "created_by": "system",
            "created_at": STAMP,
            "updated_at": STAMP,
        }

    def _session(self, name: str) -> dict:
        return {
            "access_token": f"{ACCESS}-{name}",
            "refresh_token": f"{REFRESH}-{name}",
            "token_type": "bearer",
            "expires_in": 900,
            "user": self.user(name),
        }

    def _caller(self, request) -> str | None:
        auth = request.headers.get("Authorization", "")
        name = auth.removeprefix(f"Bearer {ACCESS}-")
        valid = auth.startswith("Bearer ") and name in self.users and name not in self.revoked
        return name if valid else None

    # -- routes ----------------------------------------------------------------------------

    def _ping(self, request, body):
        return ok({"message": "pong", "api_version": self.api_version})

    def _login(self, request, body):
        entry = self.users.get(body.get("username", ""))
        if entry is None or entry[0] != body.get("password"):
            return problem(401, contract.ERROR_WRONG_CREDENTIALS, "Wrong username or password.")
        self.revoked.discard(body["username"])
        return ok(self._session(body["username"]))

    def _refresh(self, request, body):
        token = body.get("refresh_token", "")
        name = token.removeprefix(f"{REFRESH}-")
        if not token.startswith(REFRESH) or name not in self.users or name in self.revoked:
            return problem(401, contract.ERROR_INVALID_TOKEN, "The token is not valid.")
        return ok(self._session(name))

    def _logout(self, request, body):
        self.revoked.add(self._caller(request))
        return 204, {}, ""

    def _me(self, request, body):
        return ok(self.user(self._caller(request)))

    def _list_roles(self, request, body):
        items = [
            {
                "name": name,
                "permissions": perms,
                "created_by": "admin",
                "created_at": STAMP,
                "updated_at": STAMP,
            }
            for name, perms in sorted(self.roles.items())
        ]
        return ok({"items": items, "next_cursor": None})

    def _create_role(self, request, body):
        if body["name"] in self.roles:
            return problem(409, contract.ERROR_CONFLICT, f"A role named '{body['name']}' exists.")
        self.roles[body["name"]] = body["permissions"]
        return ok({"name": body["name"], "permissions": body["permissions"]}, 201)

    def _list_users(self, request, body):
        items = [self.user(name) for name in sorted(self.users)]
        return ok({"items": items, "next_cursor": None})

    def _create_user(self, request, body):
        if body["username"] in self.users:
            return problem(409, contract.ERROR_CONFLICT, "That user exists.")
        self.users[body["username"]] = (body["password"], body["roles"])
        return ok(self.user(body["username"]), 201)

    def _delete_role(self, request, body):
        name = request.url.rsplit("/", 1)[1]
        if any(name in roles for _, roles in self.users.values()):
            return problem(409, contract.ERROR_CONFLICT, f"Users still hold the role '{name}'.")
        if self.roles.pop(name, None) is None:
            return problem(404, contract.ERROR_NOT_FOUND, f"No role named '{name}'.")
        return 204, {}, ""

    def _delete_user(self, request, body):
        name = request.url.rsplit("/", 1)[1]
        if self.users.pop(name, None) is None:
            return problem(404, contract.ERROR_NOT_FOUND, f"No user named '{name}'.")
        return 204, {}, ""
