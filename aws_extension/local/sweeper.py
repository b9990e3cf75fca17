"""The local stack's housekeeping: run each sweep at start-up and then periodically.

Two sweeps run: the models' (abandoned uploads, judged in hours: every 10 minutes) and the
inference jobs' (jobs past their deadline, judged in minutes: every minute). On AWS a
scheduled invocation calls the same sweeps (and an S3 lifecycle rule backs the first one
up); the local stack has no scheduler, so a daemon thread per sweep does it while the
server runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

#: Seconds between sweeps of models: abandoned uploads are judged in hours.
SWEEP_INTERVAL = 600.0
#: Seconds between sweeps of inference jobs: a job's deadline is half an hour locally, and
#: a read of an overdue job fails it at once anyway.
JOB_SWEEP_INTERVAL = 60.0


class PeriodicSweep:
    def __init__(self, sweep: Callable[[], object], interval_s: float = SWEEP_INTERVAL) -> None:
        self._sweep = sweep
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to end and wait for a sweep in progress (bounded)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            try:
                self._sweep()
            except Exception:
                # A failed sweep is retried next time; it must not end the housekeeping.
                logger.exception("A periodic sweep failed")
            if self._stop.wait(self._interval):
                return
