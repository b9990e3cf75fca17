"""Local jobs: worker threads that POST each job to its endpoint's runtime process.

Each endpoint gets a bounded queue and `concurrency_per_instance` worker threads, made on
its first job. A worker takes a job, waits until the runtime answers /ping (a job sent
while the endpoint is `Creating` waits here), reports `job_started`, POSTs the body to
`<runtime>/invocations` on 127.0.0.1 and reports the reply or the runtime's error
(`{"status", "detail", "code"}`) through the sink. Every wait ends at the job's deadline.

A cancelled job still in the queue is skipped; one already sent runs to its end and the
service drops its result. Jobs still queued when the stack stops stay `queued` in the
records, and the next start fails them (`InferenceService.fail_leftovers`).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.client import HTTPException
from typing import Any

from aws_extension.middleware.compute.base import (
    JOB_ERROR_DEADLINE,
    JOB_ERROR_ENDPOINT,
    JOB_ERROR_ENDPOINT_UNAVAILABLE,
    JobBackend,
    JobOutcome,
    JobSink,
    JobSubmission,
)
from aws_extension.middleware.compute.job_replies import json_or_none, reply_outcome, runtime_error
from aws_extension.middleware.compute.local_endpoints import LocalEndpoints
from aws_extension.middleware.errors import Conflict, Unavailable

logger = logging.getLogger(__name__)

#: Requests go straight to 127.0.0.1, never through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
#: Seconds a worker waits for the stop signal between jobs.
_IDLE_CHECK = 1.0

_Entry = tuple[JobSubmission, JobSink]


def _error_outcome(status: int, raw: bytes) -> JobOutcome:
    """The runtime's error body, or words for an answer that is not one."""
    outcome = runtime_error(json_or_none(raw))
    if outcome is not None:
        return outcome
    return JobOutcome(
        error_code=JOB_ERROR_ENDPOINT,
        error_detail=f"The endpoint's runtime answered HTTP {status} without an error body.",
    )


class LocalJobs(JobBackend):
    def __init__(
        self,
        endpoints: LocalEndpoints,
        *,
        queue_size: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` is the one the services use: job deadlines are on it."""
        self._endpoints = endpoints
        self._queue_size = queue_size
        self._clock = clock
        self._lock = threading.Lock()
        self._queues: dict[str, queue.Queue[_Entry]] = {}
        self._workers: list[threading.Thread] = []
        #: Jobs in a queue, and those of them cancelled (skipped when their turn comes).
        self._queued: set[str] = set()
        self._cancelled: set[str] = set()
        self._closed = threading.Event()

    def submit(self, job: JobSubmission, sink: JobSink) -> None:
        if self._closed.is_set():
            raise Unavailable("The local stack is stopping; it takes no more jobs.")
        jobs = self._queue_of(job.endpoint.name, job.endpoint.concurrency_per_instance)
        with self._lock:
            try:
                jobs.put_nowait((job, sink))
            except queue.Full:
                raise Conflict(
                    f"Endpoint {job.endpoint.name!r} already has {self._queue_size} jobs "
                    "waiting; try again once some are done."
                ) from None
            self._queued.add(job.job_id)

    def cancel(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._queued:
                self._cancelled.add(job_id)

    def close(self) -> None:
        """Stop the workers: each finishes the job it runs (bounded by its deadline), the
        queued ones stay queued in the records for the next start to fail."""
        self._closed.set()
        for worker in self._workers:
            worker.join(timeout=_IDLE_CHECK * 2)

    # -- workers ---------------------------------------------------------------------------

    def _queue_of(self, name: str, workers: int) -> queue.Queue[_Entry]:
        with self._lock:
            jobs = self._queues.get(name)
            if jobs is None:
                jobs = queue.Queue(self._queue_size)
                self._queues[name] = jobs
                for index in range(max(1, workers)):
                    worker = threading.Thread(
                        target=self._work, args=(jobs,), name=f"jobs-{name}-{index}", daemon=True
                    )
                    self._workers.append(worker)
                    worker.start()
            return jobs

    def _work(self, jobs: queue.Queue[_Entry]) -> None:
        while not self._closed.is_set():
            try:
                job, sink = jobs.get(timeout=_IDLE_CHECK)
            except queue.Empty:
                continue
            with self._lock:
                self._queued.discard(job.job_id)
                if job.job_id in self._cancelled:
                    self._cancelled.discard(job.job_id)
                    continue
            try:
                self._run(job, sink)
            except Exception:
                # The sink failed (records unreachable, say); the deadline fails the job.
                logger.exception("Job %s could not be reported", job.job_id)

    def _run(self, job: JobSubmission, sink: JobSink) -> None:
        name = job.endpoint.name
        url = self._endpoints.wait_ready(name, timeout=max(0.0, job.deadline - self._clock()))
        if self._closed.is_set():
            return
        if url is None:
            sink.job_finished(job.job_id, self._not_ready(job))
            return
        sink.job_started(job.job_id)
        sink.job_finished(job.job_id, self._invoke(url, job))

    def _not_ready(self, job: JobSubmission) -> JobOutcome:
        if self._clock() >= job.deadline:
            return JobOutcome(
                error_code=JOB_ERROR_DEADLINE,
                error_detail=f"Endpoint {job.endpoint.name!r} was not ready before the job's "
                "deadline.",
            )
        state = self._endpoints.describe(job.endpoint, job.endpoint_refs)
        reason = f": {state.failure_reason}" if state.failure_reason else ""
        return JobOutcome(
            error_code=JOB_ERROR_ENDPOINT_UNAVAILABLE,
            error_detail=f"Endpoint {job.endpoint.name!r} cannot run jobs{reason}",
        )

    def _invoke(self, url: str, job: JobSubmission) -> JobOutcome:
        timeout = max(1.0, job.deadline - self._clock())
        # The URL is the runtime's own http://127.0.0.1 address, read from its banner.
        request = urllib.request.Request(  # noqa: S310
            f"{url}/invocations",
            data=json.dumps(job.body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                return reply_outcome(response.read(), "The endpoint's runtime")
        except urllib.error.HTTPError as error:
            with error:
                return _error_outcome(error.code, error.read())
        except TimeoutError:
            return JobOutcome(
                error_code=JOB_ERROR_DEADLINE,
                error_detail="The endpoint's runtime did not answer before the job's deadline.",
            )
        except (OSError, HTTPException) as error:
            if self._endpoints.runtime_url(job.endpoint.name) is None:
                # Its runtime stopped meanwhile: the endpoint failed or was deleted.
                return self._not_ready(job)
            return JobOutcome(
                error_code=JOB_ERROR_ENDPOINT,
                error_detail=f"The endpoint's runtime did not answer ({_reason(error)}).",
            )


def _reason(error: Any) -> str:
    """Words for a connection failure, without addresses."""
    reason = getattr(error, "reason", None) or error
    return type(reason).__name__
