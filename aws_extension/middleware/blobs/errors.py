"""What a blob backend raises, as domain errors so `errors.py` maps them to HTTP in one place.

Both backends raise the same classes for the same mistakes (S3's error codes are translated in
`s3.py`), so the services and the client never learn which backend stored the bytes.
"""

from __future__ import annotations

from http import HTTPStatus

from aws_extension.contract import ERROR_INVALID_SIGNATURE, ERROR_URL_EXPIRED
from aws_extension.middleware.errors import DomainError, Invalid, NotFound, TooLarge


class InvalidKey(Invalid):
    """An object key that could escape the folder or that S3 would mangle (`..`, `\\`, NUL)."""


class InvalidPart(Invalid):
    """A completion the stored parts do not support.

    A part that is missing or whose ETag differs, part numbers out of range, not ascending or
    repeated, or a part other than the last smaller than the backend's minimum part size.
    The upload stays open, so the caller can upload the missing part and complete again.
    """


class UploadNotFound(NotFound):
    """No such multipart upload: never started, aborted, completed or swept."""


class BlobNotFound(NotFound):
    """No object under the key."""


class BlobTooLarge(TooLarge):
    """More bytes than allowed: a part over the part size limit or a stream over its limit."""


class SignatureInvalid(DomainError):
    """A signed URL whose signature does not match what it addresses, or a malformed one."""

    status = HTTPStatus.FORBIDDEN
    code = ERROR_INVALID_SIGNATURE


class UrlExpired(DomainError):
    """A correctly signed URL used after its expiry: the client should ask for a fresh one."""

    status = HTTPStatus.FORBIDDEN
    code = ERROR_URL_EXPIRED
