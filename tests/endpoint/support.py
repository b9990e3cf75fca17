"""Helpers of the endpoint tests: the runtime served on a free port, models on the file server."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from aws_extension.endpoint.runtime import Runtime
from aws_extension.endpoint.server import EndpointServer, make_server
from tests.endpoint.file_server import FileServer


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_entry(files: FileServer, path: Path, name: str | None = None, **extra: Any) -> dict:
    """The job's description of a model file published on the file server."""
    name = name or path.name
    return {
        "id": sha256_file(path)[:8],
        "sha256": sha256_file(path),
        "url": files.publish(path, name),
        "name": name,
        **extra,
    }


@dataclass
class Endpoint:
    url: str
    runtime: Runtime
    server: EndpointServer

    def invoke(self, body: Any) -> requests.Response:
        return requests.post(f"{self.url}/invocations", json=body, timeout=120)

    def ping(self) -> requests.Response:
        return requests.get(f"{self.url}/ping", timeout=5)


@contextmanager
def serving(runtime: Runtime) -> Iterator[Endpoint]:
    """The runtime behind its HTTP server on a free loopback port, started like `serve`."""
    server = make_server(runtime, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Endpoint(f"http://127.0.0.1:{server.server_address[1]}", runtime, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        runtime.close()
