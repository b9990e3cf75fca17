"""How the deployment treats inference jobs: deadlines, limits, and how long URLs live.

A module of its own (not under `services/`) because `Config` holds it, and the services
package imports `Config`.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_extension.contract import LOCAL_INSTANCE_TYPE
from aws_extension.middleware.compute import EndpointSpec

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class InferencePolicy:
    #: Seconds a job on a local endpoint may take from its creation, queueing included; the
    #: first job of a fresh endpoint waits for the runtime to start (torch imports, model
    #: load), so this is generous.
    local_deadline: int = 30 * 60
    #: SageMaker async: how long a request may wait in the endpoint's queue (RequestTTLSeconds;
    #: covers a scale-out from zero instances, which takes minutes) ...
    async_request_ttl: int = 3600
    #: ... and how long one invocation may run (InvocationTimeoutSeconds, at most 3600).
    async_invocation_timeout: int = 15 * 60
    #: SageMaker real-time: the whole job, waiting for a worker included (InvokeEndpoint
    #: itself stops at 60 s on SageMaker's side).
    realtime_deadline: int = 10 * 60
    #: Added to the AWS deadlines: the notification of a job that ended right at its TTL
    #: still arrives in time.
    grace: int = 5 * 60
    #: Seconds the image download URLs in a reply stay usable; every reply signs fresh ones.
    image_url_ttl: int = 3600
    #: Largest A1111 payload accepted, as compact JSON: a txt2img body is a few KiB, and the
    #: record holding it must fit DynamoDB's 400 KB items.
    max_payload_bytes: int = 64 * KIB
    #: Most images one job may ask for (batch_size x n_iter): the reply carries them all
    #: base64-encoded in one JSON document that the middleware reads into memory.
    max_images: int = 32
    #: Largest image stored from a reply.
    max_image_bytes: int = 64 * MIB
    #: Seconds between two re-reads of a job's record during a long poll: completions in
    #: another process (an SNS notification handled by another Lambda) are seen this late
    #: at worst; those of this process wake the poll at once.
    poll_interval: float = 1.0
    #: Jobs that may wait for one local endpoint before new ones are refused.
    local_queue_size: int = 100

    def __post_init__(self) -> None:
        durations = (
            self.local_deadline,
            self.async_request_ttl,
            self.async_invocation_timeout,
            self.realtime_deadline,
            self.image_url_ttl,
        )
        if min(durations) < 1 or self.grace < 0:
            raise ValueError("inference deadlines and URL lifetimes must be positive")
        if not 1 <= self.async_invocation_timeout <= 3600:
            raise ValueError("SageMaker takes invocation timeouts of 1 to 3600 seconds")
        if not 60 <= self.async_request_ttl <= 6 * 3600:
            raise ValueError("SageMaker takes request TTLs of 60 seconds to 6 hours")
        if min(self.max_payload_bytes, self.max_images, self.max_image_bytes) < 1:
            raise ValueError("inference limits must be positive")
        if not 0 < self.poll_interval <= 5 or self.local_queue_size < 1:
            raise ValueError("the poll interval must be 0-5 s and the queue hold a job")

    def deadline_after(self, endpoint: EndpointSpec) -> int:
        """Seconds from a job's creation until nobody waits for its result any more."""
        if endpoint.instance_type == LOCAL_INSTANCE_TYPE:
            return self.local_deadline
        if endpoint.type == "async":
            return self.async_request_ttl + self.async_invocation_timeout + self.grace
        return self.realtime_deadline + self.grace
