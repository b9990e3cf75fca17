"""Fixtures of the server tests: a fake clock, SQLite records, the app (on the `compute` a
module gives it) and an API helper, moto's S3 as a real HTTP server (`moto_endpoint`, with
`s3_client` to talk to it), and a stand-in A1111 for runtimes to drive.

`api` sends the API key by default and remembers every password it sent and every body it
received; its teardown fails the test if a response ever contained a password or a hash.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from fastapi import FastAPI
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from aws_extension.local.bootstrap import bootstrap
from aws_extension.middleware.app import create_app
from aws_extension.middleware.compute import Compute
from aws_extension.middleware.config import Config
from aws_extension.middleware.records.sqlite import SqliteRecords
from aws_extension.middleware.security.passwords import PREFIX, PasswordHasher, ScryptParams
from tests.server.a1111_for_jobs import StandInA1111, running_a1111
from tests.server.live import Live, folder_blobs_at, live_middleware
from tests.server.stack import STOP_TIMEOUT, Stack, start_stack

API_TOKEN = "test-api-token-0123456789"
SIGNING_SECRET = "test-signing-secret-0123456789-0123456789"
#: Cheap scrypt for tests; production cost is covered by the local stack tests.
FAST_SCRYPT = ScryptParams(n=2**4, r=8, p=1)
#: Passwords of test users contain a space, which never occurs in a token or a hash, so a
#: match in a response body cannot be a coincidence.
PASSWORD = "test pass 1!"
SECRET_FIELDS = ("password", "current_password", "new_password")


class FakeClock:
    """Epoch seconds that only move when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SecretWatch:
    """Collects the passwords sent and the bodies received, to prove none leaks back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.secrets: set[str] = set()
        self.bodies: list[tuple[str, bytes]] = []

    def sent(self, body: Any) -> None:
        if isinstance(body, dict):
            with self._lock:
                self.secrets.update(
                    body[name] for name in SECRET_FIELDS if isinstance(body.get(name), str)
                )

    def received(self, what: str, content: bytes) -> None:
        with self._lock:
            self.bodies.append((what, content))

    def leaks(self) -> list[str]:
        """The requests whose response contained a known password or a password hash."""
        needles = [PREFIX.encode() + b"$", b"password_hash"]
        # Shorter strings are junk sent by validation tests and occur anywhere.
        needles += [secret.encode() for secret in self.secrets if len(secret) >= 8]
        return [what for what, body in self.bodies if any(n in body for n in needles)]


class Api:
    """The app through TestClient, with the API key set and bearer tokens on request."""

    def __init__(self, client: TestClient, watch: SecretWatch) -> None:
        self.client = client
        self.watch = watch

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        sent = {"x-api-key": API_TOKEN}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        self.watch.sent(json)
        response = self.client.request(method, path, json=json, headers=sent, **kwargs)
        self.watch.received(f"{method} {path}", response.content)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def login(self, username: str, password: str) -> dict[str, Any]:
        response = self.post("/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.json()
        return response.json()

    def token(self, username: str, password: str) -> str:
        return self.login(username, password)["access_token"]

    def create_role(self, token: str, name: str, permissions: list[str]) -> None:
        response = self.post("/roles", token=token, json={"name": name, "permissions": permissions})
        assert response.status_code == 201, response.json()

    def create_user(
        self, token: str, username: str, roles: list[str], password: str = PASSWORD
    ) -> None:
        body = {"username": username, "password": password, "roles": roles}
        response = self.post("/users", token=token, json=body)
        assert response.status_code == 201, response.json()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config() -> Config:
    return Config(api_tokens=(API_TOKEN,), signing_secret=SIGNING_SECRET, scrypt=FAST_SCRYPT)


@pytest.fixture
def records(tmp_path: Path) -> Iterator[SqliteRecords]:
    store = SqliteRecords(tmp_path / "records.sqlite3")
    yield store
    store.close()


@pytest.fixture
def admin_password(records: SqliteRecords, config: Config, clock: FakeClock) -> str:
    password = bootstrap(records, PasswordHasher(config.scrypt), clock)
    assert password is not None
    return password


@pytest.fixture
def compute() -> Compute | None:
    """What runs the app's endpoints and jobs: nothing (`/endpoints` answers 503) unless a
    module overrides it."""
    return None


@pytest.fixture
def app(
    config: Config,
    records: SqliteRecords,
    clock: FakeClock,
    admin_password: str,
    compute: Compute | None,
) -> Iterator[FastAPI]:
    app = create_app(config, records, clock=clock, compute=compute)
    yield app
    app.state.services.close()


@pytest.fixture
def a1111() -> Iterator[StandInA1111]:
    """A stand-in A1111 on 127.0.0.1, for runtimes of the `webui` engine."""
    with running_a1111() as server:
        yield server


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """The stand-in A1111's models folder, empty."""
    folder = tmp_path / "a1111-models"
    folder.mkdir()
    return folder


@pytest.fixture
def watch(admin_password: str) -> SecretWatch:
    watch = SecretWatch()
    watch.secrets.add(admin_password)
    return watch


@pytest.fixture
def api(app: FastAPI, watch: SecretWatch) -> Iterator[Api]:
    with TestClient(app) as client:
        yield Api(client, watch)
    leaked = watch.leaks()
    # Name the requests only: printing the bodies would print the secrets.
    assert not leaked, f"responses contained a password or hash: {leaked}"


@pytest.fixture
def admin(api: Api, admin_password: str) -> str:
    """An access token of the super admin."""
    return api.token("admin", admin_password)


@pytest.fixture
def launch() -> Iterator[Callable[..., Stack]]:
    """Start local stacks as real processes (`launch(state_dir, *options)`); every one still
    running at teardown is killed."""
    started: list[Stack] = []

    def start(state_dir: Path, *options: str) -> Stack:
        stack = start_stack(state_dir, *options)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        if stack.process.poll() is None:
            stack.process.kill()
            stack.process.wait(timeout=STOP_TIMEOUT)


@pytest.fixture
def start_live(
    config: Config, records: SqliteRecords, clock: FakeClock, admin_password: str, tmp_path: Path
) -> Iterator[Callable[..., Live]]:
    """Start the middleware for real on 127.0.0.1 with folder blobs (1 KiB parts) whose
    signed URLs it serves; keyword options go to `live.live_middleware`. Stopped at teardown."""
    with ExitStack() as running:

        def start(**options: Any) -> Live:
            blobs_at = folder_blobs_at(tmp_path / "blobs", clock)
            return running.enter_context(
                live_middleware(config, records, clock, admin_password, blobs_at, **options)
            )

        yield start


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 (and the rest of AWS) as a real HTTP server on 127.0.0.1, one per module;
    tests make buckets of their own. AWS settings of the machine are hidden meanwhile."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            mp.setenv(name, "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.delenv("AWS_PROFILE", raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


def s3_client(endpoint: str | None) -> Any:
    """A boto3 S3 client of `moto_endpoint` (or, with None, one for botocore's Stubber):
    test credentials, path-style addresses, no proxy, no retries."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            proxies={},
            retries={"max_attempts": 1},
        ),
    )
