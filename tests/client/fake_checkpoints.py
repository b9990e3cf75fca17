"""The checkpoints routes and a part server, faked in memory over `responses`.

For the uploader's unit tests: it answers like docs/architecture.md ("Models") says the API
does, stores each PUT part's MD5 like a part URL does, and records every call, so a test can
say which parts were sent, how often, and what the completion carried. Faults are planned
per part (`fail_part`). The real server is exercised by tests/server/test_uploader_*.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import requests
import responses

API = "https://api.test/prod"
PARTS = "https://parts.test/bucket"
API_TOKEN = "tok-fake-ckpt-9931"
PASSWORD = "pw-fake-ckpt-2718"
ACCESS = "access-fake-ckpt"
REFRESH = "refresh-fake-ckpt"
EXPIRES_AT = "2999-01-01T00:00:00Z"
#: A secret in every part URL, to prove that no message or log line ever shows one.
URL_SECRET = "SIGxSECRETx5150"


def _reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> tuple:
    text = "" if body is None else json.dumps(body)
    return status, {"Content-Type": "application/json", **(headers or {})}, text


def problem(status: int, code: str, detail: str, **extra: Any) -> tuple:
    return _reply(status, {"status": status, "code": code, "detail": detail, **extra})


@dataclass
class Model:
    id: str
    name: str
    type: str
    size: int
    part_size: int
    part_count: int
    declared_sha256: str | None
    status: str = "Uploading"
    sha256: str | None = None
    allowed_roles: list[str] = field(default_factory=list)
    stored: dict[int, tuple[str, int]] = field(default_factory=dict)  # n -> (etag, size)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "size": self.size,
            "sha256": self.sha256,
            "status": self.status,
            "allowed_roles": self.allowed_roles,
            "created_by": "admin",
            "created_at": "2024-05-01T12:00:00Z",
            "updated_at": "2024-05-01T12:00:00Z",
        }


@dataclass
class FakeCheckpoints:
    mock: responses.RequestsMock
    part_size: int = 1024
    #: How many part URLs POST /checkpoints hands out (the server's MAX_PART_URLS).
    first_urls: int = 1000
    models: dict[str, Model] = field(default_factory=dict)
    #: (type, sha256) of Active models -> id, for duplicate_content.
    contents: dict[tuple[str, str], str] = field(default_factory=dict)
    puts: list[int] = field(default_factory=list)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    plans: dict[int, list[Any]] = field(default_factory=dict)
    #: When set, the next completion is carried out but its answer is lost.
    lose_complete_answer: bool = False
    #: When set, the next completion is refused as if a part's ETag had changed.
    refuse_complete: bool = False
    #: Seconds each part PUT takes, so that a test can stop an upload half way.
    put_delay: float = 0.0
    _serial: int = 0

    def __post_init__(self) -> None:
        routes = [
            ("POST", r"/auth/login", self._login),
            ("POST", r"/auth/refresh", self._refresh),
            ("GET", r"/me", self._me),
            ("POST", r"/checkpoints", self._create),
            ("POST", r"/checkpoints/([^/?]+)/parts", self._parts),
            ("POST", r"/checkpoints/([^/?]+)/complete", self._complete),
            ("POST", r"/checkpoints/([^/?]+)/abort", self._abort),
            ("GET", r"/checkpoints/([^/?]+)", self._get),
            ("PATCH", r"/checkpoints/([^/?]+)", self._patch),
        ]
        for method, path, handler in routes:
            pattern = re.compile(re.escape(API) + path + r"(\?.*)?$")
            self.mock.add_callback(method, pattern, callback=self._wrap(pattern, handler))
        self.mock.add_callback(
            "PUT", re.compile(re.escape(PARTS) + r"/([^/]+)/(\d+)\?.*$"), callback=self._put
        )

    # -- helpers for tests -------------------------------------------------------------------

    def fail_part(self, number: int, *answers: Any) -> None:
        """The next PUTs of part `number` answer these: a status, "expired", or an exception."""
        self.plans.setdefault(number, []).extend(answers)

    def paths(self, method: str) -> list[str]:
        return [path for m, path, _ in self.calls if m == method]

    def bodies(self, method: str, suffix: str) -> list[Any]:
        return [body for m, path, body in self.calls if m == method and path.endswith(suffix)]

    # -- routes --------------------------------------------------------------------------------

    def _wrap(self, pattern: re.Pattern[str], handler: Any) -> Any:
        def callback(request: Any) -> tuple:
            raw = request.body
            body = json.loads(raw) if raw else None
            path = request.url[len(API) :].split("?")[0]
            self.calls.append((request.method, path, body))
            if request.headers.get("x-api-key") != API_TOKEN:
                return problem(403, "invalid_api_key", "Invalid API key.")
            match = pattern.match(request.url)
            assert match is not None
            return handler(body, *[g for g in match.groups()[:-1]])

        return callback

    def _login(self, body: Any) -> tuple:
        if body != {"username": "admin", "password": PASSWORD}:
            return problem(401, "wrong_credentials", "Wrong username or password.")
        return _reply(200, self._session())

    def _refresh(self, body: Any) -> tuple:
        if body != {"refresh_token": REFRESH}:
            return problem(401, "invalid_token", "The token is not valid.")
        return _reply(200, self._session())

    def _me(self, body: Any) -> tuple:
        return _reply(200, self._session()["user"])

    @staticmethod
    def _session() -> dict[str, Any]:
        return {
            "access_token": ACCESS,
            "refresh_token": REFRESH,
            "token_type": "bearer",
            "expires_in": 900,
            "user": {"username": "admin", "roles": ["admin"], "permissions": ["checkpoint:all"]},
        }

    def _urls(self, model: Model, numbers: list[int]) -> list[dict[str, Any]]:
        self._serial += 1
        return [
            {
                "part_number": n,
                "url": f"{PARTS}/{model.id}/{n}?sig={URL_SECRET}{self._serial}",
            }
            for n in numbers
        ]

    def _create(self, body: dict[str, Any]) -> tuple:
        sha256 = body.get("sha256")
        if sha256 and (body["type"], sha256) in self.contents:
            existing = self.contents[(body["type"], sha256)]
            return problem(
                409, "duplicate_content", f"Same content as {existing}.", existing_id=existing
            )
        if any(
            m.name == body["name"] and m.type == body["type"] and m.status != "Failed"
            for m in self.models.values()
        ):
            return problem(409, "conflict", f"A {body['type']} named {body['name']!r} exists.")
        model_id = f"ck{len(self.models) + 1}"
        count = max(1, -(-body["size"] // self.part_size))
        model = Model(
            model_id,
            body["name"],
            body["type"],
            body["size"],
            self.part_size,
            count,
            sha256,
            allowed_roles=body.get("allowed_roles", []),
        )
        self.models[model_id] = model
        upload = {
            "upload_id": f"up-{model_id}",
            "part_size": self.part_size,
            "part_count": count,
            "parts": self._urls(model, list(range(1, min(count, self.first_urls) + 1))),
            "expires_at": EXPIRES_AT,
        }
        return _reply(201, {"checkpoint": model.public(), "upload": upload})

    def _model(self, model_id: str) -> Model | tuple:
        model = self.models.get(model_id)
        return model if model is not None else problem(404, "not_found", "No such model.")

    def _parts(self, body: dict[str, Any], model_id: str) -> tuple:
        model = self._model(model_id)
        if isinstance(model, tuple):
            return model
        if model.status != "Uploading":
            return problem(409, "conflict", f"The model is {model.status}.")
        return _reply(
            200, {"parts": self._urls(model, body["part_numbers"]), "expires_at": EXPIRES_AT}
        )

    def _complete(self, body: dict[str, Any], model_id: str) -> tuple:
        model = self._model(model_id)
        if isinstance(model, tuple):
            return model
        if model.status != "Uploading":
            return problem(409, "conflict", f"The model is {model.status}.")
        if self.refuse_complete:
            self.refuse_complete = False
            return problem(400, "invalid", 'Part 1 has ETag "x", not the one named.')
        numbers = [p["part_number"] for p in body["parts"]]
        if numbers != list(range(1, model.part_count + 1)):
            return problem(400, "invalid", f"Parts {numbers} do not cover the model.")
        for part in body["parts"]:
            etag, _ = model.stored.get(part["part_number"], ("", 0))
            if etag != part["etag"]:
                return problem(400, "invalid", f"Part {part['part_number']} has another ETag.")
        size = sum(size for _, size in model.stored.values())
        if size != model.size:
            model.status = "Failed"
            return problem(400, "invalid", f"{size} bytes stored, {model.size} declared.")
        model.status = "Active"
        model.sha256 = body.get("sha256") or model.declared_sha256
        if model.sha256:
            self.contents.setdefault((model.type, model.sha256), model.id)
        if self.lose_complete_answer:
            self.lose_complete_answer = False
            raise requests.ConnectionError("Connection reset by peer")
        return _reply(200, model.public())

    def _abort(self, body: Any, model_id: str) -> tuple:
        model = self._model(model_id)
        if isinstance(model, tuple):
            return model
        del self.models[model_id]
        return 204, {}, ""

    def _get(self, body: Any, model_id: str) -> tuple:
        model = self._model(model_id)
        return model if isinstance(model, tuple) else _reply(200, model.public())

    def _patch(self, body: dict[str, Any], model_id: str) -> tuple:
        model = self._model(model_id)
        if isinstance(model, tuple):
            return model
        model.name = body.get("name", model.name)
        model.allowed_roles = body.get("allowed_roles", model.allowed_roles)
        return _reply(200, model.public())

    def _put(self, request: Any) -> tuple:
        match = re.match(re.escape(PARTS) + r"/([^/]+)/(\d+)\?", request.url)
        assert match is not None
        model_id, number = match.group(1), int(match.group(2))
        data = bytes(request.body or b"")
        time.sleep(self.put_delay)
        self.puts.append(number)
        plan = self.plans.get(number)
        if plan:
            answer = plan.pop(0)
            if isinstance(answer, BaseException):
                raise answer
            if answer == "expired":
                return problem(403, "url_expired", "The URL has expired.")
            return answer, {}, ""
        model = self.models.get(model_id)
        if model is None:
            return problem(404, "not_found", "No such upload.")
        etag = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
        model.stored[number] = (etag, len(data))
        return 200, {"ETag": etag}, ""
