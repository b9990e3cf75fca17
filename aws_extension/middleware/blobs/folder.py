"""`Blobs` on a local folder, for the embedded local stack.

Layout under `root`:

    objects/<key>                              finished objects
    uploads/<upload_id>/upload.json            manifest: key, created (unix time), content
                                               type, part size (when the caller gave one)
    uploads/<upload_id>/parts.bin              parts laid out in place: part n at
                                               (n - 1) x part size ("slots")
    uploads/<upload_id>/<n>.<md5>.<size>.slot  marker: part n is stored in its slot
    uploads/<upload_id>/<n>.<md5>.part         part n stored in a file of its own
    tmp/                                       bytes being written, renamed into place when whole

The content type is kept in the manifest for whoever inspects the folder; downloads are
served as application/octet-stream (models are opaque bytes).

Why slots: joining parts kept in files of their own copies every byte once more at the
completion, about a second per GiB on a small machine, while the client waits. When the
upload was started with a part size (`create_multipart(..., part_size=...)`, as the model
service does), a PUT that announces its length streams straight into its part's slot, and a
completion that names parts 1..n, all in their slots and all but the last of the full part
size, is a truncate and a rename. Anything else still works as S3 does, through a file of
its own: a PUT without a length, a part bigger than the slot, a second PUT of a part while
one is streaming into the slot or after the slot holds a stored part (so a stored part's
bytes never change under it); such a completion copies the parts into a new file. Whole
pages from page-aligned memory (the part threads' receive buffers) are written past the page
cache (`O_DIRECT`) into blocks allocated when the slot is claimed, which saves a copy and
lets parts be written side by side.

Nobody ever sees half a part or half an object: a part counts only once its marker or file
is in place, after all its bytes were written, and objects appear by `os.replace`. One lock
orders the short steps that look at or change what exists (store a part, start or finish a
completion, abort, publish, delete, and the start and end of each write into `parts.bin`);
the long ones (streaming a part, joining the parts) run outside it, so PUTs of different
parts proceed in parallel. Before a completion, abort or sweep takes `parts.bin`, it closes
the file to new writes and waits for the writes under way, so no late byte lands in a
published object. The lock is per process, which is enough: the local stack serves from one
process.

The URLs point at the routes of `folder_routes.py` and carry an HMAC-SHA256 signature over
the method, key, upload id, part number and expiry, so like S3's presigned URLs they need no
other credential and cannot be bent to another object, part or method.
"""

from __future__ import annotations

import errno
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
_SLOTS = "parts.bin"
_CHUNK = MIB
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
#: Windows opens files in text mode unless told otherwise.
_O_BINARY = getattr(os, "O_BINARY", 0)
#: Linux's writes past the page cache, for page-aligned memory (see `PartWriter.write`).
_O_DIRECT = getattr(os, "O_DIRECT", 0)
#: What O_DIRECT needs the offset and length to be multiples of (block devices' 512 or 4096).
_DIRECT_ALIGN = 4096


class _Slots:
    """One upload's `parts.bin` and who uses it; every field is guarded by the blobs' lock.

    `streaming` holds the part numbers whose PUT is writing into their slot (one at a time
    per slot), `stored` those whose stored part is the slot's content, `busy` counts writes
    under way, and `closed` is set once a completion, abort or sweep took the file.
    """

    def __init__(self, path: Path, part_size: int, stored: set[int]) -> None:
        self.path = path
        self.part_size = part_size
        self.stored = stored
        self.streaming: set[int] = set()
        self.busy = 0
        self.closed = False
        # Until the file system refuses it (tmpfs, some network file systems).
        self.direct = bool(_O_DIRECT)


class _OwnFile:
    """Where a part that has no slot goes: a file in `tmp/`, moved into the upload whole."""

    def __init__(self, path: Path, store: Callable[[Path, str, int], None]) -> None:
        self._path = path
        self._file = path.open("wb")
        self._store = store
        self.limit = MAX_PART_SIZE

    def write(self, data: bytes | bytearray | memoryview, offset: int, aligned: bool) -> None:
        self._file.write(data)

    def store(self, md5: str, size: int) -> None:
        self._file.close()
        self._store(self._path, md5, size)

    def drop(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


class _SlotTarget:
    """Where a part with a slot goes: its place in `parts.bin`, written through a gate."""

    def __init__(self, blobs: FolderBlobs, slots: _Slots, number: int, store: Callable) -> None:
        self._blobs = blobs
        self._slots = slots
        self._number = number
        self._store = store
        self._start = (number - 1) * slots.part_size
        self.limit = slots.part_size
        self._released = False

    def write(self, data: bytes | bytearray | memoryview, offset: int, aligned: bool) -> None:
        self._blobs._write_slot(self._slots, self._start + offset, data, aligned)

    def store(self, md5: str, size: int) -> None:
        self._released = True
        self._store(self._slots, self._number, md5, size)

    def drop(self) -> None:
        if not self._released:
            self._released = True
            self._blobs._release_slot(self._slots, self._number)


class PartWriter:
    """One part on its way to disk: `write` the body in chunks, then `commit` or `discard`.

    The MD5 is computed while the bytes stream by, so the ETag costs no second read. Where
    the bytes go (the part's slot, or a file of its own) is the blobs' choice, made when the
    writer was opened; the caller sees no difference.
    """

    def __init__(self, target: _OwnFile | _SlotTarget) -> None:
        self._target = target
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview, *, aligned: bool = False) -> None:
        """Add the next bytes of the part.

        `aligned` says `data` starts at a page boundary in memory (an mmap's start, say), so
        the bytes may go to disk past the page cache: one copy fewer (about 0.3 CPU seconds
        per GiB) when offset and length suit the disk too.
        """
        offset = self._size
        self._size += len(data)
        if self._size > self._target.limit:
            raise BlobTooLarge(f"A part may hold at most {self._target.limit} bytes here.")
        self._md5.update(data)
        self._target.write(data, offset, aligned)

    def commit(self) -> str:
        """Store the part (replacing an earlier one of that number); return its quoted ETag."""
        md5 = self._md5.hexdigest()
        self._target.store(md5, self._size)
        return quote_etag(md5)

    def discard(self) -> None:
        """Forget the bytes; safe to call after `commit` failed or more than once."""
        self._target.drop()


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
        # Notified whenever a write into a `parts.bin` ends, for whoever waits to take it.
        self._writes_done = threading.Condition(self._lock)
        # Uploads a `complete_multipart` has claimed: they accept no parts, aborts or sweeps.
        self._completing: set[str] = set()
        # The `parts.bin` of uploads with a slot writer since this process started.
        self._slots: dict[str, _Slots] = {}
        # The file names of stored parts by number, per upload this process stored parts of:
        # looking for an old part in the folder at every store would cost an upload of n
        # parts n^2 work (seconds of CPU for a 64 GiB model).
        self._names: dict[str, dict[int, str]] = {}
        # The manifests of open uploads this process has read, so a part's steps (open,
        # store) do not read and parse `upload.json` again; dropped with `_forget`.
        self._manifests: dict[str, dict] = {}

    # -- multipart -----------------------------------------------------------------------

    def create_multipart(
        self,
        key: str,
        *,
        content_type: str = "application/octet-stream",
        part_size: int | None = None,
    ) -> str:
        validate_key(key)
        upload_id = uuid.uuid4().hex
        folder = self._uploads / upload_id
        folder.mkdir()
        manifest: dict[str, object] = {
            "key": key,
            "created": self._clock(),
            "content_type": content_type,
        }
        if part_size is not None and 0 < part_size <= MAX_PART_SIZE:
            manifest["part_size"] = part_size
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

    def open_part_writer(
        self, key: str, upload_id: str, part_number: int, *, size: int | None = None
    ) -> PartWriter:
        """Start receiving a part; raises UploadNotFound for an upload that is not open.

        `size` is the length the PUT announced (its Content-Length); only a part of known
        length may stream into its slot, since a slot cannot grow.
        """
        validate_key(key)
        check_part_number(part_number)
        with self._lock:
            folder, manifest = self._open_upload_manifest(key, upload_id)
            slots = self._claim_slot(folder, manifest, upload_id, part_number, size)
        if slots is not None:
            store = partial(self._store_slot, key, upload_id)
            return PartWriter(_SlotTarget(self, slots, part_number, store))
        store_file = partial(self._store_part, key, upload_id, part_number)
        return PartWriter(_OwnFile(self._new_temp_file("part-"), store_file))

    def _claim_slot(
        self,
        folder: Path,
        manifest: dict,
        upload_id: str,
        part_number: int,
        size: int | None,
    ) -> _Slots | None:
        """The upload's `parts.bin` if part `part_number` may stream into its slot, claimed
        for it; else None. Call with the lock held."""
        part_size = manifest.get("part_size")
        if size is None or not isinstance(part_size, int) or not 0 <= size <= part_size:
            return None
        slots = self._slots.get(upload_id)
        if slots is None:
            path = folder / _SLOTS
            # Created here, under the lock, so writes never create it in a removed folder.
            with path.open("ab"):
                pass
            stored = {
                info_number
                for info_number, (_, own) in self._stored_parts(folder).items()
                if own is None
            }
            slots = self._slots[upload_id] = _Slots(path, part_size, stored)
        if part_number in slots.streaming or part_number in slots.stored:
            return None
        slots.streaming.add(part_number)
        if slots.direct and size:
            self._allocate(slots, (part_number - 1) * part_size, size)
        return slots

    @staticmethod
    def _allocate(slots: _Slots, offset: int, size: int) -> None:
        """Give the slot its disk blocks before the writes past the page cache: writes into
        allocated blocks proceed side by side, while each write that extends the file or
        fills a hole waits for every other (ext4 takes the file's lock for them)."""
        end = -(-(offset + size) // _DIRECT_ALIGN) * _DIRECT_ALIGN
        try:
            handle = os.open(slots.path, os.O_WRONLY | _O_BINARY)
            try:
                os.posix_fallocate(handle, offset, end - offset)
            finally:
                os.close(handle)
        except (OSError, AttributeError):
            slots.direct = False  # no allocation ahead here: ordinary writes, then

    def _write_slot(
        self, slots: _Slots, offset: int, data: bytes | bytearray | memoryview, aligned: bool
    ) -> None:
        """Write into `parts.bin` at `offset`, unless a completion, abort or sweep took it."""
        with self._lock:
            if slots.closed:
                raise UploadNotFound("The upload was completed or aborted meanwhile.")
            slots.busy += 1
        try:
            view = memoryview(data).cast("B")
            direct = (
                aligned
                and slots.direct
                and not offset % _DIRECT_ALIGN
                and not len(view) % _DIRECT_ALIGN
            )
            if direct:
                try:
                    self._write_at(slots.path, offset, view, _O_DIRECT)
                    return
                except OSError as error:
                    if error.errno != errno.EINVAL:
                        raise
                    slots.direct = False  # not on this file system: the page cache it is
            self._write_at(slots.path, offset, view, 0)
        finally:
            with self._lock:
                slots.busy -= 1
                if slots.closed and not slots.busy:
                    self._writes_done.notify_all()  # only `_close_slots` waits, once closed

    @staticmethod
    def _write_at(path: Path, offset: int, view: memoryview, flags: int) -> None:
        # Opened per write, so no handle outlives a write (Windows cannot rename a file
        # that is open); the cost is a few microseconds per MiB.
        handle = os.open(path, os.O_WRONLY | _O_BINARY | flags)
        try:
            os.lseek(handle, offset, os.SEEK_SET)
            while view:
                view = view[os.write(handle, view) :]
        finally:
            os.close(handle)

    def _release_slot(self, slots: _Slots, part_number: int) -> None:
        with self._lock:
            slots.streaming.discard(part_number)

    def _close_slots(self, upload_id: str) -> None:
        """Take the upload's `parts.bin` from its writers: no write starts after this, and
        the ones under way have ended when it returns. Call with the lock held."""
        slots = self._slots.pop(upload_id, None)
        if slots is None:
            return
        slots.closed = True
        while slots.busy:
            self._writes_done.wait()

    def _store_slot(
        self, key: str, upload_id: str, slots: _Slots, part_number: int, md5: str, size: int
    ) -> None:
        with self._lock:
            try:
                if slots.closed:
                    raise UploadNotFound(f"No upload {upload_id!r}.")
                folder = self._open_upload(key, upload_id)
                name = f"{part_number}.{md5}.{size}.slot"
                (folder / name).touch()
                self._replace_stored(folder, upload_id, part_number, name)
                slots.stored.add(part_number)
            finally:
                slots.streaming.discard(part_number)

    def _store_part(
        self, key: str, upload_id: str, part_number: int, written: Path, md5: str, size: int
    ) -> None:
        with self._lock:
            try:
                folder = self._open_upload(key, upload_id)
            except UploadNotFound:
                written.unlink(missing_ok=True)
                raise
            name = f"{part_number}.{md5}.part"
            os.replace(written, folder / name)
            self._replace_stored(folder, upload_id, part_number, name)

    def _part_names(self, folder: Path, upload_id: str) -> dict[int, str]:
        """The upload's stored parts' file names by number (see `_names`). Lock held."""
        names = self._names.get(upload_id)
        if names is None:
            names = {number: name for number, (_, name) in self._scan_parts(folder).items()}
            self._names[upload_id] = names
        return names

    def _replace_stored(self, folder: Path, upload_id: str, part_number: int, name: str) -> None:
        """Make `name`, already in the folder, part `part_number`; drop the one it replaces.

        Lock held."""
        names = self._part_names(folder, upload_id)
        old = names.get(part_number)
        names[part_number] = name
        if old is not None and old != name:
            (folder / old).unlink(missing_ok=True)
        slots = self._slots.get(upload_id)
        if slots is not None and not name.endswith(".slot"):
            slots.stored.discard(part_number)

    def _forget(self, upload_id: str) -> None:
        """The upload is being completed, aborted or swept: close its `parts.bin` to its
        writers and drop what this process knew of its parts. Lock held."""
        self._close_slots(upload_id)
        self._names.pop(upload_id, None)
        self._manifests.pop(upload_id, None)

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        validate_key(key)
        with self._lock:
            folder = self._open_upload(key, upload_id)
            parts = self._stored_parts(folder)
        return [parts[number][0] for number in sorted(parts)]

    def complete_multipart(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> int:
        validate_key(key)
        with self._lock:
            folder, manifest = self._open_upload_manifest(key, upload_id)
            stored = self._stored_parts(folder)
            total = check_completion(
                parts,
                {number: info for number, (info, _) in stored.items()},
                min_part_size=self.min_part_size,
            )
            self._completing.add(upload_id)
            self._forget(upload_id)
        try:
            joined = self._assemble(folder, manifest, parts, stored, total)
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
            self._forget(upload_id)
            shutil.rmtree(folder)

    def sweep_abandoned(self, older_than_s: float) -> int:
        """Also removes leftovers in `tmp/` of writes that a crash cut short."""
        cutoff = self._clock() - older_than_s
        swept = 0
        with self._lock:
            for folder in self._uploads.iterdir():
                if folder.name in self._completing or self._created(folder) >= cutoff:
                    continue
                self._forget(folder.name)
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
        return self._open_upload_manifest(key, upload_id)[0]

    def _open_upload_manifest(self, key: str, upload_id: str) -> tuple[Path, dict]:
        """The folder and manifest of an open upload of `key`. Call with the lock held."""
        folder = self._upload_folder(upload_id)
        if upload_id in self._completing:
            # Checked before the manifest is read and cached: a cache entry made while a
            # completion runs would outlive it and let a later call see a published upload.
            raise UploadNotFound(f"No upload {upload_id!r} of {key!r}.")
        manifest = self._manifests.get(upload_id)
        if manifest is None:
            try:
                manifest = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise UploadNotFound(f"No upload {upload_id!r}.") from None
            if isinstance(manifest, dict):
                self._manifests[upload_id] = manifest
        if not isinstance(manifest, dict) or manifest.get("key") != key:
            raise UploadNotFound(f"No upload {upload_id!r} of {key!r}.")
        return folder, manifest

    def _created(self, folder: Path) -> float:
        """When an upload started; the folder's time if a crash left no readable manifest."""
        try:
            return float(json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))["created"])
        except (OSError, ValueError, KeyError, TypeError):
            return folder.stat().st_mtime

    @classmethod
    def _stored_parts(cls, folder: Path) -> dict[int, tuple[PartInfo, Path | None]]:
        """Each stored part, with the file that holds it (None: it is in its slot)."""
        return {
            number: (info, None if name.endswith(".slot") else folder / name)
            for number, (info, name) in cls._scan_parts(folder).items()
        }

    @staticmethod
    def _scan_parts(folder: Path) -> dict[int, tuple[PartInfo, str]]:
        """Each stored part with the name of its file (a `.part` or a `.slot` marker)."""
        parts: dict[int, tuple[PartInfo, str]] = {}
        with os.scandir(folder) as entries:
            for entry in entries:
                fields = entry.name.split(".")
                if fields[-1] == "part" and len(fields) == 3:
                    size = entry.stat().st_size
                elif fields[-1] == "slot" and len(fields) == 4:
                    size = int(fields[2])
                else:
                    continue
                number = int(fields[0])
                parts[number] = (PartInfo(number, quote_etag(fields[1]), size), entry.name)
        return parts

    def _new_temp_file(self, prefix: str) -> Path:
        handle, name = tempfile.mkstemp(dir=self._tmp, prefix=prefix)
        os.close(handle)
        return Path(name)

    def _assemble(
        self,
        folder: Path,
        manifest: dict,
        parts: Sequence[tuple[int, str]],
        stored: dict[int, tuple[PartInfo, Path | None]],
        total: int,
    ) -> Path:
        """The object's bytes as one file, ready to publish: `parts.bin` itself, cut to
        `total`, when the named parts are 1..n in their slots with every part but the last
        of the full part size; else a new file in `tmp/` with the parts copied in order."""
        part_size = manifest.get("part_size")
        in_place = all(
            number == index + 1
            and stored[number][1] is None
            and (index == len(parts) - 1 or stored[number][0].size == part_size)
            for index, (number, _) in enumerate(parts)
        ) and not any(  # cutting `parts.bin` must not lose a part kept for a retry
            own is None and number > len(parts) for number, (_, own) in stored.items()
        )
        if in_place:
            path = folder / _SLOTS
            os.truncate(path, total)
            return path
        joined = self._new_temp_file("object-")
        try:
            with joined.open("wb") as out:
                for number, _ in parts:
                    info, own = stored[number]
                    if own is not None:
                        with own.open("rb") as part:
                            shutil.copyfileobj(part, out, _CHUNK)
                        continue
                    assert isinstance(part_size, int)  # slots exist only with a part size
                    with (folder / _SLOTS).open("rb") as slots:
                        slots.seek((number - 1) * part_size)
                        _copy_exactly(slots, out, info.size)
        except BaseException:
            joined.unlink(missing_ok=True)
            raise
        return joined

    def _publish(self, written: Path, key: str) -> None:
        """Move a finished file to the object's place. Call with the lock held."""
        path = self._object_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(written, path)


def _copy_exactly(source: BinaryIO, target: BinaryIO, count: int) -> None:
    while count:
        chunk = source.read(min(count, _CHUNK))
        if not chunk:
            raise OSError("A part's slot holds fewer bytes than its marker says.")
        target.write(chunk)
        count -= len(chunk)
