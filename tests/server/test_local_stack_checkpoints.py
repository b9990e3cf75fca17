"""Models on `python -m aws_extension local` as a real process: its own signed blob URLs,
its state folder, and the --allow-private-import flag."""

from __future__ import annotations

import hashlib
import random
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.server.live import Route, file_server, wait_for
from tests.server.stack import Stack

pytestmark = pytest.mark.integration
TIMEOUT = 10
DATA = random.Random(5).randbytes(100 * 1024)


def session(stack: Stack) -> tuple[requests.Session, dict[str, str]]:
    http = requests.Session()
    http.trust_env = False
    password = stack.field("Password:")
    login = http.post(
        f"{stack.url}/auth/login",
        json={"username": "admin", "password": password},
        headers={"x-api-key": stack.api_token},
        timeout=TIMEOUT,
    )
    assert login.status_code == 200
    return http, {
        "x-api-key": stack.api_token,
        "Authorization": f"Bearer {login.json()['access_token']}",
    }


def test_a_model_uploads_to_the_local_stack_through_its_own_urls(
    tmp_path: Path, launch: Callable[..., Stack]
) -> None:
    state = tmp_path / "state"
    stack = launch(state)
    http, headers = session(stack)
    body = {"name": "tiny.safetensors", "type": "Lora", "size": len(DATA)}

    started = http.post(f"{stack.url}/checkpoints", json=body, headers=headers, timeout=TIMEOUT)

    assert started.status_code == 201, started.text
    upload = started.json()["upload"]
    assert upload["part_count"] == 1
    url = upload["parts"][0]["url"]
    assert url.startswith(f"{stack.url}/blobs/parts/")
    # The signed URL is the credential: no API key, no token.
    put = http.put(url, data=DATA, timeout=TIMEOUT)
    assert put.status_code == 200, put.text
    checkpoint_id = started.json()["checkpoint"]["id"]
    done = http.post(
        f"{stack.url}/checkpoints/{checkpoint_id}/complete",
        json={"parts": [{"part_number": 1, "etag": put.headers["ETag"]}]},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "Active"
    stored = state / "blobs" / "objects" / "checkpoints" / checkpoint_id / "tiny.safetensors"
    assert stored.read_bytes() == DATA
    assert stat.S_IMODE((state / "blobs").stat().st_mode) == 0o700
    # Anything else under /blobs/ still needs its signature.
    forged = http.put(url.split("?")[0], data=b"x", timeout=TIMEOUT)
    assert forged.status_code == 403
    assert forged.json()["code"] == "invalid_signature"
    assert stack.stop() == 0
    assert "Traceback" not in stack.output


def test_imports_from_this_machine_need_the_flag(
    tmp_path: Path, launch: Callable[..., Stack]
) -> None:
    with file_server() as files:
        files.routes["/tiny.safetensors"] = Route(body=DATA)
        url = f"{files.base_url}/tiny.safetensors"
        guarded = launch(tmp_path / "guarded")
        http, headers = session(guarded)
        body = {"url": url, "type": "Lora"}
        refused = http.post(
            f"{guarded.url}/checkpoints/import", json=body, headers=headers, timeout=TIMEOUT
        )
        assert refused.status_code == 400
        assert "loopback" in refused.json()["detail"]
        guarded.stop()

        allowed = launch(tmp_path / "allowed", "--allow-private-import")
        http, headers = session(allowed)
        accepted = http.post(
            f"{allowed.url}/checkpoints/import", json=body, headers=headers, timeout=TIMEOUT
        )
        assert accepted.status_code == 202, accepted.text
        path = f"{allowed.url}/checkpoints/{accepted.json()['id']}"

        def ended() -> dict[str, Any] | None:
            reply: dict[str, Any] = http.get(path, headers=headers, timeout=TIMEOUT).json()
            return None if reply["status"] == "Importing" else reply

        active = wait_for(ended, what="the import")
    assert active["status"] == "Active", active["error"]
    assert active["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert allowed.stop() == 0
