"""The compute interfaces: endpoints that exist somewhere, and jobs sent to them.

The services keep the records (what the user asked for, who may use it, the job's status);
a backend only does what needs the outside world. Both backends report a job's end through
the same `JobSink`, so the rules that store images and decide final statuses are written
once, in the inference service:

- the local backend (`local_endpoints.py`, `local_jobs.py`) runs the endpoint runtime as a
  process on 127.0.0.1 and POSTs each job to its `/invocations` from worker threads;
- the SageMaker backend (`sagemaker_endpoints.py`, `sagemaker_jobs.py`) creates models,
  endpoint configs and endpoints, and invokes them; results come back as SNS notifications
  (async) or from the worker that called InvokeEndpoint (real-time).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class EndpointSpec:
    """What POST /endpoints asked for, validated by the endpoint service."""

    name: str
    type: str  # contract.ENDPOINT_TYPES
    instance_type: str
    initial_instance_count: int
    engine: str  # contract.ENDPOINT_ENGINES
    #: Autoscaling bounds, or None for a fixed instance count.
    min_instances: int | None = None
    max_instances: int | None = None
    #: Jobs one instance runs at once (SageMaker's MaxConcurrentInvocationsPerInstance).
    concurrency_per_instance: int = 1
    #: Local `webui` engine only: an A1111 started with --api, and its models folder.
    webui_url: str | None = None
    webui_models_dir: str | None = None


@dataclass(frozen=True)
class EndpointState:
    """What the backend says of an endpoint now. `status` is one of contract.ENDPOINT_STATUSES."""

    status: str
    current_instance_count: int | None = None
    desired_instance_count: int | None = None
    failure_reason: str | None = None


class EndpointBackend(ABC):
    #: The instance types this backend offers, in the order the UI lists them.
    instance_types: tuple[str, ...]
    #: Whether `describe` is free (no API call): the service then re-reads InService
    #: endpoints on every read too, so a local runtime that died shows as Failed at once.
    #: SageMaker's InService endpoints are kept current by EventBridge events instead.
    cheap_describe: bool = False

    @abstractmethod
    def create(self, spec: EndpointSpec) -> dict[str, Any]:
        """Start creating the endpoint and return what the backend needs later (names of
        the SageMaker model and config, say); the service stores it as the record's `refs`.
        Raises domain errors (`Invalid`, `Conflict`, `Unavailable`) for refusals."""

    @abstractmethod
    def describe(self, spec: EndpointSpec, refs: dict[str, Any]) -> EndpointState:
        """The endpoint's state now; `Failed` with a reason when it is gone or broken."""

    @abstractmethod
    def delete(self, spec: EndpointSpec, refs: dict[str, Any]) -> None:
        """Remove the endpoint and everything `create` made; a no-op for what is gone."""

    def in_service(self, spec: EndpointSpec, refs: dict[str, Any]) -> None:  # noqa: B027
        """Called once when the endpoint first reaches InService (autoscaling setup)."""

    def resume(self, spec: EndpointSpec, refs: dict[str, Any]) -> None:  # noqa: B027
        """Called at start-up for every endpoint the records hold that should be running:
        the local backend starts its runtime process again; SageMaker's endpoints run on
        their own."""

    def close(self) -> None:  # noqa: B027
        """Stop what the backend runs in this process."""


def job_prefix(job_id: str) -> str:
    """Where a job's objects live in the blob store: its images, and its SageMaker input."""
    return f"inferences/{job_id}/"


def job_input_key(job_id: str) -> str:
    """The invocation body of an async SageMaker job, which SageMaker reads from S3."""
    return f"{job_prefix(job_id)}input.json"


@dataclass(frozen=True)
class JobSubmission:
    job_id: str
    endpoint: EndpointSpec
    endpoint_refs: dict[str, Any]
    #: The runtime's invocation body: `{"task", "models", "payload"}` with download URLs.
    body: dict[str, Any]
    #: Epoch seconds after which nobody waits for the result any more.
    deadline: float


#: `error_code`s of failed jobs beside the runtime's own (`invalid`, `fetch_failed`,
#: `checksum_mismatch`, `engine_error`, `unavailable`, `internal`; endpoint/errors.py):
#: no result before the job's deadline;
JOB_ERROR_DEADLINE = "deadline"
#: the endpoint cannot take jobs (it failed, was deleted, or never became ready);
JOB_ERROR_ENDPOINT_UNAVAILABLE = "endpoint_unavailable"
#: the endpoint was reached but its answer was no result (connection lost, a SageMaker
#: failure without the runtime's own error);
JOB_ERROR_ENDPOINT = "endpoint_error"
#: the endpoint answered something that is not a runtime reply (no images, not PNG ...);
JOB_ERROR_INVALID_REPLY = "invalid_reply"
#: the process running the job stopped (the local stack was stopped meanwhile).
JOB_ERROR_INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class JobOutcome:
    """A job's end as the runtime reported it: its reply, or its error."""

    #: The runtime's reply (A1111's TextToImageResponse + timings) when it succeeded.
    reply: dict[str, Any] | None = None
    #: The runtime's error `code` and `detail` when it failed.
    error_code: str | None = None
    error_detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class JobSink(Protocol):
    """Where backends report progress; the inference service implements it."""

    def job_started(self, job_id: str) -> None: ...

    def job_finished(self, job_id: str, outcome: JobOutcome) -> None: ...


class JobBackend(ABC):
    @abstractmethod
    def submit(self, job: JobSubmission, sink: JobSink) -> None:
        """Hand the job over without waiting for it; report through `sink` later.

        Raises domain errors when the endpoint refuses the job outright."""

    def cancel(self, job_id: str) -> None:  # noqa: B027
        """Best effort: drop a job not yet started. A result that arrives anyway is ignored
        by the service."""

    def close(self) -> None:  # noqa: B027
        """Stop the workers of this process."""


@dataclass(frozen=True)
class Compute:
    """One deployment's compute: its endpoints and how jobs reach them."""

    endpoints: EndpointBackend
    jobs: JobBackend
    #: Whether a job may be sent to an endpoint still `Creating` (the local backend queues
    #: it until the runtime is ready; SageMaker refuses invocations before InService).
    queues_while_creating: bool = False

    def close(self) -> None:
        self.jobs.close()
        self.endpoints.close()
