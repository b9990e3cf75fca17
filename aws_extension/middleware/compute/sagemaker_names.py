"""SageMaker's names and words, without boto3: what the service needs to read its events.

- Resource names: SageMaker allows letters, digits and hyphens, at most 63 characters, and a
  deleted endpoint's name stays taken while it is `Deleting`. So the model, the endpoint
  config and the endpoint of our endpoint `x` are all named `<x, cleaned>-<6 hex>` (three
  namespaces, one string): deleting and deploying `x` again at once never collides.
- Statuses: DescribeEndpoint says `InService`, EventBridge events say `IN_SERVICE`; both
  fold to the contract's endpoint statuses here.
"""

from __future__ import annotations

import re

from aws_extension.contract import (
    ENDPOINT_CREATING,
    ENDPOINT_DELETING,
    ENDPOINT_FAILED,
    ENDPOINT_IN_SERVICE,
    ENDPOINT_UPDATING,
)

#: The one production variant of every endpoint.
VARIANT = "AllTraffic"
MAX_NAME_LENGTH = 63

#: SageMaker's statuses, upper-case words joined without underscores, to the contract's.
#: OutOfService is temporary (SageMaker repairs or replaces instances), so it is Updating:
#: no job is sent meanwhile, and the endpoint is not given up.
_STATUSES = {
    "CREATING": ENDPOINT_CREATING,
    "INSERVICE": ENDPOINT_IN_SERVICE,
    "UPDATING": ENDPOINT_UPDATING,
    "SYSTEMUPDATING": ENDPOINT_UPDATING,
    "ROLLINGBACK": ENDPOINT_UPDATING,
    "OUTOFSERVICE": ENDPOINT_UPDATING,
    "DELETING": ENDPOINT_DELETING,
    "FAILED": ENDPOINT_FAILED,
    "UPDATEROLLBACKFAILED": ENDPOINT_FAILED,
}


def endpoint_status(value: str) -> str | None:
    """The contract status of SageMaker's `InService` or `IN_SERVICE`; None if unknown."""
    return _STATUSES.get(value.replace("_", "").upper())


def resource_name(endpoint_name: str, suffix: str) -> str:
    """`<endpoint name with runs of other characters as one hyphen>-<suffix>`, cut to fit."""
    base = re.sub(r"[^A-Za-z0-9]+", "-", endpoint_name).strip("-") or "sd"
    base = base[: MAX_NAME_LENGTH - len(suffix) - 1].rstrip("-")
    return f"{base}-{suffix}"


def scaling_resource_id(sagemaker_endpoint: str) -> str:
    """Application Auto Scaling's id of the endpoint's variant."""
    return f"endpoint/{sagemaker_endpoint}/variant/{VARIANT}"
