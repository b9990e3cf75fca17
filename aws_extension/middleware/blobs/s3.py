"""`Blobs` on one S3 bucket, for the AWS deployment.

The boto3 client is injected (nothing connects at import time; tests hand in one aimed at
moto). Give it Signature Version 4 (`Config(signature_version="s3v4")`): presigned URLs for
regions opened after 2014 and for KMS-encrypted buckets need it.

S3 itself checks each part's ETag when completing, but it does not check part order or
repeats everywhere and reports them under several codes, so the completion is first checked
against `list_parts` with the same rules as the folder backend; S3's own codes are still
translated for what changes in between.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from botocore.exceptions import ClientError

from aws_extension.middleware.blobs.base import (
    MAX_PART_NUMBER,
    MIB,
    MIN_PART_SIZE,
    BlobInfo,
    Blobs,
    PartInfo,
    Readable,
    check_completion,
    check_part_number,
    quote_etag,
    validate_key,
)
from aws_extension.middleware.blobs.errors import (
    BlobNotFound,
    BlobTooLarge,
    InvalidPart,
    UploadNotFound,
)

#: Smallest part `put_stream` sends; larger when the size limit needs more than 10,000 parts.
STREAM_PART_SIZE = 8 * MIB

_PART_ERRORS = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML"}
_MISSING_OBJECT = {"404", "NoSuchKey", "NotFound"}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _raise_translated(error: ClientError, key: str, upload_id: str | None = None) -> NoReturn:
    """Re-raise an S3 error as the domain error it means; unknown codes stay ClientError."""
    code = _code(error)
    message = error.response.get("Error", {}).get("Message", code)
    if code == "NoSuchUpload":
        raise UploadNotFound(f"No upload {upload_id!r} of {key!r}.") from error
    if code in _PART_ERRORS:
        raise InvalidPart(f"S3 refused the parts: {message}") from error
    if code in _MISSING_OBJECT:
        raise BlobNotFound(f"No object {key!r}.") from error
    raise error


def _read_up_to(stream: Readable, size: int) -> bytes:
    """Read exactly `size` bytes unless the stream ends first (sockets return less)."""
    chunks = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class S3Blobs(Blobs):
    min_part_size = MIN_PART_SIZE

    def __init__(self, client: Any, bucket: str, *, clock: Callable[[], float] = time.time) -> None:
        """`client` is a boto3 S3 client; `clock` dates uploads for `sweep_abandoned`."""
        self._client = client
        self._bucket = bucket
        self._clock = clock

    def create_multipart(
        self,
        key: str,
        *,
        content_type: str = "application/octet-stream",
        part_size: int | None = None,
    ) -> str:
        # S3 keeps the parts apart and joins them itself: the part size hint is not needed.
        reply = self._client.create_multipart_upload(
            Bucket=self._bucket, Key=validate_key(key), ContentType=content_type
        )
        return str(reply["UploadId"])

    def part_url(self, key: str, upload_id: str, part_number: int, *, expires_in: int) -> str:
        params = {
            "Bucket": self._bucket,
            "Key": validate_key(key),
            "UploadId": upload_id,
            "PartNumber": check_part_number(part_number),
        }
        return str(
            self._client.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires_in)
        )

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        pages = self._client.get_paginator("list_parts").paginate(
            Bucket=self._bucket, Key=validate_key(key), UploadId=upload_id
        )
        try:
            return [
                PartInfo(part["PartNumber"], quote_etag(part["ETag"]), part["Size"])
                for page in pages
                for part in page.get("Parts", [])
            ]
        except ClientError as error:
            _raise_translated(error, key, upload_id)

    def complete_multipart(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> int:
        # Also turns a repeated completion into UploadNotFound, where S3 would answer 200.
        stored = {part.part_number: part for part in self.list_parts(key, upload_id)}
        total = check_completion(parts, stored, min_part_size=self.min_part_size)
        try:
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [
                        {"PartNumber": number, "ETag": quote_etag(etag)} for number, etag in parts
                    ]
                },
            )
        except ClientError as error:
            _raise_translated(error, key, upload_id)
        return total

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self._abort(validate_key(key), upload_id)

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except ClientError as error:
            if _code(error) != "NoSuchUpload":
                raise

    def sweep_abandoned(self, older_than_s: float) -> int:
        cutoff = self._clock() - older_than_s
        swept = 0
        for page in self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self._bucket
        ):
            for upload in page.get("Uploads", []):
                if upload["Initiated"].timestamp() < cutoff:
                    # Not `abort_multipart`: keys another tool put in the bucket need not
                    # pass `validate_key`, and their uploads are abandoned all the same.
                    self._abort(upload["Key"], upload["UploadId"])
                    swept += 1
        return swept

    def head(self, key: str) -> BlobInfo | None:
        try:
            reply = self._client.head_object(Bucket=self._bucket, Key=validate_key(key))
        except ClientError as error:
            if _code(error) in _MISSING_OBJECT:
                return None
            raise
        return BlobInfo(int(reply["ContentLength"]))

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self._bucket, Key=validate_key(key))

    def download_url(self, key: str, *, expires_in: int) -> str:
        params = {"Bucket": self._bucket, "Key": validate_key(key)}
        return str(
            self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        )

    def open_read(self, key: str) -> Readable:
        try:
            reply = self._client.get_object(Bucket=self._bucket, Key=validate_key(key))
        except ClientError as error:
            _raise_translated(error, key)
        body: Readable = reply["Body"]
        return body

    def put_stream(self, key: str, stream: Readable, *, size_limit: int) -> int:
        """One PUT for a stream shorter than a part, else a multipart upload it aborts on error.

        The part size grows with `size_limit` so that any stream within it fits in S3's
        10,000 parts; memory use is one part.
        """
        validate_key(key)
        part_size = max(STREAM_PART_SIZE, math.ceil(size_limit / MAX_PART_NUMBER))
        data = _read_up_to(stream, part_size)
        if len(data) < part_size:
            if len(data) > size_limit:
                raise BlobTooLarge(f"The stream is larger than {size_limit} bytes.")
            self._client.put_object(Bucket=self._bucket, Key=key, Body=data)
            return len(data)
        upload_id = self.create_multipart(key)
        total = 0
        parts = []
        try:
            while data:
                total += len(data)
                if total > size_limit:
                    raise BlobTooLarge(f"The stream is larger than {size_limit} bytes.")
                number = len(parts) + 1
                reply = self._client.upload_part(
                    Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
                )
                parts.append((number, str(reply["ETag"])))
                data = _read_up_to(stream, part_size)
            self.complete_multipart(key, upload_id, parts)
        except BaseException:
            self.abort_multipart(key, upload_id)
            raise
        return total
