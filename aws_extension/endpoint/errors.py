"""The runtime's errors: each carries the HTTP status and the machine-readable `code`.

The HTTP server turns them into `{"status", "detail", "code"}` bodies; the local compute
backend, which calls `Runtime.invoke` without HTTP, stores the same three fields on the
failed job. A client mistake (bad body, unknown sampler, wrong checksum, a model URL that
refuses us) is a 4xx; only the engine or the storage failing is a 5xx, so a caller knows
whether retrying the same job can help.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import ClassVar

from aws_extension.contract import (
    ERROR_INTERNAL,
    ERROR_INVALID,
    ERROR_NOT_FOUND,
    ERROR_TOO_LARGE,
    ERROR_UNAVAILABLE,
)

#: A model's download failed: its URL answered an error, or the network did.
ERROR_FETCH_FAILED = "fetch_failed"
#: A downloaded model's SHA-256 differs from the one the job names.
ERROR_CHECKSUM_MISMATCH = "checksum_mismatch"
#: The engine (diffusers, or the A1111 behind the webui engine) failed on a valid job.
ERROR_ENGINE = "engine_error"


class EndpointError(Exception):
    """An expected failure; `detail` is shown to the caller as is (never a secret or URL)."""

    status: ClassVar[int] = HTTPStatus.BAD_REQUEST
    code: ClassVar[str] = ERROR_INVALID

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def body(self) -> dict[str, object]:
        return {"status": int(self.status), "detail": self.detail, "code": self.code}


class InvalidRequest(EndpointError):
    """The body is malformed or asks for something this runtime cannot do."""


class NotFound(EndpointError):
    status = HTTPStatus.NOT_FOUND
    code = ERROR_NOT_FOUND


class MethodNotAllowed(EndpointError):
    status = HTTPStatus.METHOD_NOT_ALLOWED


class TooLarge(EndpointError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = ERROR_TOO_LARGE


class ChecksumMismatch(EndpointError):
    code = ERROR_CHECKSUM_MISMATCH


class FetchRefused(EndpointError):
    """The model URL answered 4xx (an expired or forged presigned URL): the job's fault."""

    code = ERROR_FETCH_FAILED


class FetchFailed(EndpointError):
    """Storage or the network failed (5xx, timeout): retrying the job may help."""

    status = HTTPStatus.BAD_GATEWAY
    code = ERROR_FETCH_FAILED


class NotReady(EndpointError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = ERROR_UNAVAILABLE


class EngineFailed(EndpointError):
    status = HTTPStatus.INTERNAL_SERVER_ERROR
    code = ERROR_ENGINE


class UpstreamEngineFailed(EngineFailed):
    """The A1111 behind the webui engine answered 5xx or not at all."""

    status = HTTPStatus.BAD_GATEWAY


class Internal(EndpointError):
    status = HTTPStatus.INTERNAL_SERVER_ERROR
    code = ERROR_INTERNAL
