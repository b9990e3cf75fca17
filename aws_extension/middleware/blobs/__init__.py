"""Where model files live: the `Blobs` interface and its two backends.

`S3Blobs` (`blobs.s3`) serves the AWS deployment, `FolderBlobs` (`blobs.folder`, with the
signed-URL routes of `blobs.folder_routes`) the embedded local stack; one contract test suite
(tests/server/test_blobs_contract.py) holds them to the same behaviour over real HTTP.
The backends live in their own modules so importing the interface needs neither botocore
nor FastAPI.
"""

from __future__ import annotations

from aws_extension.middleware.blobs.base import (
    MIN_PART_SIZE,
    BlobInfo,
    Blobs,
    PartInfo,
    Readable,
    validate_key,
)
from aws_extension.middleware.blobs.errors import (
    BlobNotFound,
    BlobTooLarge,
    InvalidKey,
    InvalidPart,
    SignatureInvalid,
    UploadNotFound,
    UrlExpired,
)

__all__ = [
    "MIN_PART_SIZE",
    "BlobInfo",
    "BlobNotFound",
    "BlobTooLarge",
    "Blobs",
    "InvalidKey",
    "InvalidPart",
    "PartInfo",
    "Readable",
    "SignatureInvalid",
    "UploadNotFound",
    "UrlExpired",
    "validate_key",
]
