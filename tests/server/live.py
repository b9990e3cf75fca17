"""Real servers on 127.0.0.1 for tests that need blob URLs to work: the middleware under
uvicorn (with the local stack's signed `/blobs/...` routes when its blobs are folder blobs)
and a small file server that model imports can download from.

Everything runs in daemon threads of the test process and is stopped by its context
manager; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import uvicorn
from fastapi import FastAPI

from aws_extension.middleware.app import create_app
from aws_extension.middleware.blobs import Blobs
from aws_extension.middleware.blobs.folder import FolderBlobs
from aws_extension.middleware.blobs.folder_part_protocol import part_put_protocol
from aws_extension.middleware.blobs.folder_routes import make_blob_router
from aws_extension.middleware.checkpoint_policy import CheckpointPolicy
from aws_extension.middleware.config import Config
from aws_extension.middleware.records import Records
from aws_extension.middleware.security.outbound import OutboundPolicy, Resolver, system_resolver
from aws_extension.middleware.services import Services
from aws_extension.middleware.services.checkpoints import CheckpointService

TIMEOUT = 30
START_TIMEOUT = 10.0
#: Kilobyte parts, so tests move a few KiB instead of S3's 5 MiB minimum per part.
PART_SIZE = 1024
#: Part URLs live 10 minutes: a test can let them expire without outliving its access token.
POLICY = CheckpointPolicy(part_size=PART_SIZE, part_url_ttl=600, progress_interval=0.05)
#: Short network limits, so a broken import fails a test quickly instead of hanging it.
OUTBOUND = OutboundPolicy(connect_timeout=5, read_timeout=5)
BLOB_SECRET = b"live-blob-secret"


def md5_etag(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


@contextmanager
def uvicorn_on_free_port(
    build: Callable[[str], FastAPI | tuple[FastAPI, type[asyncio.Protocol]]],
) -> Iterator[str]:
    """Serve `build(base_url)` on a free port of 127.0.0.1; yield the base URL.

    The socket is bound first so the app (and the blob URLs it signs) knows its address.
    `build` may return the app with the protocol class uvicorn should use, as the local
    stack serves folder blobs with `part_put_protocol`.
    """
    # IPPROTO_TCP, so asyncio sets TCP_NODELAY on the accepted connections (see cli.bind).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    built = build(base_url)
    app, http = built if isinstance(built, tuple) else (built, "auto")
    server = uvicorn.Server(
        uvicorn.Config(app, http=http, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT)
        sock.close()


class LiveApi:
    """The middleware over real HTTP: the API key on every request, a bearer on request.

    `put` sends to signed URLs as the uploader does: no API key, no token.
    """

    def __init__(self, base_url: str, api_token: str) -> None:
        self.base_url = base_url
        self.api_token = api_token
        self.http = requests.Session()
        self.http.trust_env = False  # a proxy from the environment must not see 127.0.0.1

    def request(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = {"x-api-key": self.api_token, **kwargs.pop("headers", {})}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(
            method, f"{self.base_url}{path}", headers=headers, timeout=TIMEOUT, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def put(self, url: str, data: bytes) -> requests.Response:
        return self.http.put(url, data=data, timeout=TIMEOUT)

    def token(self, username: str, password: str) -> str:
        reply = self.post("/auth/login", json={"username": username, "password": password})
        assert reply.status_code == 200, reply.text
        return str(reply.json()["access_token"])

    def create_role(self, token: str, name: str, permissions: list[str]) -> None:
        reply = self.post("/roles", token=token, json={"name": name, "permissions": permissions})
        assert reply.status_code == 201, reply.text

    def create_user(self, token: str, username: str, roles: list[str], password: str) -> None:
        body = {"username": username, "password": password, "roles": roles}
        reply = self.post("/users", token=token, json=body)
        assert reply.status_code == 201, reply.text

    def close(self) -> None:
        self.http.close()


@dataclass
class Live:
    """A running middleware: its API, the admin's token and its insides for assertions."""

    api: LiveApi
    admin: str
    admin_password: str
    blobs: Blobs
    records: Records
    services: Services

    @property
    def checkpoints(self) -> CheckpointService:
        assert self.services.checkpoints is not None
        return self.services.checkpoints


@contextmanager
def live_middleware(
    config: Config,
    records: Records,
    clock: Callable[[], float],
    admin_password: str,
    blobs_at: Callable[[str], Blobs],
    *,
    policy: CheckpointPolicy = POLICY,
    outbound: OutboundPolicy = OUTBOUND,
    resolver: Resolver = system_resolver,
) -> Iterator[Live]:
    """The middleware under uvicorn with `blobs_at(base_url)` as its blobs; folder blobs get
    their signed routes mounted, as in the local stack."""
    config = replace(config, checkpoints=policy, outbound=outbound)
    built: list[tuple[FastAPI, Blobs]] = []

    def build(base_url: str) -> FastAPI | tuple[FastAPI, type[asyncio.Protocol]]:
        blobs = blobs_at(base_url)
        routes = make_blob_router(blobs) if isinstance(blobs, FolderBlobs) else None
        app = create_app(
            config, records, clock=clock, blobs=blobs, signed_routes=routes, resolver=resolver
        )
        built.append((app, blobs))
        return (app, part_put_protocol(blobs)) if isinstance(blobs, FolderBlobs) else app

    with uvicorn_on_free_port(build) as base_url:
        app, blobs = built[0]
        api = LiveApi(base_url, config.api_tokens[0])
        try:
            admin = api.token("admin", admin_password)
            yield Live(api, admin, admin_password, blobs, records, app.state.services)
        finally:
            app.state.services.close()
            api.close()


def put_parts(live: Live, upload: dict[str, Any], data: bytes) -> list[dict[str, Any]]:
    """PUT each listed part of `data` to its URL, as a client would; the completion's `parts`."""
    size = upload["part_size"]
    parts = []
    for part in upload["parts"]:
        number = part["part_number"]
        chunk = data[(number - 1) * size : number * size]
        reply = live.api.put(part["url"], chunk)
        assert reply.status_code == 200, reply.text
        assert reply.headers["ETag"] == md5_etag(chunk)
        parts.append({"part_number": number, "etag": reply.headers["ETag"]})
    return parts


def complete(live: Live, checkpoint_id: str, parts: list[dict[str, Any]], **fields: Any) -> Any:
    """POST /checkpoints/{id}/complete as the admin; the raw reply."""
    return live.api.post(
        f"/checkpoints/{checkpoint_id}/complete", token=live.admin, json={"parts": parts, **fields}
    )


def folder_blobs_at(root: Path, clock: Callable[[], float]) -> Callable[[str], FolderBlobs]:
    def make(base_url: str) -> FolderBlobs:
        return FolderBlobs(
            root, base_url=base_url, secret=BLOB_SECRET, min_part_size=PART_SIZE, clock=clock
        )

    return make


@dataclass
class Route:
    """What the file server answers on one path."""

    body: bytes = b""
    status: int = 200
    location: str | None = None
    #: Leave out Content-Length and send the body in chunks (`Transfer-Encoding: chunked`).
    chunked: bool = False
    #: Seconds to sleep between chunks of `chunk_size` bytes: a slow download.
    delay: float = 0.0
    chunk_size: int = 64 * 1024


@dataclass
class FileServer:
    """An HTTP/1.1 server for imports: files, redirects, errors; records every path asked."""

    routes: dict[str, Route] = field(default_factory=dict)
    requested: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that drop connections are expected here (cancelled and failed imports);
        socketserver would print a traceback for each."""


@contextmanager
def file_server() -> Iterator[FileServer]:
    files = FileServer()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests assert on `requested` instead."""

        def do_GET(self) -> None:
            files.requested.append(self.path)
            route = files.routes.get(self.path.split("?", 1)[0])
            if route is None:
                route = Route(body=b"no such file", status=404)
            self.send_response(route.status)
            if route.location is not None:
                self.send_header("Location", route.location)
            if route.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            try:
                for start in range(0, len(route.body), route.chunk_size):
                    chunk = route.body[start : start + route.chunk_size]
                    if route.chunked:
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    else:
                        self.wfile.write(chunk)
                    self.wfile.flush()
                    if route.delay:
                        time.sleep(route.delay)
                if route.chunked:
                    self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True  # the client went away: a cancelled import

    server = _QuietServer(("127.0.0.1", 0), Handler)
    files.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield files
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=START_TIMEOUT)


def wait_for(
    condition: Callable[[], Any], *, timeout: float = 20.0, what: str = "the condition"
) -> Any:
    """Poll `condition` until it returns something truthy; return that, or fail."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
