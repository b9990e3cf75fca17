"""Inference jobs: txt2img requests sent to an endpoint, their results and their history.

Rules (docs/architecture.md, "Inference jobs"):

- Each user sees and manages only their own jobs; a holder of `user:all` (who may manage
  every user anyway) sees and manages everyone's. Another user's job is 404, never 403;
  asking for another user's list without `user:all` is 403.
- A job names its models by id; each must exist, be visible to the caller, be `Active` and
  of the type it is used as, or the request is 400 naming it. The endpoint is the named one
  (visible and in service) or the first usable one in a fixed order (the endpoint
  service's `pick`).
- The same `Idempotency-Key` with the same body from the same user is the same job; with
  another body it is 409.
- Every job has a deadline; a job past it is failed by the sweep or by whoever reads it
  first, so nothing stays queued or running forever.
- Results are kept only for jobs still open: images of a job cancelled or deleted while
  they were being stored are removed again.

The service is also the compute backends' `JobSink`: they report starts and ends here, and
the rules that store images and decide final statuses are written once. What an endpoint
answered is read and stored by `InferenceResults` (`inference_results.py`); the shapes
handed to the routers are in `inference_entities.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from aws_extension.contract import (
    CHECKPOINT_ACTIVE,
    INFERENCE_CANCELLED,
    INFERENCE_FAILED,
    INFERENCE_FINAL_STATUSES,
    INFERENCE_QUEUED,
    INFERENCE_RUNNING,
    INFERENCE_SUCCEEDED,
    PERMISSION_USER,
)
from aws_extension.middleware.blobs import Blobs
from aws_extension.middleware.compute import Compute, JobOutcome, JobSubmission
from aws_extension.middleware.compute.base import (
    JOB_ERROR_DEADLINE,
    JOB_ERROR_ENDPOINT,
    JOB_ERROR_ENDPOINT_UNAVAILABLE,
    JOB_ERROR_INTERRUPTED,
    JOB_ERROR_INVALID_REPLY,
    job_input_key,
)
from aws_extension.middleware.errors import Conflict, Invalid, NotFound, PermissionDenied, TooLarge
from aws_extension.middleware.inference_policy import InferencePolicy
from aws_extension.middleware.records import Doc, Records
from aws_extension.middleware.services.checkpoint_store import CHECKPOINT, new_id
from aws_extension.middleware.services.checkpoints import CheckpointService
from aws_extension.middleware.services.endpoints import EndpointService
from aws_extension.middleware.services.entities import Listing, Principal, timestamp
from aws_extension.middleware.services.inference_entities import (
    CHECKPOINT_TYPE,
    LORA_TYPE,
    VAE_TYPE,
    Inference,
    ModelChoice,
    inference_from,
)
from aws_extension.middleware.services.inference_results import (
    InferenceResults,
    ReplyProblem,
    s3_key,
)
from aws_extension.middleware.services.inference_store import (
    InferenceStore,
    Job,
    idempotency_key,
    jobs_of,
)
from aws_extension.middleware.services.job_waiter import JobWaiter

logger = logging.getLogger(__name__)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _body_sha256(task: str, endpoint: str | None, models: ModelChoice, payload: Any) -> str:
    """The request as canonical JSON, hashed: what "the same body" means for idempotency."""
    canonical = {
        "task": task,
        "endpoint": endpoint,
        "models": {
            "checkpoint": models.checkpoint,
            "vae": models.vae,
            "loras": [[lora.id, lora.weight] for lora in models.loras],
        },
        "payload": payload,
    }
    raw = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def _image_count(payload: dict[str, Any]) -> int:
    """batch_size x n_iter as A1111 reads them (1 each when absent)."""
    count = 1
    for name in ("batch_size", "n_iter"):
        value = payload.get(name, 1)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            count *= value
    return count


class InferenceService:
    def __init__(
        self,
        records: Records,
        blobs: Blobs,
        checkpoints: CheckpointService,
        endpoints: EndpointService,
        compute: Compute,
        policy: InferencePolicy,
        clock: Callable[[], float],
        *,
        waiter: JobWaiter | None = None,
    ) -> None:
        self._records = records
        self._blobs = blobs
        self._checkpoints = checkpoints
        self._endpoints = endpoints
        self._compute = compute
        self._policy = policy
        self._clock = clock
        self._store = InferenceStore(records, clock)
        self._results = InferenceResults(blobs, policy)
        self.waiter = waiter or JobWaiter()

    # -- creating --------------------------------------------------------------------------

    def create(
        self,
        caller: Principal,
        *,
        task: str,
        models: ModelChoice,
        payload: dict[str, Any],
        endpoint: str | None = None,
        idempotency: str | None = None,
    ) -> Inference:
        """Check the request, store the job `queued` and hand it to the endpoint's backend."""
        body_sha256 = _body_sha256(task, endpoint, models, payload)
        claim_key = idempotency_key(caller.username, idempotency) if idempotency else None
        if claim_key is not None:
            held = self._store.idempotent_job(claim_key)
            if held is not None:
                return self._repeat(caller, held, body_sha256)
        self._check_payload(payload)
        uses = self._resolve(caller, models)
        usable = self._endpoints.pick(
            caller, endpoint, queues_while_creating=self._compute.queues_while_creating
        )
        now = self._clock()
        job_id = new_id(self._clock)
        deadline = now + self._policy.deadline_after(usable.spec)
        if claim_key is not None:
            held = self._store.claim_idempotency(claim_key, job_id, body_sha256)
            if held is not None:
                return self._repeat(caller, held, body_sha256)
        doc = {
            "status": INFERENCE_QUEUED,
            "task": task,
            "endpoint": usable.name,
            "models": uses,
            "payload": payload,
            "created_by": caller.username,
            "created_at": timestamp(self._clock),
            "updated_at": timestamp(self._clock),
            "started_at": None,
            "finished_at": None,
            "deadline_at": datetime.fromtimestamp(deadline, tz=timezone.utc).isoformat(),
            "images": [],
            "info": None,
            "parameters": None,
            "timings": None,
            "error": None,
            "error_code": None,
            "idempotency_key": claim_key,
        }
        try:
            job = self._store.create(caller.username, job_id, doc)
        except BaseException:
            if claim_key is not None:
                self._store.release_idempotency(claim_key, job_id)
            raise
        submission = JobSubmission(
            job_id=job_id,
            endpoint=usable.spec,
            endpoint_refs=dict(usable.refs or {}),
            body=self._invocation(task, uses, payload, expires_in=int(deadline - now) + 60),
            deadline=deadline,
        )
        try:
            self._compute.jobs.submit(submission, self)
        except BaseException:
            # Refused outright (a full queue, SageMaker said no): no job was made.
            self._store.remove(job)
            raise
        return self._out(job)

    def _repeat(self, caller: Principal, held: Doc, body_sha256: str) -> Inference:
        if held["body_sha256"] != body_sha256:
            raise Conflict(
                "This Idempotency-Key was used for another request; use a new key for a new job."
            )
        return self.get(caller, held["id"])

    def _check_payload(self, payload: dict[str, Any]) -> None:
        size = len(json.dumps(payload, separators=(",", ":")).encode())
        if size > self._policy.max_payload_bytes:
            raise TooLarge(
                f"The payload has {size} bytes as JSON; this deployment takes at most "
                f"{self._policy.max_payload_bytes}."
            )
        count = _image_count(payload)
        if count > self._policy.max_images:
            raise Invalid(
                f"The payload asks for {count} images (batch_size x n_iter); one job makes at "
                f"most {self._policy.max_images}. Split it into several jobs."
            )

    def _resolve(self, caller: Principal, models: ModelChoice) -> Doc:
        """Each model as the job records it (id, name, sha256, object key); 400 for one the
        caller may not use."""
        ids = [lora.id for lora in models.loras]
        repeated = sorted({model_id for model_id in ids if ids.count(model_id) > 1})
        if repeated:
            raise Invalid(f"LoRA {', '.join(repeated)} is listed more than once.")
        return {
            CHECKPOINT_TYPE: self._model(caller, CHECKPOINT_TYPE, models.checkpoint),
            VAE_TYPE: self._model(caller, VAE_TYPE, models.vae) if models.vae else None,
            LORA_TYPE: [
                {**self._model(caller, LORA_TYPE, lora.id), "weight": lora.weight}
                for lora in models.loras
            ],
        }

    def _model(self, caller: Principal, model_type: str, model_id: str) -> Doc:
        try:
            checkpoint = self._checkpoints.get(caller, model_id)
        except NotFound:
            raise Invalid(f"No {model_type} model with id {model_id!r} that you may use.") from None
        if checkpoint.type != model_type:
            raise Invalid(
                f"Model {checkpoint.name!r} is a {checkpoint.type} model; it cannot be used as "
                f"the {model_type} model."
            )
        record = self._records.get(CHECKPOINT, model_id)
        if checkpoint.status != CHECKPOINT_ACTIVE or record is None:
            raise Invalid(
                f"Model {checkpoint.name!r} is {checkpoint.status}, not Active: only complete "
                "models can be used."
            )
        if checkpoint.sha256 is None:
            # Endpoints verify every download by its SHA-256 (an upload may omit it).
            raise Invalid(
                f"Model {checkpoint.name!r} has no SHA-256 recorded, so endpoints cannot "
                "verify it; upload it again with its sha256."
            )
        return {
            "id": model_id,
            "name": checkpoint.name,
            "sha256": checkpoint.sha256,
            "object_key": record.doc["object_key"],
        }

    def _invocation(
        self, task: str, uses: Doc, payload: dict[str, Any], *, expires_in: int
    ) -> dict[str, Any]:
        """The runtime's body: each model with a download URL valid past the deadline."""

        def entry(use: Doc) -> Doc:
            shown = {name: use[name] for name in ("id", "sha256", "name")}
            url = self._blobs.download_url(use["object_key"], expires_in=expires_in)
            return {**shown, "url": url}

        models: dict[str, Any] = {CHECKPOINT_TYPE: entry(uses[CHECKPOINT_TYPE])}
        if uses[VAE_TYPE] is not None:
            models[VAE_TYPE] = entry(uses[VAE_TYPE])
        if uses[LORA_TYPE]:
            models[LORA_TYPE] = [{**entry(use), "weight": use["weight"]} for use in uses[LORA_TYPE]]
        return {"task": task, "models": models, "payload": payload}

    # -- reading ---------------------------------------------------------------------------

    def get(self, caller: Principal, job_id: str) -> Inference:
        return self._out(self._current(self._visible(caller, job_id)))

    async def wait(self, caller: Principal, job_id: str, seconds: float) -> Inference:
        """The job as soon as its status changes (queued -> running, or to a final one),
        or as it is after `seconds` (wall time); a final job at once.

        A change of status, not only the end, answers the poll, so a client shows "running"
        while a long job runs, for one more request per job. Runs on the event loop and
        never blocks it: records are read in worker threads, a change in this process wakes
        the wait at once (`JobWaiter`), and the record is read again every `poll_interval`
        for changes made elsewhere.
        """
        loop = asyncio.get_running_loop()
        end = time.monotonic() + seconds
        with self.waiter.watching(job_id) as woken:
            job = await loop.run_in_executor(None, self.get, caller, job_id)
            first = job.status
            while job.status == first and job.status not in INFERENCE_FINAL_STATUSES:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    break
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(
                        woken.wait(), timeout=min(remaining, self._policy.poll_interval)
                    )
                woken.clear()
                job = await loop.run_in_executor(None, self.get, caller, job_id)
        return job

    def list(
        self,
        caller: Principal,
        *,
        user: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Listing[Inference]:
        """One user's jobs (the caller's own by default), newest first."""
        owner = user or caller.username
        if owner != caller.username and not caller.holds(PERMISSION_USER):
            raise PermissionDenied(
                f"Only holders of {PERMISSION_USER!r} may list another user's jobs."
            )
        page = self._records.list(jobs_of(owner), limit=limit, cursor=cursor, descending=True)
        jobs = [self._current(Job(owner, item)) for item in page.items]
        return Listing([self._out(job) for job in jobs], page.next_cursor)

    # -- managing --------------------------------------------------------------------------

    def cancel(self, caller: Principal, job_id: str) -> Inference:
        """Cancel a queued or running job; 409 once it is final."""
        job = self._current(self._visible(caller, job_id))
        cancelled = self._finish(job, INFERENCE_CANCELLED, drop=True)
        if cancelled is None:
            fresh = self._store.reread(job)
            if fresh is None:
                raise self._gone(job_id)
            raise Conflict(
                f"Job {job_id} is already {fresh.doc['status']}; it cannot be cancelled."
            )
        return self._out(cancelled)

    def delete(self, caller: Principal, job_id: str) -> None:
        """Delete the job and its images; a job still open is cancelled first."""
        job = self._visible(caller, job_id)
        if not job.final:
            job = (
                self._finish(job, INFERENCE_CANCELLED, drop=True) or self._store.reread(job) or job
            )
        removed = self._store.remove(job)
        self._results.drop_job(job_id, removed.doc)
        self.waiter.notify(job_id)

    # -- the JobSink -----------------------------------------------------------------------

    def job_started(self, job_id: str) -> None:
        job = self._store.find(job_id)
        if job is None:
            return
        started = self._store.change(
            job,
            lambda doc: doc["status"] == INFERENCE_QUEUED,
            status=INFERENCE_RUNNING,
            started_at=timestamp(self._clock),
        )
        if started is not None:
            self.waiter.notify(job_id)

    def job_finished(self, job_id: str, outcome: JobOutcome) -> None:
        """Store the result of a job still open; a late result of a job already final
        (cancelled, failed by its deadline) or deleted is dropped."""
        job = self._store.find(job_id)
        if job is None or job.final:
            logger.info("Dropped the result of job %s: it is deleted or already final", job_id)
            return
        if outcome.reply is None:
            self._finish(
                job,
                INFERENCE_FAILED,
                error=outcome.error_detail or "The endpoint reported a failure without a reason.",
                error_code=outcome.error_code or JOB_ERROR_ENDPOINT,
            )
            return
        try:
            images, info = self._results.store_images(job_id, outcome.reply)
        except ReplyProblem as problem:
            self._finish(
                job, INFERENCE_FAILED, error=str(problem), error_code=JOB_ERROR_INVALID_REPLY
            )
            return
        reply = outcome.reply
        parameters = reply.get("parameters")
        timings = reply.get("timings")
        done = self._finish(
            job,
            INFERENCE_SUCCEEDED,
            images=images,
            info=info,
            parameters=parameters if isinstance(parameters, dict) else None,
            timings=timings if isinstance(timings, dict) else None,
        )
        if done is None:
            # Cancelled or deleted while the images were stored.
            self._results.discard(images)

    def handle_async_result(self, message: dict[str, Any]) -> None:
        """A SageMaker async inference notification (the SNS message, parsed): read the
        output from S3 and finish the job, or fail it with the runtime's error."""
        job_id = message.get("inferenceId")
        status = message.get("invocationStatus")
        if not isinstance(job_id, str) or status not in ("Completed", "Failed"):
            logger.warning("Ignored an async inference notification without id or status")
            return
        response = message.get("responseParameters") or {}
        if status == "Completed":
            key = s3_key(response.get("outputLocation"))
            outcome = self._results.read_output(key)
        else:
            key = s3_key(response.get("failureLocation") or message.get("failureLocation"))
            outcome = self._results.read_failure(key, message.get("failureReason"))
        self.job_finished(job_id, outcome)
        # The output duplicates what is now stored (or reported); the input is no longer read.
        if key is not None:
            self._results.delete_quietly(key)
        self._results.delete_quietly(job_input_key(job_id))

    # -- housekeeping ----------------------------------------------------------------------

    def endpoint_deleted(self, name: str) -> int:
        """Fail the open jobs of a deleted endpoint; return how many."""
        failed = 0
        for entry in self._store.open_entries():
            if entry.doc.get("endpoint") != name:
                continue
            job = self._store.find(entry.key)
            if job is not None and self._fail(
                job,
                JOB_ERROR_ENDPOINT_UNAVAILABLE,
                f"The endpoint {name!r} was deleted before the job finished.",
            ):
                failed += 1
        return failed

    def sweep(self) -> int:
        """Fail the open jobs past their deadline (and drop open entries whose job is gone or
        final); return how many jobs were failed. The local stack runs this every minute; on
        AWS a scheduled invocation will."""
        now = self._clock()
        failed = 0
        for entry in self._store.open_entries():
            if now <= _epoch(entry.doc["deadline_at"]):
                continue
            job = self._store.find(entry.key)
            if job is None or job.final:
                self._store.close(entry.key)
            elif self._fail_overdue(job):
                failed += 1
        return failed

    def fail_leftovers(self) -> int:
        """Fail every job left open by a previous run of the local stack, whose workers
        died with it; call at start-up, before jobs are taken."""
        failed = 0
        for entry in self._store.open_entries():
            job = self._store.find(entry.key)
            if job is None or job.final:
                self._store.close(entry.key)
            elif self._fail(
                job,
                JOB_ERROR_INTERRUPTED,
                "The local stack stopped while the job ran; run it again.",
            ):
                failed += 1
        return failed

    # -- helpers ---------------------------------------------------------------------------

    def _visible(self, caller: Principal, job_id: str) -> Job:
        """The job if the caller owns it or holds `user:all`; else it does not exist."""
        job = self._store.find(job_id)
        if job is None or (job.owner != caller.username and not caller.holds(PERMISSION_USER)):
            raise self._gone(job_id)
        return job

    @staticmethod
    def _gone(job_id: str) -> NotFound:
        return NotFound(f"No inference job with id {job_id!r}.")

    def _current(self, job: Job) -> Job:
        """The job, failed first if it is past its deadline (reads enforce deadlines too)."""
        if self._fail_overdue(job):
            return self._store.reread(job) or job
        return job

    def _fail_overdue(self, job: Job) -> bool:
        """Fail the job if it is open past its deadline; True when this call failed it."""
        if job.final or self._clock() <= _epoch(job.doc["deadline_at"]):
            return False
        minutes = (_epoch(job.doc["deadline_at"]) - _epoch(job.doc["created_at"])) / 60
        detail = (
            f"No result arrived within {minutes:g} minutes, the job's deadline; the endpoint "
            f"{job.doc['endpoint']!r} may be overloaded or down. Try again."
        )
        return self._fail(job, JOB_ERROR_DEADLINE, detail)

    def _fail(self, job: Job, code: str, detail: str) -> bool:
        """Fail an open job that its backend did not end (deadline, endpoint gone, ...)."""
        failed = self._finish(job, INFERENCE_FAILED, drop=True, error=detail, error_code=code)
        return failed is not None

    def _finish(self, job: Job, status: str, *, drop: bool = False, **changes: Any) -> Job | None:
        """Move an open job to the final `status`; None when it was final or gone already.
        Waiters wake; with `drop`, the backend is told to forget the job (it did not end it)."""
        done = self._store.change(
            job,
            lambda doc: doc["status"] not in INFERENCE_FINAL_STATUSES,
            status=status,
            finished_at=timestamp(self._clock),
            **changes,
        )
        if done is None:
            return None
        if drop:
            self._compute.jobs.cancel(job.id)
        self.waiter.notify(job.id)
        return done

    def _out(self, job: Job) -> Inference:
        return inference_from(job, self._results.image_url)
