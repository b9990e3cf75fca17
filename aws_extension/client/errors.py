"""The client's error taxonomy: one exception class per thing a user can act on.

The tab shows `str(error)` to the user as is, so every message is a full sentence that says
what is wrong and what to do about it. The UI branches on the class (for example
`NotAuthenticated` -> show the sign-in form again) rather than on words or status numbers.

Messages never contain the API token, a password or a bearer/refresh token: the client
builds them from the server's `detail` and its own words, and scrubs any secret it knows of
(see `ApiError.redacted`) before raising, in case a server or a user's paste echoed one.
"""

from __future__ import annotations

from collections.abc import Iterable

#: What replaces a secret found in a message.
REDACTED = "***"


class ApiError(Exception):
    """Any failure to get a usable answer from the sd-webui-sagemaker API.

    `status` is the HTTP status when the server answered (None for network failures) and
    `code` the machine-readable `code` member of the server's problem details, if any.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, "
            f"code={self.code!r})"
        )

    def redacted(self, secrets: Iterable[str | None]) -> ApiError:
        """Replace every known secret in the message, in place, and return the error.

        Done on the final message rather than trusted to each call site, because the words
        come partly from outside (the server's detail, a URL the user pasted).
        """
        message = self.message
        # Longest first, so a secret that contains another is replaced whole.
        for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
            message = message.replace(secret, REDACTED)
        self.message = message
        self.args = (message,)
        return self


class InvalidUrl(ApiError):
    """The API URL cannot be used as typed (no http/https scheme, no host, spaces...)."""


class ConnectionFailed(ApiError):
    """Nothing answered at the API URL's host and port (DNS, refused, unreachable)."""


class TlsFailed(ApiError):
    """The secure connection failed: mostly a certificate that could not be verified."""


class RequestTimeout(ApiError):
    """The server accepted the connection but did not answer in time."""


class InvalidApiToken(ApiError):
    """The API token (the `x-api-key`) was refused: 403 `invalid_api_key`."""


class NotAuthenticated(ApiError):
    """Not signed in, or the session expired or was revoked (401): sign in again."""


class WrongCredentials(NotAuthenticated):
    """Sign-in refused: wrong username or password (401 `wrong_credentials`)."""


class PermissionDenied(ApiError):
    """Signed in, but the user's roles lack the permission the call needs (403)."""


class NotFound(ApiError):
    """The named role, user or other resource does not exist (404)."""


class Conflict(ApiError):
    """The change clashes with the current state, e.g. the name exists already (409)."""


class DuplicateContent(Conflict):
    """The model's content is in the cloud already (409 `duplicate_content`).

    `existing_id` names the model that holds it, so an uploader can skip the file.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 409,
        code: str | None = None,
        existing_id: str | None = None,
    ):
        super().__init__(message, status=status, code=code)
        self.existing_id = existing_id

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, existing_id={self.existing_id!r})"


class InvalidRequest(ApiError):
    """The server rejected what was sent (400/422); the message is the server's detail."""


class TooManyAttempts(ApiError):
    """Rate limited (429); `retry_after` is how many seconds to wait, when the server said."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        code: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, retry_after={self.retry_after!r})"


class ServerError(ApiError):
    """The server (or the gateway in front of it) failed: 5xx. Not the user's fault."""


class IncompatibleServer(ApiError):
    """The URL answers, but not as this API, or with another major API version."""


__all__ = [
    "ApiError",
    "Conflict",
    "ConnectionFailed",
    "DuplicateContent",
    "IncompatibleServer",
    "InvalidApiToken",
    "InvalidRequest",
    "InvalidUrl",
    "NotAuthenticated",
    "NotFound",
    "PermissionDenied",
    "RequestTimeout",
    "ServerError",
    "TlsFailed",
    "TooManyAttempts",
    "WrongCredentials",
]
