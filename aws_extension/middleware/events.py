"""The middleware's entry for AWS events (no HTTP route): `handle_event(services, event)`.

On AWS the same Lambda that serves the API also receives events, and hands each to this
function:

- EventBridge "SageMaker Endpoint State Change" (`source` `aws.sagemaker`; `detail` with
  `EndpointName`, `EndpointStatus` such as `IN_SERVICE`/`FAILED`, `FailureReason` on
  failure, `ProductionVariants[].DesiredInstanceCount`, `LastModifiedTime`) -> the endpoint
  service keeps the endpoint's status current.
- SNS notifications (`Records[].EventSource` `aws:sns`) whose message is a SageMaker async
  inference result (`eventName` `InferenceResult`: `invocationStatus` `Completed` with
  `responseParameters.outputLocation`, or `Failed` with `failureReason`; `inferenceId` is
  the job's id) -> the inference service reads the output from S3 and finishes the job.

An event nobody handles is logged and ignored, never raised: EventBridge and SNS would
only deliver it again. A handler that fails on an event it knows does raise, so that the
delivery is retried.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aws_extension.middleware.services import Services

logger = logging.getLogger(__name__)

ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"
#: `eventName` of SageMaker's async inference notifications.
INFERENCE_RESULT = "InferenceResult"


def _is_endpoint_state_change(event: dict[str, Any]) -> bool:
    return (
        event.get("source") == "aws.sagemaker"
        and event.get("detail-type") == ENDPOINT_STATE_CHANGE
        and isinstance(event.get("detail"), dict)
    )


def _endpoint_state_change(services: Services, event: dict[str, Any]) -> None:
    if services.endpoints is None:
        logger.warning("An endpoint state change arrived, but this app has no compute")
        return
    services.endpoints.handle_state_change(event["detail"])


def _sns_records(event: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The `Sns` parts of an SNS event's records; None when the event is not one."""
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        return None
    if not all(isinstance(r, dict) and r.get("EventSource") == "aws:sns" for r in records):
        return None
    return [record.get("Sns") or {} for record in records]


def _inference_result(services: Services, notification: dict[str, Any]) -> None:
    raw = notification.get("Message")
    try:
        message = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        message = None
    if not isinstance(message, dict) or message.get("eventName") != INFERENCE_RESULT:
        logger.info(
            "Ignored an SNS message that is no inference result (topic %r)",
            notification.get("TopicArn"),
        )
        return
    if services.inferences is None:
        logger.warning("An inference result arrived, but this app runs no inference jobs")
        return
    services.inferences.handle_async_result(message)


def handle_event(services: Services, event: dict[str, Any]) -> None:
    """Dispatch one Lambda event to the service it concerns."""
    if not isinstance(event, dict):
        logger.warning("Ignored an event that is not a JSON object")
        return
    if _is_endpoint_state_change(event):
        _endpoint_state_change(services, event)
        return
    notifications = _sns_records(event)
    if notifications is not None:
        for notification in notifications:
            _inference_result(services, notification)
        return
    logger.info(
        "Ignored an event nobody handles (source %r, detail-type %r)",
        event.get("source"),
        event.get("detail-type"),
    )
