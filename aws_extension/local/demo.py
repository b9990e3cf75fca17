"""`python -m aws_extension demo`: the local stack and the standalone tab, side by side.

The two halves live in different Python worlds (the middleware needs pydantic 2, the tab
is tested on A1111's pins with pydantic 1), so the demo runs each as its own process: the
local stack with this interpreter, the tab with `--ui-python` (by default this one too).
The stack starts with `--demo` (a local endpoint and the tiny demo model, so Generate works
at once), and the tab's settings get the stack's URL and API token, so signing in with the
printed username and password is all that is left to do.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from aws_extension.client.settings_store import SettingsStore
from aws_extension.local.state import default_state_dir

READY_TIMEOUT_S = 60.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aws_extension demo",
        description="Run the embedded local stack and the Amazon SageMaker tab together.",
    )
    parser.add_argument("--state-dir", type=Path, default=None, help="local stack state folder")
    parser.add_argument("--port", type=int, default=8080, help="local stack port")
    parser.add_argument("--ui-port", type=int, default=7861, help="port of the tab")
    parser.add_argument(
        "--ui-python", default=sys.executable, help="interpreter with gradio for the tab"
    )
    return parser


def _echo_and_find_url(stream, found: threading.Event, banner: dict[str, str]) -> None:
    """Copy the stack's output to ours (it holds the one-time credentials) and read its URL
    and API token off the banner."""
    for line in stream:
        sys.stdout.write(line)
        sys.stdout.flush()
        for label, field in (("API URL:", "url"), ("API token:", "token")):
            if line.startswith(label) and field not in banner:
                banner[field] = line.split(":", 1)[1].strip()
        if "url" in banner and "token" in banner:
            found.set()


def _wait_http(url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback URL we started
                return True
        except OSError:
            time.sleep(0.3)
    return False


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # A SIGTERM (from a service manager, or nox's timeout) must stop both children too, so
    # it unwinds through the `finally` below like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    state_dir = args.state_dir or default_state_dir()
    stack = subprocess.Popen(  # noqa: S603 - our own module, argv list
        [
            sys.executable,
            "-u",
            "-m",
            "aws_extension",
            "local",
            "--state-dir",
            str(state_dir),
            "--port",
            str(args.port),
            "--demo",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    found, banner = threading.Event(), {}
    threading.Thread(
        target=_echo_and_find_url, args=(stack.stdout, found, banner), daemon=True
    ).start()
    ui = None
    try:
        if not found.wait(READY_TIMEOUT_S) or stack.poll() is not None:
            print("The local stack did not start; see its output above.", file=sys.stderr)
            return 1
        ui_url = f"http://127.0.0.1:{args.ui_port}"
        data_dir = Path(state_dir) / "webui"
        SettingsStore(data_dir / "sagemaker" / "settings.json").save_connection(
            banner["url"], banner["token"]
        )
        ui = subprocess.Popen(  # noqa: S603 - our own module, argv list
            [
                args.ui_python,
                "-m",
                "aws_extension",
                "ui",
                "--data-dir",
                str(data_dir),
                "--port",
                str(args.ui_port),
            ],
        )
        if not _wait_http(ui_url, time.monotonic() + READY_TIMEOUT_S):
            print("The tab did not start; see its output above.", file=sys.stderr)
            return 1
        print(
            f"\nOpen {ui_url} -> Amazon SageMaker -> API and User Settings: the API URL and\n"
            "token are filled in; enter the username and password printed above (first start\n"
            "only) and click 'Test Connection & Update Setting'. Then generate in the\n"
            "'txt2img on SageMaker' tab. Ctrl-C stops both.\n",
            flush=True,
        )
        while stack.poll() is None and ui.poll() is None:
            time.sleep(0.5)
        return stack.returncode or (ui.returncode or 0)
    except KeyboardInterrupt:
        return 0
    finally:
        for process in (ui, stack):
            if process is not None and process.poll() is None:
                process.terminate()
        for process in (ui, stack):
            if process is not None:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
