"""Start `python -m aws_extension local` as a real process and read its banner.

Shared by the local-stack and client integration tests (through the `launch` fixture of
conftest.py, which kills whatever it started). Every wait is bounded.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
LAST_BANNER_LINE = "Press Ctrl-C to stop."


@dataclass
class Stack:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def field(self, label: str) -> str | None:
        """The value of a labelled banner line such as `API URL:`, or None."""
        for line in self.lines:
            if line.startswith(label):
                return line[len(label) :].strip()
        return None

    @property
    def url(self) -> str:
        value = self.field("API URL:")
        assert value is not None
        return value

    @property
    def api_token(self) -> str:
        value = self.field("API token:")
        assert value is not None
        return value

    def read_until(self, wanted: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(line.strip() == wanted for line in self.lines):
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

    def stop(self, signum: int = signal.SIGINT) -> int:
        """Send `signum`, wait for the exit and collect the rest of the output."""
        self.process.send_signal(signum)
        code = self.process.wait(timeout=STOP_TIMEOUT)
        while (line := self._queue.get(timeout=STOP_TIMEOUT)) is not None:
            self.lines.append(line)
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)


def _pump(stream: object, lines: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)
    lines.put(None)


def start_stack(state_dir: Path, *, python: str = sys.executable) -> Stack:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [python, "-m", "aws_extension", "local", "--state-dir", str(state_dir), "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stack = Stack(process)
    threading.Thread(target=_pump, args=(process.stdout, stack._queue), daemon=True).start()
    try:
        stack.read_until(LAST_BANNER_LINE, START_TIMEOUT)
    except BaseException:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)
        raise
    return stack
