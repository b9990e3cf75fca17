"""The whole flow on `python -m aws_extension local` as a real process: the tiny demo model
uploaded through the API, a local endpoint on the diffusers engine (a runtime process with
torch on one thread), a txt2img job, and a real PNG with A1111's infotext coming back.

Also what a restart does to jobs the stopped stack left open.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from aws_extension.endpoint.tiny_model import DEMO_MODEL_NAME
from aws_extension.local import demo_setup
from tests.server.stack import ROOT, Stack
from tests.support.local_stack import refused_port

pytestmark = pytest.mark.integration
TIMEOUT = 30
#: Long polls until a job is final: the first job waits for the runtime to import torch.
POLLS = 12
#: Making the demo model imports torch in a child process.
DEMO_TIMEOUT = 300


class Client:
    """The stack's API as the admin, over one session."""

    def __init__(self, stack: Stack, password: str) -> None:
        self.url = stack.url
        self.http = requests.Session()
        self.http.trust_env = False
        self.api_token = stack.api_token
        login = self.http.post(
            f"{self.url}/auth/login",
            json={"username": "admin", "password": password},
            headers={"x-api-key": self.api_token},
            timeout=TIMEOUT,
        )
        assert login.status_code == 200, login.text
        self.headers = {
            "x-api-key": self.api_token,
            "Authorization": f"Bearer {login.json()['access_token']}",
        }

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.http.request(
            method, f"{self.url}{path}", headers=headers, timeout=TIMEOUT, **kwargs
        )

    def upload(self, path: Path) -> dict[str, Any]:
        """A model file through its part URLs, as the uploader sends it."""
        data = path.read_bytes()
        body = {"name": path.name, "type": "Stable-diffusion", "size": len(data)}
        started = self.call("POST", "/checkpoints", json=body)
        assert started.status_code == 201, started.text
        upload = started.json()["upload"]
        parts = []
        for part in upload["parts"]:
            number, size = part["part_number"], upload["part_size"]
            put = self.http.put(
                part["url"], data=data[(number - 1) * size : number * size], timeout=TIMEOUT
            )
            assert put.status_code == 200, put.text
            parts.append({"part_number": number, "etag": put.headers["ETag"]})
        checkpoint_id = started.json()["checkpoint"]["id"]
        sha256 = hashlib.sha256(data).hexdigest()
        done = self.call(
            "POST",
            f"/checkpoints/{checkpoint_id}/complete",
            json={"parts": parts, "sha256": sha256},
        )
        assert done.status_code == 200, done.text
        result: dict[str, Any] = done.json()
        return result

    def final(self, job_id: str) -> dict[str, Any]:
        for _ in range(POLLS):
            reply = self.call("GET", f"/inferences/{job_id}", params={"wait": 25})
            assert reply.status_code == 200, reply.text
            job: dict[str, Any] = reply.json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
        raise AssertionError(f"job {job_id} did not end: {job}")


@pytest.fixture
def start(launch: Callable[..., Stack]) -> Iterator[Callable[..., Stack]]:
    """`launch`, but a stack still running at the end is stopped with Ctrl-C, so that it
    stops its endpoint runtimes too (a killed stack would leave them running)."""
    started: list[Stack] = []

    def run(state_dir: Path, *options: str) -> Stack:
        stack = launch(state_dir, *options)
        started.append(stack)
        return stack

    yield run
    for stack in started:
        if stack.process.poll() is None:
            stack.stop()


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random SD 1.x checkpoint, written by the runtime's own command (torch stays
    out of this process)."""
    folder = tmp_path_factory.mktemp("demo-model")
    subprocess.run(
        [sys.executable, "-m", "aws_extension.endpoint", "make-demo-model", str(folder)],
        cwd=ROOT,
        check=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": ""},
    )
    return folder / DEMO_MODEL_NAME


def test_a_prompt_becomes_a_png_with_a1111_infotext_on_the_local_stack(
    tmp_path: Path, start: Callable[..., Stack], demo_model: Path
) -> None:
    stack = start(tmp_path / "state", "--endpoint-cpu-threads", "1")
    client = Client(stack, stack.password)
    model = client.upload(demo_model)
    endpoint = {"name": "local", "instance_type": "local", "engine": "diffusers"}
    assert client.call("POST", "/endpoints", json=endpoint).status_code == 201
    body = {
        "task": "txt2img",
        "models": {"Stable-diffusion": model["id"]},
        "payload": {"prompt": "a lighthouse", "steps": 2, "width": 64, "height": 64, "seed": 123},
    }

    # The endpoint is still starting: the job waits for it.
    queued = client.call("POST", "/inferences", json=body, headers={"Idempotency-Key": "one"})
    job = client.final(queued.json()["id"])

    assert queued.status_code == 202, queued.text
    assert job["status"] == "succeeded", job
    [image] = job["images"]
    assert image["seed"] == 123
    infotext = image["infotext"]
    assert infotext.startswith("a lighthouse\nSteps: 2, Sampler: ")
    assert "Seed: 123" in infotext and "Size: 64x64" in infotext
    assert f"Model hash: {model['sha256'][:10]}" in infotext
    # A1111 quotes values with commas.
    assert 'Model: "tiny-random-sd15 (demo, random weights)"' in infotext
    assert job["info"]["all_seeds"] == [123]
    png = client.http.get(image["url"], timeout=TIMEOUT)
    assert png.status_code == 200
    picture = Image.open(io.BytesIO(png.content))
    assert (picture.format, picture.size) == ("PNG", (64, 64))
    assert picture.info["parameters"] == infotext
    assert stack.stop() == 0
    assert "Traceback" not in stack.output


def test_demo_makes_the_model_and_endpoint_once_and_generate_works(
    tmp_path: Path, start: Callable[..., Stack]
) -> None:
    state = tmp_path / "state"
    stack = start(state, "--demo")
    password = stack.password
    assert stack.read_until("Demo ", DEMO_TIMEOUT).startswith("Demo ready: model ")
    client = Client(stack, password)
    [model] = client.call("GET", "/checkpoints").json()["items"]
    assert (model["name"], model["type"], model["status"]) == (
        DEMO_MODEL_NAME,
        "Stable-diffusion",
        "Active",
    )
    assert model["created_by"] == "system" and model["allowed_roles"] == []
    [endpoint] = client.call("GET", "/endpoints").json()["items"]
    assert (endpoint["name"], endpoint["engine"]) == ("local-demo", "diffusers")
    body = {
        "task": "txt2img",
        "models": {"Stable-diffusion": model["id"]},
        "payload": {"prompt": "demo", "steps": 2, "width": 64, "height": 64, "seed": 7},
    }
    # No endpoint named: the demo endpoint is the one the caller may use.
    job = client.final(client.call("POST", "/inferences", json=body).json()["id"])
    assert job["status"] == "succeeded", job
    assert job["endpoint"] == "local-demo"
    assert stack.stop() == 0

    again = start(state, "--demo")
    assert again.read_until("Demo ", DEMO_TIMEOUT).startswith("Demo ready: model ")
    client = Client(again, password)
    assert [m["id"] for m in client.call("GET", "/checkpoints").json()["items"]] == [model["id"]]
    assert [e["name"] for e in client.call("GET", "/endpoints").json()["items"]] == ["local-demo"]
    assert again.stop() == 0
    assert "Traceback" not in stack.output + again.output


def test_the_demo_model_name_is_the_runtime_s() -> None:
    assert demo_setup.DEMO_MODEL_NAME == DEMO_MODEL_NAME


def test_jobs_a_stopped_stack_left_open_fail_when_it_starts_again(
    tmp_path: Path, start: Callable[..., Stack]
) -> None:
    state = tmp_path / "state"
    stack = start(state)
    password = stack.password
    client = Client(stack, password)
    model = client.upload(_small_model(tmp_path))
    models_dir = tmp_path / "a1111-models"
    models_dir.mkdir()
    with refused_port() as port:
        # An A1111 that never answers: the endpoint stays Creating, the job queued.
        endpoint = {
            "name": "never-ready",
            "instance_type": "local",
            "engine": "webui",
            "webui_url": f"http://127.0.0.1:{port}",
            "webui_models_dir": str(models_dir),
        }
        assert client.call("POST", "/endpoints", json=endpoint).status_code == 201
        body = {"task": "txt2img", "models": {"Stable-diffusion": model["id"]}, "payload": {}}
        job = client.call("POST", "/inferences", json=body).json()
        assert job["status"] == "queued"
        assert stack.stop() == 0

        again = start(state)
        client = Client(again, password)
        failed = client.call("GET", f"/inferences/{job['id']}").json()

    assert failed["status"] == "failed"
    assert failed["error_code"] == "interrupted"
    assert "stopped while the job ran" in failed["error"]
    assert again.stop() == 0


def _small_model(folder: Path) -> Path:
    path = folder / "small.safetensors"
    path.write_bytes(b"\0" * 4096)
    return path
