"""Fixtures of the endpoint tests (engine environment: torch, diffusers; `nox -s endpoint`).

The runtime is served over real HTTP on 127.0.0.1 with the diffusers engine and the tiny demo
model made here; models are fetched from a local file server, as from presigned S3 URLs.
Nothing may reach the network: the hub is switched off and its cache is an empty folder,
and any connection to an address off this machine fails the test that makes it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aws_extension.endpoint.model_cache import ModelCache
from aws_extension.endpoint.runtime import Runtime
from tests.endpoint.fake_a1111 import A1111_REFERENCE
from tests.endpoint.file_server import FileServer, file_server
from tests.endpoint.support import Endpoint, model_entry, serving

# Set before any test module imports diffusers, transformers or huggingface_hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = _EMPTY_HF_HOME = tempfile.mkdtemp(prefix="empty-hf-home-")
atexit.register(shutil.rmtree, _EMPTY_HF_HOME, True)

LOOPBACK = ("127.", "::1", "localhost")


@pytest.fixture(scope="session", autouse=True)
def no_network() -> Iterator[None]:
    """Fail any connection off this machine (the hub, a CDN) instead of letting it through."""
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and not str(host).startswith(LOOPBACK):
            raise AssertionError(f"the endpoint tests must not reach the network ({host})")
        original(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    yield
    socket.socket.connect = original  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def a1111_reference() -> Path:
    """The captured A1111 v1.10.1 API, kept in the repository (tests/data/a1111)."""
    return A1111_REFERENCE


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
