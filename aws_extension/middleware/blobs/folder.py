"""`Blobs` on a local folder, for the embedded local stack.

Layout under `root`:

    objects/<key>                         finished objects
    uploads/<upload_id>/upload.json       manifest: key, created (unix time), content type
    uploads/<upload_id>/<n>.<md5>.part    stored parts; the name carries the part's ETag
    tmp/                                  bytes being written, renamed into place when whole

The content type is kept in the manifest for whoever inspects the folder; downloads are
served as application/octet-stream (models are opaque bytes).

Everything appears by `os.replace` from `tmp/`, so nobody ever sees half a part or half an
object. One lock orders the short steps that look at or change what exists (store a part,
start or finish a completion, abort, publish, delete); the long ones (streaming a part,
joining the parts) run outside it, so PUTs of different parts proceed in parallel. The lock
is per process, which is enough: the local stack serves from one process.

The URLs point at the routes of `folder_routes.py` and carry an HMAC-SHA256 signature over
the method, key, upload id, part number and expiry, so like S3's presigned URLs they need no
other credential and cannot be bent to another object, part or method.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode

from aws_extension.middleware.blobs.base import (
    MAX_PART_SIZE,
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
    SignatureInvalid,
    UploadNotFound,
    UrlExpired,
)

_MANIFEST = "upload.json"
_CHUNK = MIB
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


class PartWriter:
    """One part on its way to disk: `write` the body in chunks, then `commit` or `discard`.

    The MD5 is computed while the bytes stream by, so the ETag costs no second read.
    """

    def __init__(self, file: BinaryIO, store: Callable[[Path, str], None]) -> None:
        """`store(path, md5)` moves the finished file into the upload."""
        self._file = file
        self._store = store
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._size = 0

    def write(self, data: bytes | bytearray) -> None:
        self._size += len(data)
        if self._size > MAX_PART_SIZE:
            raise BlobTooLarge(f"A part may hold at most {MAX_PART_SIZE} bytes.")
        self._md5.update(data)
        self._file.write(data)

    def commit(self) -> str:
        """Store the part (replacing an earlier one of that number); return its quoted ETag."""
        self._file.close()
        md5 = self._md5.hexdigest()
        self._store(Path(self._file.name), md5)
        return quote_etag(md5)

    def discard(self) -> None:
        """Forget the bytes; safe to call after `commit` failed or more than once."""
        self._file.close()
        Path(self._file.name).unlink(missing_ok=True)


class FolderBlobs(Blobs):
    def __init__(
        self,
        root: Path,
        *,
        base_url: str,
        secret: bytes,
        min_part_size: int = MIN_PART_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`base_url` is where the local server is reached (`http://127.0.0.1:8080`).

        `min_part_size` defaults to S3's 5 MiB so the local stack rejects what S3 would;
        tests lower it to use small parts. `clock` signs and checks expiry times and dates
        uploads for `sweep_abandoned`.
        """
        if not secret:
            raise ValueError("FolderBlobs needs a non-empty signing secret.")
        self._objects = root / "objects"
        self._uploads = root / "uploads"
        self._tmp = root / "tmp"
        for folder in (self._objects, self._uploads, self._tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self._base_url = base_url.rstrip("/")
        self._secret = secret
        self.min_part_size = min_part_size
        self._clock = clock
        self._lock = threading.Lock()
        # Uploads a `complete_multipart` has claimed: they accept no parts, aborts or sweeps.
        self._completing: set[str] = set()

    # -- multipart -----------------------------------------------------------------------

    def create_multipart(self, key: str, *, content_type: str = "application/octet-stream") -> str:
        validate_key(key)
        upload_id = uuid.uuid4().hex
        folder = self._uploads / upload_id
        folder.mkdir()
        manifest = {"key": key, "created": self._clock(), "content_type": content_type}
        (folder / _MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        return upload_id

    def part_url(self, key: str, upload_id: str, part_number: int, *, expires_in: int) -> str:
        validate_key(key)
        check_part_number(part_number)
        self._upload_folder(upload_id)
        expires = int(self._clock()) + expires_in
        query = urlencode(
            {
                "key": key,
                "expires": expires,
                "sig": self._signature("PUT", key, upload_id, part_number, expires),
            }
        )
        return f"{self._base_url}/blobs/parts/{upload_id}/{part_number}?{query}"

    def open_part_writer(self, key: str, upload_id: str, part_number: int) -> PartWriter:
        """Start receiving a part; raises UploadNotFound for an upload that is not open."""
        validate_key(key)
        check_part_number(part_number)
        with self._lock:
            self._open_upload(key, upload_id)
        file = self._new_temp_file("part-").open("wb")
        return PartWriter(file, partial(self._store_part, key, upload_id, part_number))

    def _store_part(
        self, key: str, upload_id: str, part_number: int, written: Path, md5: str
    ) -> None:
        with self._lock:
            try:
                folder = self._open_upload(key, upload_id)
            except UploadNotFound:
                written.unlink(missing_ok=True)
                raise
            for old in folder.glob(f"{part_number}.*.part"):
                old.unlink()
            os.replace(written, folder / f"{part_number}.{md5}.part")

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        validate_key(key)
        with self._lock:
            folder = self._open_upload(key, upload_id)
            parts = self._stored_parts(folder)
        return [parts[number] for number in sorted(parts)]

    def complete_multipart(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> int:
        validate_key(key)
        with self._lock:
            folder = self._open_upload(key, upload_id)
            total = check_completion(
                parts, self._stored_parts(folder), min_part_size=self.min_part_size
            )
            self._completing.add(upload_id)
        try:
            joined = self._join_parts(folder, parts)
            with self._lock:
                self._publish(joined, key)
                shutil.rmtree(folder)
        finally:
            with self._lock:
                self._completing.discard(upload_id)
        return total

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop the upload; an upload being completed is left to its completion."""
        validate_key(key)
        with self._lock:
            try:
                folder = self._open_upload(key, upload_id)
            except UploadNotFound:
                return
            shutil.rmtree(folder)

    def sweep_abandoned(self, older_than_s: float) -> int:
        """Also removes leftovers in `tmp/` of writes that a crash cut short."""
        cutoff = self._clock() - older_than_s
        swept = 0
        with self._lock:
            for folder in self._uploads.iterdir():
                if folder.name in self._completing or self._created(folder) >= cutoff:
                    continue
                shutil.rmtree(folder)
                swept += 1
            for leftover in self._tmp.iterdir():
                try:
                    if leftover.stat().st_mtime < cutoff:
                        leftover.unlink()
                except OSError:
                    continue  # gone meanwhile, or still open on Windows: next sweep
        return swept

    # -- objects -------------------------------------------------------------------------

    def head(self, key: str) -> BlobInfo | None:
        path = self._object_path(key)
        return BlobInfo(path.stat().st_size) if path.is_file() else None

    def delete(self, key: str) -> None:
        path = self._object_path(key)
        with self._lock:
            if not path.is_file():
                return
            path.unlink()
            # Drop folders the object leaves empty, so deleted models leave no trace.
            for parent in path.parents:
                if parent == self._objects:
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break

    def download_url(self, key: str, *, expires_in: int) -> str:
        validate_key(key)
        expires = int(self._clock()) + expires_in
        query = urlencode(
            {
                "key": key,
                "expires": expires,
                "sig": self._signature("GET", key, None, None, expires),
            }
        )
        return f"{self._base_url}/blobs/objects?{query}"

    def object_file(self, key: str) -> Path:
        """The path of the stored object, for the download route; raises BlobNotFound."""
        path = self._object_path(key)
        if not path.is_file():
            raise BlobNotFound(f"No object {key!r}.")
        return path

    def open_read(self, key: str) -> BinaryIO:
        try:
            return self.object_file(key).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(f"No object {key!r}.") from None

    def put_stream(self, key: str, stream: Readable, *, size_limit: int) -> int:
        validate_key(key)
        total = 0
        written = self._new_temp_file("stream-")
        try:
            with written.open("wb") as out:
                while chunk := stream.read(_CHUNK):
                    total += len(chunk)
                    if total > size_limit:
                        raise BlobTooLarge(f"The stream is larger than {size_limit} bytes.")
                    out.write(chunk)
            with self._lock:
                self._publish(written, key)
        except BaseException:
            written.unlink(missing_ok=True)
            raise
        return total

    # -- signed URLs ---------------------------------------------------------------------

    def verify_part_url(
        self, key: str, upload_id: str, part_number: str, *, expires: str, sig: str
    ) -> int:
        """Check a part URL as received; return its part number.

        Raises SignatureInvalid unless every piece is exactly what `part_url` signed, and
        UrlExpired after the expiry (checked second, so a forged expiry is a bad signature).
        """
        if not (part_number.isascii() and part_number.isdigit()):
            raise SignatureInvalid("The part URL is malformed.")
        number = int(part_number)
        self._verify("PUT", key, upload_id, number, expires, sig)
        return number

    def verify_download_url(self, key: str, *, expires: str, sig: str) -> None:
        """Like `verify_part_url`, for the URLs of `download_url`."""
        self._verify("GET", key, None, None, expires, sig)

    def _verify(
        self,
        method: str,
        key: str,
        upload_id: str | None,
        part_number: int | None,
        expires: str,
        sig: str,
    ) -> None:
        if not (expires.isascii() and expires.isdigit()):
            raise SignatureInvalid("The URL is malformed.")
        expected = self._signature(method, key, upload_id, part_number, int(expires))
        if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
            raise SignatureInvalid("The URL's signature does not match; it was altered.")
        if int(expires) < self._clock():
            raise UrlExpired("The URL has expired; ask for a fresh one.")

    def _signature(
        self,
        method: str,
        key: str,
        upload_id: str | None,
        part_number: int | None,
        expires: int,
    ) -> str:
        # A JSON array keeps the fields apart whatever characters the key holds.
        message = json.dumps(
            [method, key, upload_id, part_number, expires],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hmac.new(self._secret, message.encode("utf-8"), hashlib.sha256).hexdigest()

    # -- helpers -------------------------------------------------------------------------

    def _object_path(self, key: str) -> Path:
        path = self._objects.joinpath(*validate_key(key).split("/"))
        # Belt and braces: validate_key already keeps keys inside, this holds on any OS.
        if not path.is_relative_to(self._objects):
            raise BlobNotFound(f"No object {key!r}.")
        return path

    def _upload_folder(self, upload_id: str) -> Path:
        """The folder an upload id names; ids are uuid4 hex, anything else is unknown."""
        if not _UPLOAD_ID.match(upload_id):
            raise UploadNotFound(f"No upload {upload_id!r}.")
        return self._uploads / upload_id

    def _open_upload(self, key: str, upload_id: str) -> Path:
        """The folder of an open upload of `key`. Call with the lock held."""
        folder = self._upload_folder(upload_id)
        try:
            manifest = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise UploadNotFound(f"No upload {upload_id!r}.") from None
        if manifest.get("key") != key or upload_id in self._completing:
            raise UploadNotFound(f"No upload {upload_id!r} of {key!r}.")
        return folder

    def _created(self, folder: Path) -> float:
        """When an upload started; the folder's time if a crash left no readable manifest."""
        try:
            return float(json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))["created"])
        except (OSError, ValueError, KeyError, TypeError):
            return folder.stat().st_mtime

    @staticmethod
    def _stored_parts(folder: Path) -> dict[int, PartInfo]:
        parts = {}
        for path in folder.glob("*.part"):
            number, md5, _ = path.name.split(".")
            parts[int(number)] = PartInfo(int(number), quote_etag(md5), path.stat().st_size)
        return parts

    def _new_temp_file(self, prefix: str) -> Path:
        handle, name = tempfile.mkstemp(dir=self._tmp, prefix=prefix)
        os.close(handle)
        return Path(name)

    def _join_parts(self, folder: Path, parts: Sequence[tuple[int, str]]) -> Path:
        """Concatenate the checked parts into a new file in `tmp/`; return its path."""
        joined = self._new_temp_file("object-")
        try:
            with joined.open("wb") as out:
                for number, etag in parts:
                    md5 = quote_etag(etag).strip('"')
                    with (folder / f"{number}.{md5}.part").open("rb") as part:
                        shutil.copyfileobj(part, out, _CHUNK)
        except BaseException:
            joined.unlink(missing_ok=True)
            raise
        return joined

    def _publish(self, written: Path, key: str) -> None:
        """Move a finished file to the object's place. Call with the lock held."""
        path = self._object_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(written, path)
