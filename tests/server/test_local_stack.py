"""`python -m aws_extension local` as a real process, over real HTTP."""

from __future__ import annotations

import signal
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.server.stack import Stack

pytestmark = pytest.mark.integration
TIMEOUT = 10


def login(stack: Stack, username: str, password: str) -> requests.Response:
    return requests.post(
        f"{stack.url}/auth/login",
        json={"username": username, "password": password},
        headers={"x-api-key": stack.api_token},
        timeout=TIMEOUT,
    )


def test_first_start_prints_credentials_once_and_restart_keeps_them(
    tmp_path: Path, launch: Callable[[Path], Stack]
) -> None:
    state = tmp_path / "state"
    first = launch(state)
    assert first.url.startswith("http://127.0.0.1:")
    assert first.field("Username:") == "admin"
    password = first.field("Password:")
    assert password
    assert "shown only this once" in first.output

    ping = requests.get(f"{first.url}/ping", timeout=TIMEOUT)
    assert ping.status_code == 403
    assert ping.json()["code"] == "invalid_api_key"
    key = {"x-api-key": first.api_token}
    ping = requests.get(f"{first.url}/ping", headers=key, timeout=TIMEOUT)
    assert ping.json() == {"message": "pong", "api_version": "1.0"}
    session = login(first, "admin", password)
    assert session.status_code == 200, session.json()
    assert len(session.json()["user"]["permissions"]) == 6

    files = sorted(path.name for path in state.iterdir())
    assert {"config.json", "records.sqlite3"} <= set(files)
    for name in files:
        private = 0o700 if (state / name).is_dir() else 0o600
        assert stat.S_IMODE((state / name).stat().st_mode) == private, name
    assert stat.S_IMODE(state.stat().st_mode) == 0o700

    assert first.stop(signal.SIGINT) == 0
    assert "Traceback" not in first.output

    second = launch(state)
    # Comparisons of secrets go through booleans, so a failure cannot print them.
    same_token = second.api_token == first.api_token
    assert same_token
    assert second.field("Password:") is None
    password_shown_again = password in second.output
    assert not password_shown_again
    assert "Existing credentials kept" in second.output
    response = login(second, "admin", password)
    assert response.status_code == 200
    assert second.stop(signal.SIGTERM) == 0
    assert "Traceback" not in second.output
