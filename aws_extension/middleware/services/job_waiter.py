"""Wakes long polls the moment a job of this process ends.

A long poll (`GET /inferences/{id}?wait=N`) runs on the event loop and must not block it,
while jobs end in worker threads (the local backend) or in request threads (cancel, an SNS
notification). `watching(job_id)` hands the poll an `asyncio.Event` of its own loop;
`notify(job_id)`, callable from any thread, sets it through `call_soon_threadsafe`. The
notifier only speeds things up: the poll re-reads the record anyway, so a completion in
another process (another Lambda) is seen at the next re-read.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator


class JobWaiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    @contextlib.contextmanager
    def watching(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever `notify(job_id)` is called while the block runs; call it
        from a coroutine (it takes the running loop). Register before reading the record,
        so a completion between the read and the wait is not missed."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiting.setdefault(job_id, []).append(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                entries = self._waiting.get(job_id, [])
                if entry in entries:
                    entries.remove(entry)
                if not entries:
                    self._waiting.pop(job_id, None)

    def notify(self, job_id: str) -> None:
        """Wake every poll of `job_id` in this process; from any thread."""
        with self._lock:
            entries = list(self._waiting.get(job_id, ()))
        for loop, event in entries:
            # A loop that ended meanwhile has no poll left to wake.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def waiting(self, job_id: str) -> int:
        """How many polls of `job_id` wait right now (for tests and diagnostics)."""
        with self._lock:
            return len(self._waiting.get(job_id, ()))
