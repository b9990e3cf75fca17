"""A local stack that really generates, for the tests of jobs and of the txt2img script.

The stack runs its local endpoints with the engine environment's interpreter (torch 2.13.0
CPU, diffusers), and holds the demo model (the tiny random SD 1.x checkpoint that the
runtime's `make-demo-model` writes, uploaded like any model) and one local `diffusers`
endpoint in service, open to the role `admin` only. Jobs of 64x64 pixels and 2 steps take
well under a second on it.
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

from aws_extension.client.api import ApiClient
from aws_extension.client.uploader import Uploader
from aws_extension.contract import ENDPOINT_FAILED, ENDPOINT_IN_SERVICE
from tests.client.conftest import OPTIONS, ROOT, Login, Server
from tests.support.local_stack import Stack, running_stack, stack_python

#: Names the engine environment's interpreter (torch 2.13.0 CPU, diffusers).
ENGINE_PYTHON_ENV = "SAGEMAKER_ENGINE_PYTHON"
NOX_ENGINE_PYTHON = ROOT / ".nox" / "endpoint" / "bin" / "python"
#: Bound on a runtime process's start (importing torch on a busy machine) and its first job.
READY_TIMEOUT = 300.0
ENDPOINT = "tiny"
ADMIN_ROLE = "admin"
#: A job the tiny model finishes at once: two 64x64 images.
SMALL = {
    "prompt": "a red fox",
    "negative_prompt": "blurry",
    "sampler_name": "Euler a",
    "scheduler": "Automatic",
    "steps": 2,
    "cfg_scale": 7.0,
    "width": 64,
    "height": 64,
    "seed": 1234,
    "batch_size": 2,
    "n_iter": 1,
}


def engine_python() -> str:
    python = os.environ.get(ENGINE_PYTHON_ENV)
    if python:
        return python
    if NOX_ENGINE_PYTHON.exists():
        return str(NOX_ENGINE_PYTHON)
    pytest.fail(
        f"{ENGINE_PYTHON_ENV} is not set and {NOX_ENGINE_PYTHON} does not exist: these tests "
        "run local endpoints with the engine environment (python3 -m nox -s endpoint makes it)."
    )


@dataclass(frozen=True)
class Generation:
    """The stack, its super admin signed in, the demo model and the endpoint's name."""

    stack: Stack
    admin: ApiClient
    model: dict
    endpoint: str = ENDPOINT

    def add_user(self, prefix: str, roles: list[str]) -> Login:
        return self._admin_side().add_user(prefix, roles)

    def add_role(self, prefix: str, permissions: list[str]) -> str:
        return self._admin_side().add_role(prefix, permissions)

    def client(self, login: Login) -> ApiClient:
        """A client signed in as `login` (closed by the caller)."""
        client = ApiClient(self.stack.url, self.stack.api_token, options=OPTIONS)
        client.login(login.username, login.password)
        return client

    def _admin_side(self) -> Server:
        return Server(self.stack, self.admin, self.stack.username, self.stack.password)


@contextmanager
def generation_stack(folder: Path) -> Iterator[Generation]:
    options = ("--endpoint-python", engine_python())
    with (
        running_stack(folder / "state", *options, python=stack_python()) as stack,
        ApiClient(stack.url, stack.api_token, options=OPTIONS) as admin,
    ):
        admin.login(stack.username, stack.password)
        with Uploader(admin, folder / "upload-state") as uploader:
            result = uploader.upload(_demo_model(folder / "model"), "Stable-diffusion")
        assert result.checkpoint is not None
        admin.create_endpoint(name=ENDPOINT, instance_type="local", allowed_roles=[ADMIN_ROLE])
        _wait_in_service(admin, ENDPOINT)
        yield Generation(stack, admin, result.checkpoint)


def _demo_model(folder: Path) -> Path:
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


def _wait_in_service(admin: ApiClient, name: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        endpoint = admin.get_endpoint(name)
        if endpoint["status"] == ENDPOINT_IN_SERVICE:
            return
        if endpoint["status"] == ENDPOINT_FAILED:
            pytest.fail(f"the local endpoint failed: {endpoint['failure_reason']}")
        time.sleep(0.5)
    pytest.fail(f"the local endpoint was not in service after {READY_TIMEOUT} s")
