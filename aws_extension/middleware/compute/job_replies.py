"""What an endpoint's runtime answers to a job, read into a `JobOutcome`.

The same answers come back over every path (a local runtime's HTTP reply, InvokeEndpoint's
body or `OriginalMessage`, an async job's output or failure object in S3), so each backend
reads them the same way: a reply must be a JSON object, and an error is the runtime's own
`{"status", "detail", "code"}` when it is one.
"""

from __future__ import annotations

import json
from typing import Any

from aws_extension.middleware.compute.base import (
    JOB_ERROR_ENDPOINT,
    JOB_ERROR_INVALID_REPLY,
    JobOutcome,
)


def json_or_none(raw: bytes | str) -> Any:
    """`raw` parsed, or None when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


def reply_outcome(raw: bytes, answerer: str) -> JobOutcome:
    """A successful answer: the reply when it is a JSON object. `answerer` names who
    answered in the error detail (the local runtime, or SageMaker's endpoint)."""
    reply = json_or_none(raw)
    if not isinstance(reply, dict):
        return JobOutcome(
            error_code=JOB_ERROR_INVALID_REPLY,
            error_detail=f"{answerer} answered something other than a JSON object.",
        )
    return JobOutcome(reply=reply)


def runtime_error(body: Any) -> JobOutcome | None:
    """The runtime's own error when `body` is one (a string `detail`), else None for the
    caller to describe the failure in its own words."""
    if not isinstance(body, dict) or not isinstance(body.get("detail"), str):
        return None
    code = body.get("code")
    return JobOutcome(
        error_code=code if isinstance(code, str) else JOB_ERROR_ENDPOINT,
        error_detail=body["detail"],
    )
