"""The webui engine against a stand-in A1111 built from the captured v1.10.1 API."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from aws_extension.endpoint.engines.webui_engine import WebuiEngine
from aws_extension.endpoint.model_cache import ModelCache
from aws_extension.endpoint.runtime import Runtime
from tests.endpoint.fake_a1111 import ROOT, FakeA1111, running_fake_a1111
from tests.endpoint.file_server import FileServer
from tests.endpoint.support import Endpoint, model_entry, serving

#: A body as the WebUI's txt2img script would send it: many fields the engine must not touch.
PAYLOAD = {
    "prompt": "a red fox",
    "negative_prompt": "lowres",
    "styles": [],
    "seed": 42,
    "sampler_name": "DPM++ 2M",
    "scheduler": "Karras",
    "batch_size": 2,
    "n_iter": 1,
    "steps": 20,
    "cfg_scale": 6.5,
    "width": 64,
    "height": 64,
    "enable_hr": False,
    "override_settings": {"CLIP_stop_at_last_layers": 2},
    "alwayson_scripts": {},
}


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def a1111(a1111_reference: Path, tmp_path: Path) -> Iterator[FakeA1111]:
    with running_fake_a1111(tmp_path / "webui-models") as server:
        yield server


@pytest.fixture
def webui(a1111: FakeA1111, tmp_path: Path) -> Iterator[Endpoint]:
    cache = ModelCache(tmp_path / "cache")
    engine = WebuiEngine(a1111.url, a1111.models_dir, cache.root, ping_interval_s=0.05)
    with serving(Runtime(engine, cache)) as served:
        served.runtime.start()
        assert wait_for(lambda: served.ping().status_code == 200)
        yield served


@pytest.fixture
def models(files: FileServer, tmp_path: Path) -> dict:
    folder = tmp_path / "files"
    folder.mkdir()
    contents = {"ckpt.safetensors": b"checkpoint", "ink.safetensors": b"lora", "v.pt": b"vae"}
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return {
        "Stable-diffusion": model_entry(files, folder / "ckpt.safetensors", "My Model.safetensors"),
        "Lora": [model_entry(files, folder / "ink.safetensors", weight=0.6)],
        "VAE": model_entry(files, folder / "v.pt"),
    }


def job(models: dict, **payload: object) -> dict:
    return {"task": "txt2img", "models": models, "payload": {**PAYLOAD, **payload}}


def test_body_reaches_a1111_unchanged_but_for_model_selection(
    webui: Endpoint, a1111: FakeA1111, models: dict
) -> None:
    response = webui.invoke(job(models))
    assert response.status_code == 200, response.text
    (forwarded,) = a1111.bodies
    expected = json.loads(json.dumps(PAYLOAD))
    expected["prompt"] = "a red fox <lora:ink:0.6>"
    expected["override_settings"] = {
        "CLIP_stop_at_last_layers": 2,
        "sd_model_checkpoint": "My Model.safetensors",
        "sd_vae": "v.pt",
    }
    assert forwarded == expected
    assert a1111.loaded == [b"checkpoint"]  # the named file is the job's checkpoint
    assert (a1111.models_dir / "Lora" / "ink.safetensors").read_bytes() == b"lora"
    assert (a1111.models_dir / "VAE" / "v.pt").read_bytes() == b"vae"
    assert sorted(a1111.refreshed) == ["refresh-checkpoints", "refresh-loras", "refresh-vae"]
    reply = response.json()
    assert [Image.open(io.BytesIO(base64.b64decode(i))).size for i in reply["images"]] == [
        (64, 64),
        (64, 64),
    ]
    assert json.loads(reply["info"])["all_seeds"] == [42, 43]  # A1111's info, as it sent it
    assert reply["parameters"] == forwarded
    assert set(reply["timings"]) == {"fetch_s", "load_s", "generate_s"}
    # the same models again: nothing to link, nothing to rescan
    assert webui.invoke(job(models)).status_code == 200
    assert len(a1111.refreshed) == 3


def test_a_lora_already_tagged_in_the_prompt_keeps_its_tag(
    webui: Endpoint, a1111: FakeA1111, models: dict
) -> None:
    response = webui.invoke(job(models, prompt="fox <lora:ink:1.2>"))
    assert response.status_code == 200
    assert a1111.bodies[-1]["prompt"] == "fox <lora:ink:1.2>"


def test_the_webuis_own_files_are_never_overwritten(
    webui: Endpoint, a1111: FakeA1111, models: dict
) -> None:
    own = a1111.models_dir / "Stable-diffusion" / "My Model.safetensors"
    own.parent.mkdir(parents=True)
    own.write_bytes(b"the user's own model")
    assert webui.invoke(job(models)).status_code == 200
    expected = f"My Model-{models['Stable-diffusion']['sha256'][:10]}.safetensors"
    assert a1111.bodies[-1]["override_settings"]["sd_model_checkpoint"] == expected
    assert a1111.loaded[-1] == b"checkpoint"
    assert own.read_bytes() == b"the user's own model"


def test_a1111_errors_are_surfaced(webui: Endpoint, models: dict) -> None:
    response = webui.invoke(job(models, steps="twenty"))
    assert response.status_code == 400
    assert "body.steps: value is not a valid integer" in response.json()["detail"]
    response = webui.invoke(job(models, prompt="FAIL500"))
    assert response.status_code == 502
    assert response.json()["code"] == "engine_error"
    assert "RuntimeError: boom" in response.json()["detail"]


def test_a_dead_a1111_makes_the_endpoint_not_ready(
    webui: Endpoint, a1111: FakeA1111, models: dict
) -> None:
    a1111.shutdown()
    a1111.server_close()
    assert wait_for(lambda: webui.ping().status_code == 503)
    response = webui.invoke(job(models))
    assert (response.status_code, response.json()["code"]) == (503, "unavailable")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_starts_watches_and_stops_a1111(
    a1111_reference: Path, files: FileServer, models: dict, tmp_path: Path
) -> None:
    """The container path: `serve --engine webui --webui-dir` owns the A1111 process."""
    webui_dir = tmp_path / "stable-diffusion-webui"
    webui_dir.mkdir()
    (webui_dir / "launch.py").write_text(
        "import os, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "open('a1111.pid', 'w').write(str(os.getpid()))\n"
        "from tests.endpoint.fake_a1111 import main\n"
        "main()\n"
    )
    command = [
        sys.executable, "-m", "aws_extension.endpoint", "serve", "--engine", "webui",
        "--host", "127.0.0.1", "--port", "0", "--model-cache", str(tmp_path / "cache"),
        "--webui-dir", str(webui_dir), "--webui-python", sys.executable,
        "--webui-port", str(free_port()),
    ]  # fmt: skip
    runtime = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        banner = runtime.stdout.readline()
        url = banner.strip().rsplit(" ", 1)[1]
        ping = lambda: requests.get(f"{url}/ping", timeout=2).status_code  # noqa: E731
        assert wait_for(lambda: ping() == 200, 30)
        response = requests.post(f"{url}/invocations", json=job(models), timeout=30)
        assert response.status_code == 200, response.text
        first = int((webui_dir / "a1111.pid").read_text())
        os.kill(first, signal.SIGKILL)  # A1111 crashes: /ping drops, then it is restarted
        assert wait_for(lambda: ping() == 503, 10)
        assert wait_for(lambda: ping() == 200, 30)
        second = int((webui_dir / "a1111.pid").read_text())
        assert second != first
        runtime.send_signal(signal.SIGTERM)  # SageMaker stopping the container
        assert runtime.wait(20) == 0
        assert wait_for(lambda: not Path(f"/proc/{second}").exists(), 10)
    finally:
        if runtime.poll() is None:
            runtime.kill()
            runtime.wait(10)
