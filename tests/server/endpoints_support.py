"""What the endpoint tests share: SageMaker compute on moto's server, local compute in a
state folder, and a user with given roles."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from aws_extension.middleware.compute import Compute
from aws_extension.middleware.compute.local_endpoints import LocalComputeSettings, LocalEndpoints
from aws_extension.middleware.compute.local_jobs import LocalJobs
from aws_extension.middleware.compute.sagemaker_endpoints import SageMakerEndpoints
from aws_extension.middleware.compute.sagemaker_jobs import SageMakerJobs
from aws_extension.middleware.compute.sagemaker_settings import SageMakerSettings
from aws_extension.middleware.inference_policy import InferencePolicy
from tests.server.conftest import PASSWORD, Api

ACCOUNT = "123456789012"
SETTINGS = SageMakerSettings(
    image_uri=f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/sd-webui-sagemaker-endpoint:1",
    execution_role_arn=f"arn:aws:iam::{ACCOUNT}:role/sd-endpoint",
    bucket="sd-deployment",
    success_topic_arn=f"arn:aws:sns:us-east-1:{ACCOUNT}:sd-inference-success",
    error_topic_arn=f"arn:aws:sns:us-east-1:{ACCOUNT}:sd-inference-error",
    environment={"ENDPOINT_CACHE_BUDGET_GB": "40"},
)
#: An instance type both SageMaker and moto's (older) list of them know.
INSTANCE_TYPE = "ml.g4dn.xlarge"


def aws_client(service: str, endpoint: str) -> Any:
    """A boto3 client of moto's server: test credentials, no proxy, no retries."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=BotoConfig(proxies={}, retries={"max_attempts": 1}),
    )


def sagemaker_endpoints(endpoint: str) -> SageMakerEndpoints:
    return SageMakerEndpoints(
        aws_client("sagemaker", endpoint),
        aws_client("application-autoscaling", endpoint),
        aws_client("cloudwatch", endpoint),
        SETTINGS,
    )


def sagemaker_compute(endpoint: str) -> Compute:
    jobs = SageMakerJobs(
        aws_client("sagemaker-runtime", endpoint),
        aws_client("s3", endpoint),
        SETTINGS.bucket,
        InferencePolicy(),
    )
    return Compute(sagemaker_endpoints(endpoint), jobs)


def local_compute(
    state_dir: Path, *, clock: Callable[[], float] = time.time, **settings: Any
) -> Compute:
    """Local compute as the stack makes it; `clock` is the one job deadlines are on."""
    endpoints = LocalEndpoints(LocalComputeSettings(state_dir=state_dir, **settings))
    return Compute(endpoints, LocalJobs(endpoints, clock=clock), queues_while_creating=True)


def user_with(api: Api, admin: str, username: str, role: str, permissions: list[str]) -> str:
    """Create `role` (if needed) and `username` holding it; the user's access token."""
    if api.get(f"/roles/{role}", token=admin).status_code == 404:
        api.create_role(admin, role, permissions)
    api.create_user(admin, username, [role])
    return api.token(username, PASSWORD)
