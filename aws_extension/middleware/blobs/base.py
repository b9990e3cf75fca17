"""The `Blobs` interface: S3's multipart-upload model, which the folder backend imitates.

Model files are gigabytes, so bytes never pass through the middleware on upload: the client
PUTs each part straight to a signed URL (S3 presigned, or the local server's HMAC-signed
`/blobs/...` routes) and hands the ETags it got back to `complete_multipart`. The rules that
decide whether a completion is valid live here, in `check_completion`, so both backends
reject the same mistakes with the same words.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from aws_extension.middleware.blobs.errors import InvalidKey, InvalidPart

MIB = 1024 * 1024
#: S3's smallest part other than the last (EntityTooSmall below it).
MIN_PART_SIZE = 5 * MIB
#: S3's largest part.
MAX_PART_SIZE = 5 * 1024 * MIB
#: S3 numbers parts 1 to 10,000.
MAX_PART_NUMBER = 10_000
#: S3's longest key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class PartInfo:
    """One stored part; `etag` is quoted, as S3 and the part URLs return it."""

    part_number: int
    etag: str
    size: int


@dataclass(frozen=True)
class BlobInfo:
    size: int


class Readable(Protocol):
    """The least a byte stream offers: files, botocore's StreamingBody, HTTP response bodies."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative path of `/`-separated names, else raise.

    The folder backend turns keys into paths, so anything that could climb out of its folder
    or mean something else on another OS (`..`, `.`, empty names, a leading `/`, `\\`, NUL
    and other control characters) is refused; S3 gets the same rule so the backends agree.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey("The object key must be a non-empty string.")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidKey(f"The object key is longer than {MAX_KEY_BYTES} bytes.")
    if "\\" in key or _CONTROL_CHARACTERS.search(key):
        raise InvalidKey("The object key must not contain backslashes or control characters.")
    if any(name in ("", ".", "..") for name in key.split("/")):
        raise InvalidKey(
            "The object key must be a relative path of names separated by single '/', "
            "without '.' or '..'."
        )
    return key


def check_part_number(part_number: int) -> int:
    if (
        isinstance(part_number, bool)
        or not isinstance(part_number, int)
        or not 1 <= part_number <= MAX_PART_NUMBER
    ):
        raise InvalidPart(f"Part numbers run from 1 to {MAX_PART_NUMBER}, not {part_number!r}.")
    return part_number


def quote_etag(etag: str) -> str:
    """The quoted lower-case form of an MD5 ETag given with or without quotes."""
    return f'"{etag.strip().strip(chr(34)).lower()}"'


def check_completion(
    parts: Sequence[tuple[int, str]], stored: Mapping[int, PartInfo], *, min_part_size: int
) -> int:
    """Validate a completion request against the stored parts; return the object's size.

    Mirrors S3: part numbers strictly ascending (InvalidPartOrder), every named part stored
    with exactly that ETag (InvalidPart), every part but the last at least `min_part_size`
    (EntityTooSmall). Stored parts the list leaves out are dropped by the completion.
    """
    if not parts:
        raise InvalidPart("Name at least one part to complete the upload.")
    previous = 0
    total = 0
    for index, (number, etag) in enumerate(parts):
        check_part_number(number)
        if number <= previous:
            raise InvalidPart(
                f"Part numbers must be listed in ascending order without repeats; "
                f"part {number} follows part {previous}."
            )
        previous = number
        part = stored.get(number)
        if part is None:
            raise InvalidPart(f"Part {number} has not been uploaded.")
        if quote_etag(etag) != part.etag:
            raise InvalidPart(f"Part {number} has ETag {part.etag}, not {quote_etag(etag)}.")
        if index < len(parts) - 1 and part.size < min_part_size:
            raise InvalidPart(
                f"Part {number} has {part.size} bytes; every part but the last needs at "
                f"least {min_part_size}."
            )
        total += part.size
    return total


class Blobs(ABC):
    """Objects under `/`-separated keys, written by multipart upload or by the server itself.

    Each method validates its key with `validate_key`. URLs are bearer credentials: whoever
    holds one may use it until it expires, so hand them only to the caller that asked.
    """

    #: Smallest size of a part other than the last; the services size their parts from it.
    min_part_size: int

    @abstractmethod
    def create_multipart(
        self,
        key: str,
        *,
        content_type: str = "application/octet-stream",
        part_size: int | None = None,
    ) -> str:
        """Start a multipart upload of `key` and return its upload id.

        `part_size` is a hint, not a rule: the size the caller means to give every part but
        the last. A backend that stores the parts itself may lay them out in place with it, so
        completing needs no copy; parts of other sizes are still accepted.
        """

    @abstractmethod
    def part_url(self, key: str, upload_id: str, part_number: int, *, expires_in: int) -> str:
        """A URL that takes one PUT of part `part_number`'s bytes for `expires_in` seconds.

        It answers 200 with an `ETag` header, the quoted MD5 hex of the bytes, which the
        client passes to `complete_multipart`. A second PUT of the same number replaces the
        part. Signing is offline: the upload is only checked when the URL is used.
        """

    @abstractmethod
    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """The parts stored so far, by part number, so an interrupted upload can resume."""

    @abstractmethod
    def complete_multipart(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> int:
        """Join the named parts `(part_number, etag)` into the object; return its size.

        Raises InvalidPart as `check_completion` describes (the upload stays open and no
        object appears) and UploadNotFound once the upload is completed or aborted. Readers
        see the old object or the whole new one, never a part of it.
        """

    @abstractmethod
    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop the upload and its parts; a no-op for an upload that is already gone."""

    @abstractmethod
    def head(self, key: str) -> BlobInfo | None:
        """The object's size, or None when there is no object under `key`."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a no-op when there is none."""

    @abstractmethod
    def download_url(self, key: str, *, expires_in: int) -> str:
        """A URL that serves the object to a GET for `expires_in` seconds (404 if absent)."""

    @abstractmethod
    def open_read(self, key: str) -> Readable:
        """Stream the object's bytes server-side; raises BlobNotFound. Close it after use."""

    @abstractmethod
    def put_stream(self, key: str, stream: Readable, *, size_limit: int) -> int:
        """Store everything `stream` yields under `key` in chunks; return the byte count.

        Raises BlobTooLarge as soon as more than `size_limit` bytes arrive; then nothing of
        the attempt remains and an older object under `key` is untouched.
        """

    @abstractmethod
    def sweep_abandoned(self, older_than_s: float) -> int:
        """Abort multipart uploads started more than `older_than_s` seconds ago.

        Uploads a client gave up on would otherwise hold their parts (and, on S3, their
        cost) forever. Returns how many were aborted.
        """
