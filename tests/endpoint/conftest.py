"""Fixtures of the endpoint tests (engine environment: torch, diffusers; `nox -s endpoint`).

The runtime is served over real HTTP on 127.0.0.1 with the diffusers engine and the tiny demo
model made here; models are fetched from a local file server, as from presigned S3 URLs.
Nothing may reach the network: the hub is switched off and its cache is an empty folder,
and any connection to an address off this machine fails the test that makes it.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

# Before diffusers/transformers/huggingface_hub are imported anywhere in the session.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="empty-hf-home-")

from aws_extension.endpoint.model_cache import ModelCache  # noqa: E402
from aws_extension.endpoint.runtime import Runtime  # noqa: E402
from aws_extension.endpoint.server import EndpointServer, make_server  # noqa: E402
from tests.endpoint.fake_a1111 import A1111_REFERENCE  # noqa: E402
from tests.endpoint.file_server import FileServer, file_server  # noqa: E402

LOOPBACK = ("127.", "::1", "localhost")


@pytest.fixture(scope="session", autouse=True)
def no_network() -> Iterator[None]:
    """Fail any connection off this machine (the hub, a CDN) instead of letting it through."""
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and not str(host).startswith(
            LOOPBACK
        ):
            raise AssertionError(f"the endpoint tests must not reach the network ({host})")
        original(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    yield
    socket.socket.connect = original  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def a1111_reference() -> Path:
    if not (A1111_REFERENCE / "sdapi-v1-openapi.json").is_file():
        pytest.skip(f"the captured A1111 API is not at {A1111_REFERENCE}")
    return A1111_REFERENCE


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


@pytest.fixture(scope="session")
def files() -> Iterator[FileServer]:
    with file_server() as server:
        yield server


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aws_extension.endpoint.tiny_model import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny(files: FileServer, tiny_path: Path) -> dict:
    return model_entry(files, tiny_path)


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


@pytest.fixture(scope="session")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """The diffusers runtime over HTTP; /ping is 503 until its engine has started."""
    from aws_extension.endpoint.engines.diffusers_engine import DiffusersEngine

    root = tmp_path_factory.mktemp("endpoint")
    engine = DiffusersEngine(root / "configs", cpu_threads=1)
    with serving(Runtime(engine, ModelCache(root / "cache"))) as served:
        assert served.ping().status_code == 503
        served.runtime.start()
        yield served
