"""The embedded local stack (`python -m aws_extension local`) as a real process.

The one launcher of every test folder: the server tests start it with their own interpreter,
the client and browser tests with the server environment's (`stack_python()`), since A1111's
pins cannot import the middleware. It picks a free port (`--port 0`), reads the banner it
prints and is always ended: `running_stack` stops it on exit, also when a test fails. Every
wait is bounded. Only the standard library, so both environments can import it.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
LAST_BANNER_LINE = "Press Ctrl-C to stop."
#: Names the server environment's interpreter for tests that run in the client environment.
STACK_PYTHON_ENV = "SAGEMAKER_STACK_PYTHON"
#: What `nox -s client` creates when `STACK_PYTHON_ENV` is not set.
NOX_STACK_PYTHON = ROOT / ".nox" / "stack" / "bin" / "python"


class StackUnavailable(RuntimeError):
    """No interpreter that can run the local stack; the message says how to get one."""


def stack_python() -> str:
    """The interpreter that runs the local stack for the client-environment tests."""
    python = os.environ.get(STACK_PYTHON_ENV)
    if python:
        return python
    if NOX_STACK_PYTHON.exists():
        return str(NOX_STACK_PYTHON)
    raise StackUnavailable(
        f"{STACK_PYTHON_ENV} is not set and {NOX_STACK_PYTHON} does not exist: these tests "
        "start the local stack with the server environment's interpreter. Run them with "
        "`python3 -m nox -s client`, or set "
        f"{STACK_PYTHON_ENV}=<a python with `pip install -e .[server]`>."
    )


@dataclass
class Stack:
    """A started stack and what it printed (`lines`, newlines kept; not in the repr, since
    the first start's banner holds the super admin's password)."""

    process: subprocess.Popen[str]
    #: The `--state-dir` it runs on (records, config, `blobs/`).
    state_dir: Path | None = None
    lines: list[str] = field(default_factory=list, repr=False)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue, repr=False)

    def field(self, label: str) -> str | None:
        """The value of a labelled banner line such as `API URL:`, or None."""
        for line in self.lines:
            if line.startswith(label):
                return line[len(label) :].strip()
        return None

    def _required(self, label: str) -> str:
        value = self.field(label)
        if value is None:
            raise AssertionError(f"the stack printed no {label!r} line")
        return value

    @property
    def url(self) -> str:
        return self._required("API URL:")

    @property
    def api_token(self) -> str:
        return self._required("API token:")

    @property
    def username(self) -> str:
        """The super admin's name; printed at the first start only."""
        return self._required("Username:")

    @property
    def password(self) -> str:
        """The super admin's password; printed at the first start only."""
        return self._required("Password:")

    def read_until(self, wanted: str, timeout: float) -> str:
        """Collect output until a line starts with `wanted`; return that line."""
        deadline = time.monotonic() + timeout
        while not (found := [line for line in self.lines if line.startswith(wanted)]):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the stack did not print {wanted!r} in {timeout} s")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError("the stack exited early:\n" + "".join(self.lines))
            self.lines.append(line)
        return found[0].strip()

    def stop(self, signum: int = signal.SIGINT) -> int:
        """Send `signum`, wait for the exit and collect the rest of the output."""
        self.process.send_signal(signum)
        code = self.process.wait(timeout=STOP_TIMEOUT)
        while (line := self._queue.get(timeout=STOP_TIMEOUT)) is not None:
            self.lines.append(line)
        return code

    def close(self) -> None:
        """End the process if it still runs: SIGTERM, then SIGKILL after `STOP_TIMEOUT`."""
        stop_process(self.process)

    @property
    def output(self) -> str:
        return "".join(self.lines)


def stop_process(process: subprocess.Popen) -> None:
    """Terminate `process` and wait for it, killing it when it does not stop in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def _pump(stream: object, lines: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)
    lines.put(None)


def start_stack(state_dir: Path, *options: str, python: str = sys.executable) -> Stack:
    """Start a stack on a free port of 127.0.0.1 and wait for its banner.

    `options` are more command-line options (`--allow-private-import`). The caller ends it
    (`stop`/`close`); `running_stack` does that for you.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    command = ["-m", "aws_extension", "local", "--state-dir", str(state_dir), "--port", "0"]
    process = subprocess.Popen(
        [python, *command, *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stack = Stack(process, state_dir)
    threading.Thread(target=_pump, args=(process.stdout, stack._queue), daemon=True).start()
    try:
        stack.read_until(LAST_BANNER_LINE, START_TIMEOUT)
    except BaseException:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)
        raise
    return stack


@contextmanager
def running_stack(state_dir: Path, *options: str, python: str = sys.executable) -> Iterator[Stack]:
    """A started stack that is ended on exit, whatever happened inside."""
    stack = start_stack(state_dir, *options, python=python)
    try:
        yield stack
    finally:
        stack.close()


@contextmanager
def refused_port() -> Iterator[int]:
    """A port of 127.0.0.1 that refuses connections for as long as the block runs.

    Bound but not listening, so nothing else can take it meanwhile: a connection to it is
    refused at once, like one to a server that is down.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
