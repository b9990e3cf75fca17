"""Local endpoints: real runtime processes (`python -m aws_extension.endpoint serve`) on
127.0.0.1, with the `webui` engine pointed at a stand-in A1111, so no torch is needed and a
runtime is ready in about a second.

Through the API on an app with local compute, and through `python -m aws_extension local`
as a real process for what must survive a restart of the stack.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import FastAPI

from aws_extension.middleware.compute import Compute
from aws_extension.middleware.compute.local_endpoints import LocalEndpoints
from tests.server.a1111_for_jobs import StandInA1111
from tests.server.conftest import Api
from tests.server.endpoints_support import local_compute
from tests.server.live import wait_for
from tests.server.stack import Stack

TIMEOUT = 10
#: A runtime imports its engine and answers /ping within a second or two; on a busy
#: machine, more.
READY_TIMEOUT = 60.0


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def compute(state_dir: Path) -> Compute:
    return local_compute(state_dir)


@pytest.fixture
def backend(app: FastAPI) -> LocalEndpoints:
    endpoints = app.state.services.compute.endpoints
    assert isinstance(endpoints, LocalEndpoints)
    return endpoints


def webui_body(a1111: StandInA1111, models_dir: Path, **fields: Any) -> dict[str, Any]:
    return {
        "name": "here",
        "instance_type": "local",
        "engine": "webui",
        "webui_url": a1111.url,
        "webui_models_dir": str(models_dir),
        **fields,
    }


def status_of(api: Api, token: str, name: str) -> dict[str, Any]:
    reply = api.get(f"/endpoints/{name}", token=token)
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def wait_status(api: Api, token: str, name: str, status: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        shown = status_of(api, token, name)
        return shown if shown["status"] == status else None

    result: dict[str, Any] = wait_for(reached, timeout=READY_TIMEOUT, what=f"{name} {status}")
    return result


def runtime_pid(state_dir: Path, name: str) -> int:
    [pid_file] = (state_dir / "endpoints").glob(f"{name}-*/runtime.pid")
    return int(pid_file.read_text())


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def gone(pid: int) -> bool:
    """The process has exited (a zombie of this process counts: it no longer runs)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return status.rsplit(")", 1)[1].split()[0] == "Z"


# -- through the API -------------------------------------------------------------------------


def test_a_webui_endpoint_is_a_runtime_on_loopback_in_service_once_it_answers(
    api: Api,
    admin: str,
    a1111: StandInA1111,
    models_dir: Path,
    backend: LocalEndpoints,
    state_dir: Path,
) -> None:
    reply = api.post("/endpoints", token=admin, json=webui_body(a1111, models_dir))

    assert reply.status_code == 201, reply.text
    created = reply.json()
    assert created["status"] == "Creating"
    assert created["webui_url"] == a1111.url
    assert "webui_models_dir" not in created  # a path of the server's machine
    url = backend.wait_ready("here", READY_TIMEOUT)
    assert url is not None and url.startswith("http://127.0.0.1:")
    assert backend.runtime_url("here") == url
    assert requests.get(f"{url}/ping", timeout=TIMEOUT).json() == {"status": "ready"}
    shown = wait_status(api, admin, "here", "InService")
    assert (shown["current_instance_count"], shown["desired_instance_count"]) == (1, 1)
    command = command_line(runtime_pid(state_dir, "here"))
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--engine") + 1] == "webui"
    assert command[command.index("--cpu-threads") + 1] == "1"
    cache = Path(command[command.index("--model-cache") + 1])
    assert cache.parent.parent == state_dir / "endpoints" and cache.is_dir()
    assert api.get("/endpoints/instance-types", token=admin).json() == {"items": ["local"]}


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"instance_type": "ml.g5.xlarge"}, "is not offered here; pick one of: local."),
        ({"initial_instance_count": 2}, "use initial_instance_count 1 and no autoscaling"),
        ({"autoscaling": {"min": 1, "max": 1}}, "use initial_instance_count 1 and no autoscaling"),
        ({"webui_url": None}, "needs webui_url (an A1111 started with --api)"),
        ({"webui_url": "file:///etc"}, "webui_url must be an http(s) URL"),
        ({"webui_models_dir": "/no/such/folder"}, "'/no/such/folder' is not a folder here"),
        ({"engine": "diffusers"}, "only for instance type 'local' with engine 'webui'"),
    ],
)
def test_what_a_local_endpoint_cannot_be_is_400_and_leaves_no_record(
    api: Api,
    admin: str,
    a1111: StandInA1111,
    models_dir: Path,
    fields: dict[str, Any],
    words: str,
) -> None:
    body = {k: v for k, v in webui_body(a1111, models_dir, **fields).items() if v is not None}

    reply = api.post("/endpoints", token=admin, json=body)

    assert reply.status_code == 400, reply.text
    assert words in reply.json()["detail"]
    assert api.get("/endpoints", token=admin).json()["items"] == []


def test_a_runtime_that_dies_fails_its_endpoint_with_its_last_words(
    api: Api,
    admin: str,
    a1111: StandInA1111,
    models_dir: Path,
    backend: LocalEndpoints,
    state_dir: Path,
) -> None:
    api.post("/endpoints", token=admin, json=webui_body(a1111, models_dir))
    wait_status(api, admin, "here", "InService")

    os.kill(runtime_pid(state_dir, "here"), signal.SIGKILL)

    failed = wait_status(api, admin, "here", "Failed")
    assert "Its runtime process exited with code -9" in failed["failure_reason"]
    assert backend.wait_ready("here", 1) is None
    assert backend.runtime_url("here") is None


def test_an_engine_that_cannot_start_fails_the_endpoint_at_once(
    api: Api, admin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The diffusers engine imports torch and diffusers as it starts; broken stand-ins of
    both (first on the runtime's path) make that fail as a broken install would."""
    broken = tmp_path / "broken-site"
    for package in ("torch", "diffusers"):
        (broken / package).mkdir(parents=True)
        (broken / package / "__init__.py").write_text(
            "raise ImportError('stand-in of a broken install')\n"
        )
    monkeypatch.setenv("PYTHONPATH", str(broken))

    reply = api.post("/endpoints", token=admin, json={"name": "gpu", "instance_type": "local"})

    assert reply.status_code == 201, reply.text
    failed = wait_status(api, admin, "gpu", "Failed")
    assert failed["failure_reason"] == (
        "Its engine could not start: ImportError: stand-in of a broken install"
    )


def test_delete_stops_the_runtime_and_removes_its_folder(
    api: Api, admin: str, a1111: StandInA1111, models_dir: Path, state_dir: Path
) -> None:
    api.post("/endpoints", token=admin, json=webui_body(a1111, models_dir))
    wait_status(api, admin, "here", "InService")
    pid = runtime_pid(state_dir, "here")

    reply = api.delete("/endpoints/here", token=admin)

    assert reply.status_code == 204
    assert gone(pid)
    assert list((state_dir / "endpoints").iterdir()) == []
    assert api.get("/endpoints/here", token=admin).status_code == 404


# -- the local stack as a process ------------------------------------------------------------


class StackApi:
    """The stack's API as the admin; `login` again after a restart (same credentials)."""

    def __init__(self, stack: Stack, password: str) -> None:
        self.http = requests.Session()
        self.http.trust_env = False
        self.password = password
        self.login(stack)

    def login(self, stack: Stack) -> None:
        self.url = stack.url
        reply = self.http.post(
            f"{stack.url}/auth/login",
            json={"username": "admin", "password": self.password},
            headers={"x-api-key": stack.api_token},
            timeout=TIMEOUT,
        )
        assert reply.status_code == 200, reply.text
        self.http.headers.update(
            {
                "x-api-key": stack.api_token,
                "Authorization": f"Bearer {reply.json()['access_token']}",
            }
        )

    def status(self, name: str) -> dict[str, Any]:
        reply = self.http.get(f"{self.url}/endpoints/{name}", timeout=TIMEOUT)
        assert reply.status_code == 200, reply.text
        result: dict[str, Any] = reply.json()
        return result

    def wait(self, name: str, status: str) -> None:
        wait_for(
            lambda: self.status(name)["status"] == status,
            timeout=READY_TIMEOUT,
            what=f"{name} {status}",
        )


@pytest.fixture
def started_pids() -> Iterator[list[int]]:
    """Runtime processes a test saw; any still running at the end is killed (a stack
    killed on purpose leaves its runtimes behind)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if not gone(pid) and "aws_extension.endpoint" in command_line(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.integration
def test_local_endpoints_run_again_after_the_stack_restarts(
    tmp_path: Path,
    launch: Callable[..., Stack],
    a1111: StandInA1111,
    models_dir: Path,
    started_pids: list[int],
) -> None:
    state = tmp_path / "state"
    stack = launch(state, "--endpoint-cpu-threads", "2")
    api = StackApi(stack, stack.password)
    body = webui_body(a1111, models_dir)
    assert api.http.post(f"{api.url}/endpoints", json=body, timeout=TIMEOUT).status_code == 201
    api.wait("here", "InService")
    first = runtime_pid(state, "here")
    started_pids.append(first)
    command = command_line(first)
    assert command[command.index("--cpu-threads") + 1] == "2"

    assert stack.stop() == 0
    assert wait_for(lambda: gone(first), timeout=TIMEOUT, what="the runtime to stop")

    again = launch(state)
    api.login(again)
    api.wait("here", "InService")
    second = runtime_pid(state, "here")
    started_pids.append(second)
    assert second != first
    assert api.status("here")["failure_reason"] is None
    assert again.stop() == 0
    assert wait_for(lambda: gone(second), timeout=TIMEOUT, what="the runtime to stop")


@pytest.mark.integration
def test_a_runtime_left_by_a_killed_stack_is_replaced(
    tmp_path: Path,
    launch: Callable[..., Stack],
    a1111: StandInA1111,
    models_dir: Path,
    started_pids: list[int],
) -> None:
    state = tmp_path / "state"
    stack = launch(state)
    api = StackApi(stack, stack.password)
    body = webui_body(a1111, models_dir)
    assert api.http.post(f"{api.url}/endpoints", json=body, timeout=TIMEOUT).status_code == 201
    api.wait("here", "InService")
    orphan = runtime_pid(state, "here")
    started_pids.append(orphan)

    stack.process.kill()
    stack.process.wait(TIMEOUT)
    time.sleep(0.2)
    assert not gone(orphan)  # nobody told it to stop

    again = launch(state)
    api.login(again)
    api.wait("here", "InService")
    started_pids.append(runtime_pid(state, "here"))
    assert runtime_pid(state, "here") != orphan
    assert wait_for(lambda: gone(orphan), timeout=TIMEOUT, what="the orphan to stop")
