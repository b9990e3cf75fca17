"""An A1111 process the webui engine starts, watches and restarts.

In the container the runtime owns A1111: it starts `launch.py --api --nowebui` on a loopback
port and restarts it when it dies (with growing pauses, a bounded number of times). After the
last restart the process stays down and GET /ping answers 503, so SageMaker replaces the
instance instead of sending jobs into a dead engine.

A1111's output goes to the runtime's own stdout/stderr, which SageMaker ships to CloudWatch.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)


def a1111_command(
    webui_dir: Path, port: int, python: str | None = None, extra_args: Sequence[str] = ()
) -> list[str]:
    """The command that starts A1111 v1.x as an API server on 127.0.0.1:`port`.

    `--no-download-sd-model`: with no checkpoint in its folder, A1111 would otherwise fetch
    SD 1.5 at start; the runtime places each job's checkpoint itself.
    """
    interpreter = python or str(webui_dir / "venv" / "bin" / "python")
    if not Path(interpreter).exists():
        interpreter = sys.executable
    return [
        interpreter,
        "launch.py",
        "--api",
        "--nowebui",
        "--port",
        str(port),
        "--no-download-sd-model",
        "--skip-version-check",
        *extra_args,
    ]


class WebuiProcess:
    def __init__(
        self,
        command: Sequence[str],
        cwd: Path,
        *,
        max_restarts: int = 3,
        first_pause_s: float = 2.0,
    ) -> None:
        self.command = list(command)
        self.cwd = cwd
        self.max_restarts = max_restarts
        self.first_pause_s = first_pause_s
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="a1111-watch", daemon=True)
        self._watcher.start()

    def alive(self) -> bool:
        with self._lock:
            return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._process.pid if self._process else None

    def _spawn(self) -> None:
        with self._lock:
            logger.info("starting A1111: %s", " ".join(self.command))
            self._process = subprocess.Popen(  # noqa: S603 - our own command line
                self.command, cwd=self.cwd, start_new_session=True
            )

    def _watch(self) -> None:
        pause = self.first_pause_s
        while not self._stopping.is_set():
            process = self._process
            if process is None:
                return
            code = process.wait()
            if self._stopping.is_set():
                return
            if self.restarts >= self.max_restarts:
                logger.error(
                    "A1111 exited with %s; not restarting after %d restarts", code, self.restarts
                )
                return
            logger.warning("A1111 exited with %s; restarting in %.0f s", code, pause)
            if self._stopping.wait(pause):
                return
            self.restarts += 1
            pause *= 2
            self._spawn()

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop A1111 and everything it started (its process group)."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        deadline = time.monotonic() + grace_s
        if self._watcher is not None:
            self._watcher.join(max(0.0, deadline - time.monotonic()))
