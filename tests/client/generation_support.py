"""A local stack that really generates: its endpoints run the engine environment's
interpreter (torch, diffusers), the demo model is Active and a local endpoint in service.

For the tab's handler tests and the browser test of Generate. The demo model is the tiny
random SD 1.x checkpoint the runtime's `make-demo-model` writes (no download), uploaded like
any model.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from aws_extension.client.api import ApiClient, ClientOptions
from aws_extension.client.uploader import Uploader
from aws_extension.contract import ENDPOINT_FAILED, ENDPOINT_IN_SERVICE
from tests.support.local_stack import (
    ROOT,
    Stack,
    running_stack,
    stack_python,
)

#: Names another interpreter for the endpoint runtimes (one with torch 2.13.0 CPU, diffusers);
#: by default the stack's own runs them, since the `client` session installs the engines there.
ENGINE_PYTHON_ENV = "SAGEMAKER_ENGINE_PYTHON"
#: Bound on making the demo model, and on a runtime process's start (importing torch).
READY_TIMEOUT = 300.0
OPTIONS = ClientOptions(timeout=10, connect_timeout=5, retries=0)


def engine_python() -> str:
    """`SAGEMAKER_ENGINE_PYTHON`, else the stack's interpreter."""
    return os.environ.get(ENGINE_PYTHON_ENV) or stack_python()


@dataclass(frozen=True)
class Generating:
    """The stack, its super admin signed in, the demo model and the endpoint's name."""

    stack: Stack
    admin: ApiClient
    model: dict
    endpoint: str


def demo_model(folder: Path) -> Path:
    made = subprocess.run(
        [engine_python(), "-m", "aws_extension.endpoint", "make-demo-model", str(folder)],
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    assert made.returncode == 0, made.stderr[-2000:]
    return Path(json.loads(made.stdout.strip().splitlines()[-1])["path"])


def wait_in_service(admin: ApiClient, name: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        endpoint = admin.get_endpoint(name)
        if endpoint["status"] == ENDPOINT_IN_SERVICE:
            return
        if endpoint["status"] == ENDPOINT_FAILED:
            pytest.fail(f"the local endpoint failed: {endpoint['failure_reason']}")
        time.sleep(0.5)
    pytest.fail(f"the local endpoint was not in service after {READY_TIMEOUT} s")


@contextmanager
def generating_stack(
    folder: Path, endpoint: str = "tiny", allowed_roles: list[str] | None = None
) -> Iterator[Generating]:
    """A started stack with the demo model Active and the local endpoint `endpoint` (for
    `allowed_roles`) in service; stopped on exit with its runtime processes."""
    options = ("--endpoint-python", engine_python())
    with (
        running_stack(folder / "state", *options, python=stack_python()) as stack,
        ApiClient(stack.url, stack.api_token, options=OPTIONS) as admin,
    ):
        admin.login(stack.username, stack.password)
        with Uploader(admin, folder / "upload-state") as uploader:
            result = uploader.upload(demo_model(folder / "model"), "Stable-diffusion")
        assert result.checkpoint is not None
        admin.create_endpoint(
            name=endpoint, instance_type="local", allowed_roles=allowed_roles or []
        )
        wait_in_service(admin, endpoint)
        yield Generating(stack, admin, result.checkpoint, endpoint)
