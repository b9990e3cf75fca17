"""`python -m aws_extension demo`, the README's main command: both halves up, and down together.

Runs from the client environment because the demo's tab needs gradio on A1111's pins; the
demo itself runs with the server environment's interpreter, as `nox -s demo` does.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import requests

from tests.support.local_stack import ROOT, STOP_TIMEOUT, stack_python

pytestmark = pytest.mark.integration

READY_LINE = "Ctrl-C stops both."


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _refuses(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_demo_serves_stack_and_tab_and_stops_both_on_sigterm(tmp_path: Path) -> None:
    api_port, ui_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [
            stack_python(),
            "-u",
            "-m",
            "aws_extension",
            "demo",
            "--state-dir",
            str(tmp_path),
            "--port",
            str(api_port),
            "--ui-port",
            str(ui_port),
            "--ui-python",
            sys.executable,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while not any(READY_LINE in line for line in seen):
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "the demo exited early"
            seen.append(line)
        banner = {
            label: line.split(":", 1)[1].strip()
            for line in seen
            for label in ("API URL", "API token", "Username", "Password")
            if line.startswith(label + ":")
        }
        assert banner["API URL"] == f"http://127.0.0.1:{api_port}"
        session = requests.post(
            f"{banner['API URL']}/auth/login",
            headers={"x-api-key": banner["API token"]},
            json={"username": banner["Username"], "password": banner["Password"]},
            timeout=10,
        )
        assert session.status_code == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/", timeout=10) as page:
            assert page.status == 200
            assert b"gradio" in page.read().lower()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_TIMEOUT * 2) == 0
        assert _refuses(api_port)
        assert _refuses(ui_port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
