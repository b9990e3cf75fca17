"""What the SageMaker backend needs to know about its deployment (from the stack's outputs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SageMakerSettings:
    #: The endpoint image (deploy/endpoint), in ECR.
    image_uri: str
    #: The role SageMaker assumes for the endpoints: ECR pull, S3 read/write, SNS publish.
    execution_role_arn: str
    #: The deployment's bucket: models, async inputs, outputs and failures.
    bucket: str
    #: SNS topics of async results; they invoke the middleware, which completes the job.
    success_topic_arn: str
    error_topic_arn: str
    #: Where async invocations write replies (`<S3OutputPath>/<inference id>.out`) ...
    output_prefix: str = "async-inference/output"
    #: ... and errors.
    failure_prefix: str = "async-inference/failures"
    #: A model.tar.gz for the container, if the image wants one; the runtime fetches each
    #: job's models itself, so none is needed.
    model_data_url: str | None = None
    #: Extra container environment (ENDPOINT_CACHE_BUDGET_GB, WEBUI_ARGS, ...).
    environment: Mapping[str, str] = field(default_factory=dict)
    #: Seconds SageMaker waits for the container's first /ping 200 (A1111 boots slowly).
    startup_timeout: int = 1200
    #: Async autoscaling target: queued jobs per instance, per job it runs at once.
    backlog_per_instance: float = 2.0
    #: Real-time autoscaling target: invocations per instance and minute.
    invocations_per_instance: float = 6.0
    scale_in_cooldown: int = 600
    scale_out_cooldown: int = 120

    @property
    def output_path(self) -> str:
        return f"s3://{self.bucket}/{self.output_prefix}"

    @property
    def failure_path(self) -> str:
        return f"s3://{self.bucket}/{self.failure_prefix}"
