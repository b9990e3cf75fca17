"""One txt2img job from the WebUI side: submit it, follow it to the end, fetch its images.

Shared by the selectable script of A1111's txt2img tab and the tab's own txt2img panel, so
both behave alike:

- **Submit once.** Each submission gets its own `Idempotency-Key`, so the client may retry
  the POST after a lost answer and still makes one job.
- **Follow with long polls.** `GET /inferences/{id}?wait=N` (N up to
  `contract.MAX_WAIT_SECONDS`) answers as soon as the job ends, so a result shows up at once
  and a job of a minute costs a few requests, not one a second. The poll runs in a worker
  thread while the caller's thread reports progress every `TICK` seconds and checks its stop
  flag every `CHECK_EVERY` seconds: an interrupt cancels the job within a fraction of a
  second, and the server's cancellation ends the poll in flight at once.
- **Bounded.** A client-side `timeout` stops following (and cancels) even if the server's
  deadline sweep never ran; passing network trouble is waited out a few times, then reported
  with the job id, since the job goes on and stays in the history.
- **Never a credential in a message.** Image URLs are signed; `ApiClient.download_image`
  keeps them out of errors and logs.

Only the standard library and the client: this runs inside the WebUI.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from aws_extension import contract
from aws_extension.client import errors
from aws_extension.client.api import ApiClient

#: Longest the client follows one job by default. The server fails jobs at their deadline
#: (30 minutes on the local stack), so this is only a backstop.
DEFAULT_TIMEOUT = 3600.0
#: Seconds between progress reports while nothing changes (the elapsed time moves on).
TICK = 1.0
#: Seconds between two looks at the caller's stop flag.
CHECK_EVERY = 0.2
#: Failed polls in a row (after the client's own retries) before giving up on following.
MAX_POLL_FAILURES = 5
#: Errors after which a poll may well succeed again.
_PASSING = (
    errors.ConnectionFailed,
    errors.RequestTimeout,
    errors.ServerError,
    errors.TooManyAttempts,
)


class JobError(errors.ApiError):
    """A job did not give images: it failed, was cancelled, or could not be followed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        job_id: str | None = None,
    ):
        super().__init__(message, status=status, code=code)
        self.job_id = job_id


class JobFailed(JobError):
    """The server ended the job `failed`; the message is its error, `code` its error_code."""


class JobCancelled(JobError):
    """The job was cancelled (by this caller's stop, or elsewhere)."""


class JobTimedOut(JobError):
    """The client stopped following after its timeout and cancelled the job."""


@dataclass(frozen=True)
class LoraChoice:
    """A LoRA for a job: the cloud model's id and its weight (a prompt tag overrides it)."""

    id: str
    weight: float = 1.0


@dataclass(frozen=True)
class Txt2ImgJob:
    """What to run: the A1111 `/sdapi/v1/txt2img` body and the cloud models by id.

    `endpoint` None lets the server pick one the user may use (in service first).
    """

    payload: dict[str, Any]
    checkpoint_id: str
    vae_id: str | None = None
    loras: tuple[LoraChoice, ...] = ()
    endpoint: str | None = None

    def body(self) -> dict[str, Any]:
        """The `POST /inferences` body (contract v1)."""
        models: dict[str, Any] = {"Stable-diffusion": self.checkpoint_id}
        if self.vae_id:
            models["VAE"] = self.vae_id
        if self.loras:
            models["Lora"] = [{"id": lora.id, "weight": lora.weight} for lora in self.loras]
        body: dict[str, Any] = {"task": "txt2img", "models": models, "payload": self.payload}
        if self.endpoint:
            body["endpoint"] = self.endpoint
        return body


@dataclass(frozen=True)
class JobProgress:
    """Where a followed job stands: its status and the seconds since following began."""

    job_id: str
    status: str
    elapsed: float
    #: The latest record the server sent (endpoint, timestamps...).
    job: dict[str, Any]


@dataclass(frozen=True)
class JobResult:
    """A succeeded job with its images (PNG bytes) and, per image, infotext and seed."""

    job_id: str
    images: list[bytes]
    infotexts: list[str]
    seeds: list[int]
    #: A1111's info object (seed, all_seeds, all_prompts, infotexts...); {} when absent.
    info: dict[str, Any]
    #: The payload with the engine's defaults filled in; {} when absent.
    parameters: dict[str, Any]
    job: dict[str, Any]


ProgressCallback = Callable[[JobProgress], None]
StopFlag = Callable[[], bool]


def new_idempotency_key() -> str:
    """A key for one submission: random, so two submissions never share one."""
    return uuid.uuid4().hex


def submit(client: ApiClient, job: Txt2ImgJob, *, idempotency_key: str | None = None) -> dict:
    """Create the job; returns its record (`queued`)."""
    return client.create_inference(
        job.body(), idempotency_key=idempotency_key or new_idempotency_key()
    )


def run_txt2img(
    client: ApiClient,
    job: Txt2ImgJob,
    *,
    on_progress: ProgressCallback | None = None,
    should_stop: StopFlag | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
) -> JobResult:
    """Submit `job`, follow it and return its images; see `follow` for the callbacks.

    Raises `JobFailed`/`JobCancelled`/`JobTimedOut` for a job without images, and the
    client's errors (`NotAuthenticated`, `Conflict` with code `no_endpoint`...) as they are.
    """
    started = clock()
    record = submit(client, job)
    final = follow(
        client,
        _job_id(record),
        on_progress=on_progress,
        should_stop=should_stop,
        timeout=timeout,
        started=started,
        clock=clock,
        first=record,
    )
    return fetch_result(client, final)


def follow(
    client: ApiClient,
    job_id: str,
    *,
    on_progress: ProgressCallback | None = None,
    should_stop: StopFlag | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    started: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    first: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Long-poll the job until it is final; returns the final record.

    `on_progress` gets a `JobProgress` at each status change and every `TICK` seconds, in the
    caller's thread; if it raises, the job is cancelled and the exception goes on. When
    `should_stop()` turns true the job is cancelled and `JobCancelled` raised, unless the job
    had already finished, whose record is then returned. After `timeout` seconds (counted
    from `started`, a `clock()` reading) the job is cancelled and `JobTimedOut` raised.
    """
    watch = _Watch(job_id, on_progress, clock, clock() if started is None else started)
    deadline = watch.started + timeout
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sagemaker-job")
    try:
        if first is not None:
            watch.report(first)
        failures = 0
        while True:
            if should_stop is not None and should_stop():
                raise _Stop()
            remaining = deadline - clock()
            if remaining <= 0:
                _cancel_quietly(client, job_id)
                raise JobTimedOut(
                    f"Job {job_id} did not finish within {timeout:g} s, so it was cancelled.",
                    job_id=job_id,
                )
            wait = min(contract.MAX_WAIT_SECONDS, math.ceil(remaining))
            poll = pool.submit(client.get_inference, job_id, wait)
            try:
                record = _await(poll, watch, should_stop)
            except _PASSING as exc:
                failures += 1
                if failures >= MAX_POLL_FAILURES:
                    raise JobError(
                        f"Lost contact with the API while following job {job_id}: {exc} The "
                        "job goes on; its result will be in the history.",
                        status=exc.status,
                        code=exc.code,
                        job_id=job_id,
                    ) from None
                _pause(min(2.0**failures, 30.0), watch, should_stop)
                continue
            failures = 0
            watch.report(record)
            if record.get("status") in contract.INFERENCE_FINAL_STATUSES:
                return record
    except _Stop:
        return _stopped(client, job_id)
    except BaseException:
        if watch.callback_failed:
            _cancel_quietly(client, job_id)
        raise
    finally:
        # A poll still in flight ends by itself (at once after a cancellation); nobody waits.
        pool.shutdown(wait=False)


def fetch_result(client: ApiClient, job: dict[str, Any]) -> JobResult:
    """The images of a final job record; `JobFailed`/`JobCancelled` for one without.

    Download URLs live an hour: when one was refused (an old record), the job is read once
    more for fresh URLs.
    """
    job_id = _job_id(job)
    status = job.get("status")
    if status == contract.INFERENCE_FAILED:
        raise JobFailed(_failure_words(job), code=job.get("error_code"), job_id=job_id)
    if status == contract.INFERENCE_CANCELLED:
        raise JobCancelled(f"Job {job_id} was cancelled.", job_id=job_id)
    if status != contract.INFERENCE_SUCCEEDED:
        raise JobError(f"Job {job_id} is still {status}: it has no images yet.", job_id=job_id)
    entries = _image_entries(job)
    images: list[bytes] = []
    refreshed = False
    while len(images) < len(entries):
        try:
            images.append(client.download_image(entries[len(images)]["url"]))
        except errors.ApiError as exc:
            if exc.status != 403 or refreshed:
                raise
            refreshed = True
            job = client.get_inference(job_id)
            entries = _image_entries(job)
    info = job.get("info") if isinstance(job.get("info"), dict) else {}
    parameters = job.get("parameters") if isinstance(job.get("parameters"), dict) else {}
    return JobResult(
        job_id=job_id,
        images=images,
        infotexts=[_infotext(entry, info, i) for i, entry in enumerate(entries)],
        seeds=[_seed(entry, info, i) for i, entry in enumerate(entries)],
        info=info,
        parameters=parameters,
        job=job,
    )


class _Stop(Exception):
    """Inside `follow`: the caller's stop flag turned true."""


class _Watch:
    """Progress reports of one followed job, at most one per `TICK` unless the status moves."""

    def __init__(
        self,
        job_id: str,
        callback: ProgressCallback | None,
        clock: Callable[[], float],
        started: float,
    ):
        self.job_id = job_id
        self.started = started
        self.callback_failed = False
        self._callback = callback
        self._clock = clock
        self._job: dict[str, Any] = {"id": job_id, "status": contract.INFERENCE_QUEUED}
        self._status: str | None = None
        self._last = float("-inf")

    def report(self, job: dict[str, Any]) -> None:
        self._job = job
        self._send(force=job.get("status") != self._status)

    def tick(self) -> None:
        self._send(force=False)

    def _send(self, *, force: bool) -> None:
        now = self._clock()
        if self._callback is None or (not force and now - self._last < TICK):
            return
        status = str(self._job.get("status") or contract.INFERENCE_QUEUED)
        self._status, self._last = status, now
        progress = JobProgress(self.job_id, status, max(0.0, now - self.started), self._job)
        try:
            self._callback(progress)
        except BaseException:
            self.callback_failed = True
            raise


def _await(poll: Future[dict], watch: _Watch, should_stop: StopFlag | None) -> dict[str, Any]:
    """The poll's answer, reporting progress and watching the stop flag meanwhile."""
    while True:
        try:
            return poll.result(timeout=CHECK_EVERY)
        except FutureTimeout:
            if should_stop is not None and should_stop():
                raise _Stop() from None
            watch.tick()


def _pause(seconds: float, watch: _Watch, should_stop: StopFlag | None) -> None:
    """Wait before polling again, still reporting and watching the stop flag."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if should_stop is not None and should_stop():
            raise _Stop()
        watch.tick()
        time.sleep(min(CHECK_EVERY, max(0.0, end - time.monotonic())))


def _stopped(client: ApiClient, job_id: str) -> dict[str, Any]:
    """Cancel on the caller's request; a job that ended meanwhile keeps its outcome."""
    try:
        client.cancel_inference(job_id)
    except errors.Conflict:
        record = client.get_inference(job_id)
        if record.get("status") in contract.INFERENCE_FINAL_STATUSES:
            return record
    raise JobCancelled(f"Job {job_id} was cancelled.", job_id=job_id)


def _cancel_quietly(client: ApiClient, job_id: str) -> None:
    """Best effort: the job's own deadline ends it if this cannot."""
    with contextlib.suppress(errors.ApiError):
        client.cancel_inference(job_id)


def _job_id(job: dict[str, Any]) -> str:
    job_id = job.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise errors.IncompatibleServer(
            "The server answered a job without an id: is it the sd-webui-sagemaker API?"
        )
    return job_id


def _failure_words(job: dict[str, Any]) -> str:
    error = str(job.get("error") or "no reason was given").strip()
    if not error.endswith((".", "!", "?")):
        error += "."
    where = f" on endpoint {job['endpoint']}" if job.get("endpoint") else ""
    return f"Job {job.get('id')} failed{where}: {error}"


def _image_entries(job: dict[str, Any]) -> list[dict[str, Any]]:
    entries = job.get("images")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("url"), str) for e in entries
    ):
        raise errors.IncompatibleServer(
            f"The server answered job {job.get('id')} without a usable image list: is it "
            "the sd-webui-sagemaker API?"
        )
    return entries


def _infotext(entry: dict[str, Any], info: dict[str, Any], index: int) -> str:
    if isinstance(entry.get("infotext"), str):
        return entry["infotext"]
    infotexts = info.get("infotexts")
    if isinstance(infotexts, list) and index < len(infotexts):
        return str(infotexts[index])
    return ""


def _seed(entry: dict[str, Any], info: dict[str, Any], index: int) -> int:
    seed = entry.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    seeds = info.get("all_seeds")
    if isinstance(seeds, list) and index < len(seeds) and isinstance(seeds[index], int):
        return seeds[index]
    return -1
