"""Local endpoints: the endpoint runtime as a child process of the local stack.

Each endpoint is `python -m aws_extension.endpoint serve --host 127.0.0.1 --port 0 ...`,
the very program of the SageMaker image, so a job takes the same path locally as in the
cloud. The runtime binds its port before it loads anything and prints
`Endpoint runtime (<engine>) on http://127.0.0.1:<port>`; a monitor thread per endpoint
reads that line, then asks GET /ping until it answers 200 (`InService`). The endpoint is
`Failed`, with the last lines the process printed, when the process exits, when its engine
reports that it could not start, or when it is not ready within `start_timeout`.

Files: `<state dir>/endpoints/<name>-<6 hex>/` holds the runtime's model cache (`cache/`)
and its process id (`runtime.pid`). The folder is the endpoint's `refs`, so the stack finds
it again after a restart (`resume`), and a runtime left over by a stack that was killed is
stopped before a new one starts on the same cache. Deleting the endpoint removes the folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_extension
from aws_extension.contract import (
    ENDPOINT_CREATING,
    ENDPOINT_FAILED,
    ENDPOINT_IN_SERVICE,
    LOCAL_INSTANCE_TYPE,
)
from aws_extension.middleware.compute.base import EndpointBackend, EndpointSpec, EndpointState
from aws_extension.middleware.errors import Invalid

logger = logging.getLogger(__name__)

ENDPOINTS_FOLDER = "endpoints"
PID_FILE = "runtime.pid"
#: What `python -m aws_extension.endpoint serve` prints once its socket is bound.
_BANNER = re.compile(r"^Endpoint runtime \((?P<engine>[^)]*)\) on (?P<url>http://\S+)\s*$")
#: Lines of the runtime's output kept for the failure reason.
_TAIL_LINES = 12
_STOP_TIMEOUT = 10.0
#: The runtime's own code: the package this stack runs from, whatever the working folder.
_PACKAGE_ROOT = str(Path(aws_extension.__file__).resolve().parents[1])
#: Pings go straight to 127.0.0.1, never through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class LocalComputeSettings:
    """How the local stack runs endpoint runtimes."""

    #: The stack's state folder; runtimes keep their model caches under `endpoints/`.
    state_dir: Path
    #: The interpreter of the runtimes: one with the engine's packages (torch for diffusers).
    python: str = sys.executable
    #: torch CPU threads of the diffusers engine; 1 keeps a small shared CPU responsive.
    cpu_threads: int = 1
    #: Seconds a runtime may take to answer /ping with 200 before it is failed.
    start_timeout: float = 900.0
    #: Seconds between pings while a runtime starts, and between liveness checks after.
    poll_interval: float = 0.25


@dataclass(eq=False)
class _Runtime:
    """One runtime process and what the monitor learned of it."""

    name: str
    folder: Path
    process: subprocess.Popen[str]
    url: str | None = None
    ready: bool = False
    failure: str | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=_TAIL_LINES))
    stopping: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None
    monitor: threading.Thread | None = None


def _tail_text(run: _Runtime) -> str:
    lines = [line for line in run.tail if line.strip()]
    return " | ".join(lines) if lines else "it printed nothing"


def _ping(url: str) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of GET /ping; (0, {}) when nothing answers yet."""
    try:
        with _OPENER.open(f"{url}/ping", timeout=2) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except OSError:
        return 0, {}
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    return status, body if isinstance(body, dict) else {}


def _stop_process(process: subprocess.Popen[str]) -> None:
    """SIGTERM (the runtime stops its engine and exits), then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_TIMEOUT)
    if process.stdin is not None:
        process.stdin.close()


def _stop_leftover(folder: Path) -> None:
    """Stop a runtime that a killed stack left running on this folder's cache.

    Only a process whose command line is a runtime serving this very cache is signalled, so
    a recycled process id never hits anything else. Needs /proc (Linux); elsewhere nothing
    is done.
    """
    pid_file = folder / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    cache = str(folder / "cache").encode()
    if b"aws_extension.endpoint" not in command or cache not in command:
        return
    logger.warning("Stopping runtime process %d left over by an earlier run", pid)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


class LocalEndpoints(EndpointBackend):
    instance_types = (LOCAL_INSTANCE_TYPE,)
    cheap_describe = True

    def __init__(self, settings: LocalComputeSettings) -> None:
        self.settings = settings
        self._runs: dict[str, _Runtime] = {}
        self._changed = threading.Condition()
        self._closed = False

    # -- EndpointBackend -------------------------------------------------------------------

    def create(self, spec: EndpointSpec) -> dict[str, Any]:
        self._check(spec)
        folder = self._root() / f"{spec.name}-{secrets.token_hex(3)}"
        refs = {"folder": folder.name}
        self._start(spec, folder)
        return refs

    def resume(self, spec: EndpointSpec, refs: dict[str, Any]) -> None:
        folder = self._root() / refs["folder"]
        _stop_leftover(folder)
        self._start(spec, folder)

    def describe(self, spec: EndpointSpec, refs: dict[str, Any]) -> EndpointState:
        with self._changed:
            run = self._runs.get(spec.name)
            if run is None:
                return EndpointState(ENDPOINT_FAILED, 0, 1, "Its runtime process is not running.")
            if run.failure is not None:
                return EndpointState(ENDPOINT_FAILED, 0, 1, run.failure)
            if run.ready:
                return EndpointState(ENDPOINT_IN_SERVICE, 1, 1)
            return EndpointState(ENDPOINT_CREATING, 0, 1)

    def delete(self, spec: EndpointSpec, refs: dict[str, Any]) -> None:
        with self._changed:
            run = self._runs.pop(spec.name, None)
            self._changed.notify_all()
        if run is not None:
            self._stop(run)
        shutil.rmtree(self._root() / refs["folder"], ignore_errors=True)

    def close(self) -> None:
        """Stop every runtime (all are signalled first, then each is waited for)."""
        with self._changed:
            self._closed = True
            runs = list(self._runs.values())
            self._runs.clear()
            self._changed.notify_all()
        for run in runs:
            run.stopping.set()
            if run.process.poll() is None:
                run.process.terminate()
        for run in runs:
            self._stop(run)

    # -- for the local job backend ---------------------------------------------------------

    def runtime_url(self, name: str) -> str | None:
        """The base URL of the endpoint's runtime once it answers /ping with 200."""
        with self._changed:
            run = self._runs.get(name)
            return run.url if run is not None and run.ready and run.failure is None else None

    def wait_ready(self, name: str, timeout: float) -> str | None:
        """Wait up to `timeout` seconds for the runtime to be ready and return its base URL;
        None when it failed, was deleted, or is still starting when the time is up."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                run = self._runs.get(name)
                if run is None or run.failure is not None:
                    return None
                if run.ready:
                    return run.url
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)

    # -- processes -------------------------------------------------------------------------

    def _root(self) -> Path:
        root = self.settings.state_dir / ENDPOINTS_FOLDER
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return root

    @staticmethod
    def _check(spec: EndpointSpec) -> None:
        if spec.initial_instance_count != 1 or spec.min_instances is not None:
            raise Invalid(
                "A local endpoint is one runtime process on this machine: use "
                "initial_instance_count 1 and no autoscaling."
            )
        if spec.webui_models_dir is not None and not Path(spec.webui_models_dir).is_dir():
            raise Invalid(f"webui_models_dir {spec.webui_models_dir!r} is not a folder here.")

    def _command(self, spec: EndpointSpec, cache: Path) -> list[str]:
        command = [
            self.settings.python, "-m", "aws_extension.endpoint", "serve",
            "--engine", spec.engine, "--host", "127.0.0.1", "--port", "0",
            "--model-cache", str(cache), "--cpu-threads", str(self.settings.cpu_threads),
            "--log-level", "WARNING", "--exit-with-stdin",
        ]  # fmt: skip
        if spec.webui_url is not None and spec.webui_models_dir is not None:
            command += ["--webui-url", spec.webui_url, "--webui-models-dir", spec.webui_models_dir]
        return command

    def _start(self, spec: EndpointSpec, folder: Path) -> None:
        cache = folder / "cache"
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        paths = [_PACKAGE_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}
        with self._changed:
            if self._closed:
                raise RuntimeError("the local endpoints are closed")
            old = self._runs.pop(spec.name, None)
        if old is not None:
            self._stop(old)
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            self._command(spec, cache),
            # Never written to: when this process ends, however it ends, the runtime reads
            # end-of-file and stops (--exit-with-stdin), so no runtime outlives its stack.
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=env,
        )
        (folder / PID_FILE).write_text(f"{process.pid}\n")
        run = _Runtime(spec.name, folder, process)
        run.reader = threading.Thread(
            target=self._read, args=(run,), name=f"endpoint-out-{spec.name}", daemon=True
        )
        run.monitor = threading.Thread(
            target=self._watch, args=(run,), name=f"endpoint-{spec.name}", daemon=True
        )
        with self._changed:
            self._runs[spec.name] = run
        run.reader.start()
        run.monitor.start()

    def _read(self, run: _Runtime) -> None:
        """Drain the runtime's output (a full pipe would stall it), remembering the tail
        and the URL of its banner."""
        assert run.process.stdout is not None
        for line in run.process.stdout:
            text = line.rstrip()
            run.tail.append(text)
            match = _BANNER.match(text)
            if match and run.url is None:
                with self._changed:
                    run.url = match["url"]
                    self._changed.notify_all()
            elif text:
                logger.debug("endpoint %s: %s", run.name, text)

    def _watch(self, run: _Runtime) -> None:
        """Ping until ready, then keep checking the process is alive."""
        interval = self.settings.poll_interval
        deadline = time.monotonic() + self.settings.start_timeout
        while not run.stopping.wait(interval):
            code = run.process.poll()
            if code is not None:
                if run.reader is not None:
                    run.reader.join(2)  # the last lines, which say why
                self._fail(run, f"Its runtime process exited with code {code}: {_tail_text(run)}")
                return
            if run.ready:
                continue
            if run.url is not None:
                status, body = _ping(run.url)
                if status == 200:
                    with self._changed:
                        run.ready = True
                        self._changed.notify_all()
                    continue
                if body.get("status") == "failed":
                    self._fail(run, f"Its engine could not start: {body.get('detail') or '?'}")
                    self._stop(run)
                    return
            if time.monotonic() > deadline:
                minutes = self.settings.start_timeout / 60
                self._fail(run, f"It was not ready within {minutes:g} min: {_tail_text(run)}")
                self._stop(run)
                return

    def _fail(self, run: _Runtime, reason: str) -> None:
        if run.stopping.is_set():
            return  # stopped on purpose: deleted or closed
        logger.warning("Local endpoint %s failed: %s", run.name, reason)
        with self._changed:
            run.failure = reason
            run.ready = False
            self._changed.notify_all()

    def _stop(self, run: _Runtime) -> None:
        run.stopping.set()
        _stop_process(run.process)
        if run.reader is not None:
            run.reader.join(_STOP_TIMEOUT)
        if run.monitor is not None and run.monitor is not threading.current_thread():
            run.monitor.join(_STOP_TIMEOUT)
        with contextlib.suppress(OSError):
            (run.folder / PID_FILE).unlink()
