"""Real processes for the browser tests: the local stack, the standalone tab, Chromium.

The stack runs with the server environment's interpreter (tests/support/local_stack.py:
`SAGEMAKER_STACK_PYTHON`, set by the nox `client` session), the tab with this one (A1111's
pins) unless `SAGEMAKER_UI_PYTHON` names another. Every wait is bounded and every process is
ended in teardown, also when a test fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.local_stack import (
    ROOT,
    Stack,
    StackUnavailable,
    running_stack,
    stack_python,
    stop_process,
)

START_TIMEOUT_S = 60.0
#: The tab runs with this interpreter; point it at one with gradio 4 to check Forge's world.
UI_PYTHON = os.environ.get("SAGEMAKER_UI_PYTHON") or sys.executable
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The embedded local stack as a real process, with its first-start credentials."""
    try:
        python = stack_python()
    except StackUnavailable as exc:
        pytest.fail(str(exc))
    with running_stack(tmp_path_factory.mktemp("stack") / "state", python=python) as stack:
        yield stack


@dataclass
class TabServer:
    """The standalone tab (`python -m aws_extension ui`); `restart()` keeps the data dir.

    `options` are more command-line options of the tab (`--models-dir DIR`).
    """

    data_dir: Path
    options: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def log(self) -> Path:
        """The tab's output, next to its data dir: the first place to look when it fails."""
        return self.data_dir.with_name(self.data_dir.name + ".log")

    @property
    def settings_file(self) -> Path:
        return self.data_dir / "sagemaker" / "settings.json"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    UI_PYTHON,
                    "-m",
                    "aws_extension",
                    "ui",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                    *self.options,
                ],
                cwd=ROOT,
                env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the tab exited with {self.process.returncode}:\n{self.log.read_text()}"
                )
            try:
                with urllib.request.urlopen(self.url, timeout=2) as reply:  # noqa: S310
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"the tab did not answer at {self.url}")

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@pytest.fixture(scope="module")
def tab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TabServer]:
    server = TabServer(data_dir=tmp_path_factory.mktemp("webui"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A fresh browser context per test; anything not on 127.0.0.1 is refused."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(15_000)
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith("http://127.0.0.1") else route.abort()
        ),
    )
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
