"""Jobs on SageMaker endpoints: InvokeEndpointAsync for async endpoints, InvokeEndpoint from
a worker pool for real-time ones.

- async: the invocation body goes to S3 (`inferences/<id>/input.json` in the deployment's
  bucket) and InvokeEndpointAsync queues it with the job id as `InferenceId`, with the
  policy's RequestTTLSeconds and InvocationTimeoutSeconds. The result comes back later as
  an SNS notification (`events.py` -> `InferenceService.handle_async_result`), which names
  the job by that id; nothing here waits.
- real-time: InvokeEndpoint answers with the result, so it runs in a worker thread of this
  process (never on the request path), which reports to the sink. On Lambda, a worker
  lives only as long as the invocation that started it; the deadline fails a job whose
  worker was frozen with it.

boto3 clients are injected (the real-time one with a read timeout above SageMaker's 60 s
invocation limit). A refusal of SageMaker at submission is a domain error, so the request
that made the job gets it at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from aws_extension.middleware.compute.base import (
    JOB_ERROR_DEADLINE,
    JOB_ERROR_ENDPOINT,
    JobBackend,
    JobOutcome,
    JobSink,
    JobSubmission,
    job_input_key,
)
from aws_extension.middleware.compute.job_replies import json_or_none, reply_outcome, runtime_error
from aws_extension.middleware.errors import Conflict, DomainError, Unavailable
from aws_extension.middleware.inference_policy import InferencePolicy

logger = logging.getLogger(__name__)

JSON = "application/json"
#: SageMaker's words for "this endpoint cannot take it" (missing, not InService, bad input).
_REFUSALS = frozenset({"ValidationError", "ValidationException"})


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _refusal(endpoint: str, error: ClientError) -> DomainError:
    """What the caller is told; SageMaker's own message (it names the account) is logged."""
    code = _code(error)
    logger.warning("SageMaker refused a job for %s: %s", endpoint, error)
    if code in _REFUSALS:
        return Conflict(
            f"SageMaker refused the job for endpoint {endpoint!r} ({code}): it is missing or "
            "not in service."
        )
    return Unavailable(f"SageMaker did not take the job ({code or 'no answer'}); try again.")


def _outcome_of_error(error: ClientError) -> JobOutcome:
    """A failed InvokeEndpoint: the runtime's own error when SageMaker passes it on
    (`ModelError` carries the container's answer in `OriginalMessage`)."""
    response: dict[str, Any] = error.response
    original = response.get("OriginalMessage")
    if isinstance(original, str):
        outcome = runtime_error(json_or_none(original))
        if outcome is not None:
            return outcome
    logger.warning("InvokeEndpoint failed: %s", error)
    return JobOutcome(
        error_code=JOB_ERROR_ENDPOINT,
        error_detail=f"SageMaker could not run the job ({_code(error) or 'no answer'}).",
    )


class SageMakerJobs(JobBackend):
    def __init__(
        self,
        runtime_client: Any,
        s3_client: Any,
        bucket: str,
        policy: InferencePolicy,
        *,
        realtime_workers: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`runtime_client` is boto3's `sagemaker-runtime`; `bucket` holds the async inputs
        (and, configured by the endpoints, their outputs)."""
        self._runtime = runtime_client
        self._s3 = s3_client
        self._bucket = bucket
        self._policy = policy
        self._clock = clock
        self._pool = ThreadPoolExecutor(realtime_workers, thread_name_prefix="realtime-jobs")
        self._lock = threading.Lock()
        self._queued: set[str] = set()
        self._cancelled: set[str] = set()

    def submit(self, job: JobSubmission, sink: JobSink) -> None:
        endpoint = job.endpoint_refs.get("endpoint_name")
        if not isinstance(endpoint, str):
            raise Conflict(f"Endpoint {job.endpoint.name!r} has no SageMaker endpoint yet.")
        if job.endpoint.type == "async":
            self._submit_async(endpoint, job)
            return
        with self._lock:
            self._queued.add(job.job_id)
        try:
            self._pool.submit(self._run_realtime, endpoint, job, sink)
        except RuntimeError:
            raise Unavailable("The middleware is stopping; it takes no more jobs.") from None

    def cancel(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._queued:
                self._cancelled.add(job_id)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- async -----------------------------------------------------------------------------

    def _submit_async(self, endpoint: str, job: JobSubmission) -> None:
        key = job_input_key(job.job_id)
        body = json.dumps(job.body, separators=(",", ":")).encode()
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=JSON)
        try:
            self._runtime.invoke_endpoint_async(
                EndpointName=endpoint,
                InputLocation=f"s3://{self._bucket}/{key}",
                InferenceId=job.job_id,
                ContentType=JSON,
                Accept=JSON,
                RequestTTLSeconds=self._policy.async_request_ttl,
                InvocationTimeoutSeconds=self._policy.async_invocation_timeout,
            )
        except ClientError as error:
            self._s3.delete_object(Bucket=self._bucket, Key=key)
            raise _refusal(endpoint, error) from None

    # -- real-time -------------------------------------------------------------------------

    def _run_realtime(self, endpoint: str, job: JobSubmission, sink: JobSink) -> None:
        with self._lock:
            self._queued.discard(job.job_id)
            if job.job_id in self._cancelled:
                self._cancelled.discard(job.job_id)
                return
        try:
            if self._clock() >= job.deadline:
                detail = "No worker was free before the job's deadline."
                outcome = JobOutcome(error_code=JOB_ERROR_DEADLINE, error_detail=detail)
                sink.job_finished(job.job_id, outcome)
                return
            sink.job_started(job.job_id)
            sink.job_finished(job.job_id, self._invoke(endpoint, job))
        except Exception:
            # The sink failed (records unreachable, say); the deadline fails the job.
            logger.exception("Job %s could not be reported", job.job_id)

    def _invoke(self, endpoint: str, job: JobSubmission) -> JobOutcome:
        try:
            reply = self._runtime.invoke_endpoint(
                EndpointName=endpoint,
                Body=json.dumps(job.body, separators=(",", ":")).encode(),
                ContentType=JSON,
                Accept=JSON,
            )
            return reply_outcome(reply["Body"].read(), "The endpoint")
        except ClientError as error:
            return _outcome_of_error(error)
        except BotoCoreError as error:
            logger.warning("InvokeEndpoint of %s failed: %s", endpoint, error)
            return JobOutcome(
                error_code=JOB_ERROR_ENDPOINT,
                error_detail=f"SageMaker did not answer ({type(error).__name__}).",
            )
