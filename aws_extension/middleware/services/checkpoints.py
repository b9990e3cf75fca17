"""Models (checkpoints): uploads straight into the blob store, server-side imports, and the
records that say which model files exist and who may use them.

Rules (docs/architecture.md, "Models (checkpoints) and blobs"):

- A model is `Active` only once all its bytes are stored and their size matched the
  declared one; before that it is `Uploading`, `Completing` or `Importing`, and a model that
  cannot get there is `Failed` with the reason in `error`.
- (type, name) is unique, case-insensitively: a name becomes a file name, and not every file
  system tells `A.safetensors` from `a.safetensors`. A `Failed` model does not keep its
  name: a new model under that name replaces it, so retrying after a failure just works.
- Objects live under `checkpoints/<id>/<file name at creation>`, so a rename only touches
  the record.
- Every state change is a version-conditional write: of two concurrent completions exactly
  one moves the model from `Uploading` to `Completing`, the other gets 409.

The records offer conditional writes per key but no unique indexes, so two small kinds
stand in for them: `checkpoint_name` (key `<type>/<folded name>`, the id holding the name)
and `checkpoint_sha256` (key `<type>/<sha256>`, the id of an `Active` model with that
content; advisory, it only lets clients skip re-uploading). A claim whose holder is gone,
`Failed` or renamed is stale and may be taken over, so a crash between two writes never
locks a name for good.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from aws_extension.contract import (
    CHECKPOINT_ACTIVE,
    CHECKPOINT_COMPLETING,
    CHECKPOINT_FAILED,
    CHECKPOINT_IMPORTING,
    CHECKPOINT_UPLOADING,
    MAX_PART_URLS,
    PERMISSION_CHECKPOINT,
    model_name_problem,
)
from aws_extension.middleware.blobs import Blobs, UploadNotFound
from aws_extension.middleware.blobs.base import MAX_PART_NUMBER
from aws_extension.middleware.checkpoint_policy import GIB, MIB, CheckpointPolicy
from aws_extension.middleware.errors import (
    Conflict,
    DuplicateContent,
    Invalid,
    NotFound,
    TooLarge,
)
from aws_extension.middleware.records import AlreadyExists, Doc, Item, Records, VersionConflict
from aws_extension.middleware.records.base import encode_cursor
from aws_extension.middleware.security.outbound import (
    Download,
    DownloadFailed,
    Fetcher,
    RefusedUrl,
)
from aws_extension.middleware.services.access import Access
from aws_extension.middleware.services.entities import USER, Listing, Principal, timestamp

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"
NAME_CLAIM = "checkpoint_name"
CONTENT = "checkpoint_sha256"

#: Records one list request examines at most: a filter that matches little still answers
#: quickly, with a short page and a cursor to go on.
_SCAN_LIMIT = 1000
_SCAN_BATCH = 200
#: Optimistic writes retried this often before the caller is told to try again.
_WRITE_ATTEMPTS = 8
#: Bytes per read of an import: small enough to notice a cancellation quickly.
_READ_CHUNK = MIB


@dataclass(frozen=True)
class Progress:
    bytes_done: int
    bytes_total: int | None


@dataclass(frozen=True)
class Checkpoint:
    id: str
    name: str
    type: str
    #: Declared size while uploading, unknown (None) while importing, stored size once Active.
    size: int | None
    #: Set when Active (from the client at completion, or computed by an import).
    sha256: str | None
    status: str
    allowed_roles: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    #: Imports only: the URL without credentials, query or fragment.
    source: str | None
    progress: Progress | None
    error: str | None


@dataclass(frozen=True)
class PartUrl:
    part_number: int
    url: str


@dataclass(frozen=True)
class PartUrls:
    parts: list[PartUrl]
    expires_at: datetime


@dataclass(frozen=True)
class Upload:
    upload_id: str
    part_size: int
    part_count: int
    parts: list[PartUrl]
    expires_at: datetime


@dataclass(frozen=True)
class StartedUpload:
    checkpoint: Checkpoint
    upload: Upload


class _Gone(Exception):
    """The model was deleted (or failed by someone else) while an import ran."""


class _Stopped(Exception):
    """The server is shutting down while an import ran."""


def new_id(clock: Callable[[], float]) -> str:
    """Milliseconds (hex) then randomness: ids sort by creation time, so listing the records
    in reverse key order lists the newest models first."""
    return f"{int(clock() * 1000):012x}{secrets.token_hex(6)}"


def human_size(size: int) -> str:
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if size >= scale:
            return f"{size // scale} {unit}" if size % scale == 0 else f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def name_from_url(url: str) -> str:
    """The last segment of the URL's path, decoded: what a browser would save it as."""
    return PurePosixPath(unquote(urlsplit(url).path)).name


def public_source(url: str) -> str:
    """The URL as shown to everyone who may see the model: download links often carry
    tokens (in the query or as user:password), so only scheme, host, port and path stay."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, "", ""))


def _name_key(model_type: str, name: str) -> str:
    return f"{model_type}/{name.casefold()}"


def _content_key(model_type: str, sha256: str) -> str:
    return f"{model_type}/{sha256}"


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _numbers(values: Iterable[int]) -> str:
    """1, 2, 3, 5, 7, 8 -> "1-3, 5, 7-8": short words for long part lists."""
    spans: list[list[int]] = []
    for value in sorted(set(values)):
        if spans and value == spans[-1][1] + 1:
            spans[-1][1] = value
        else:
            spans.append([value, value])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _parts_problem(numbers: Sequence[int], part_count: int) -> str | None:
    """What is wrong with a completion's part list, or None when it names 1..part_count once
    each. Every part must be there: a model is never shorter than declared."""
    counts = Counter(numbers)
    problems = []
    missing = [n for n in range(1, part_count + 1) if n not in counts]
    if missing:
        problems.append(f"part(s) {_numbers(missing)} are missing from the list")
    outside = [n for n in counts if not 1 <= n <= part_count]
    if outside:
        problems.append(f"it has parts 1 to {part_count}, not {_numbers(outside)}")
    repeated = [n for n, count in counts.items() if count > 1]
    if repeated:
        problems.append(f"part(s) {_numbers(repeated)} are listed more than once")
    return "; ".join(problems) or None


def checkpoint_from(item: Item) -> Checkpoint:
    doc = item.doc
    progress = doc.get("progress")
    return Checkpoint(
        id=item.key,
        name=doc["name"],
        type=doc["type"],
        size=doc["size"],
        sha256=doc["sha256"],
        status=doc["status"],
        allowed_roles=list(doc["allowed_roles"]),
        created_by=doc["created_by"],
        created_at=datetime.fromisoformat(doc["created_at"]),
        updated_at=datetime.fromisoformat(doc["updated_at"]),
        source=doc.get("source"),
        progress=Progress(progress["bytes_done"], progress["bytes_total"]) if progress else None,
        error=doc.get("error"),
    )


def _visible(doc: Doc, roles: frozenset[str] | None) -> bool:
    """`roles` None means the caller manages models and sees all of them; an empty
    `allowed_roles` means everyone may use the model."""
    return roles is None or not doc["allowed_roles"] or not roles.isdisjoint(doc["allowed_roles"])


class _Job:
    """One running import, so that a deletion or shutdown can stop it mid-download."""

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self._cancelled = threading.Event()
        self._download: Download | None = None

    def attach(self, download: Download) -> None:
        self._download = download
        self.check()

    def check(self) -> None:
        if self._cancelled.is_set():
            raise _Gone
        if self._stopping.is_set():
            raise _Stopped

    def cancel(self) -> None:
        self._cancelled.set()
        self.interrupt()

    def interrupt(self) -> None:
        """Make a read blocked on the network return now; `check` then says why."""
        if self._download is not None:
            self._download.abort()


class _ImportReader:
    """The download as `Blobs.put_stream` reads it: hashes and counts the bytes on the way,
    reports progress every `interval` seconds, and stops when the job is cancelled.

    The job is checked after every read, because an interrupted connection may look like a
    normal end of the body, which must never be stored as a complete model.
    """

    def __init__(
        self, download: Download, job: _Job, report: Callable[[int], None], interval: float
    ) -> None:
        self._download = download
        self._job = job
        self._report = report
        self._interval = interval
        self._last = time.monotonic()
        self._sha256 = hashlib.sha256()
        self.done = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._download.read(_READ_CHUNK if size < 0 else min(size, _READ_CHUNK))
        self._job.check()
        self._sha256.update(data)
        self.done += len(data)
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._report(self.done)
        return data

    def close(self) -> None:
        """The download is closed by its owner."""

    def sha256(self) -> str:
        return self._sha256.hexdigest()


class CheckpointService:
    def __init__(
        self,
        records: Records,
        access: Access,
        blobs: Blobs,
        policy: CheckpointPolicy,
        fetcher: Fetcher,
        clock: Callable[[], float],
        *,
        executor: Executor | None = None,
    ) -> None:
        """`executor` runs imports; by default the service owns a thread pool of
        `policy.import_workers` threads and shuts it down in `close`."""
        self._records = records
        self._access = access
        self._blobs = blobs
        self._policy = policy
        self._fetcher = fetcher
        self._clock = clock
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=policy.import_workers, thread_name_prefix="checkpoint-import"
        )
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}

    # -- reading ---------------------------------------------------------------------------

    def list(
        self,
        caller: Principal,
        *,
        model_type: str | None = None,
        status: str | None = None,
        name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Listing[Checkpoint]:
        """Newest first, filtered, only what the caller may see.

        Filters are applied while paging the records, at most `_SCAN_LIMIT` records per
        call, so a page may hold fewer than `limit` items and still have a next cursor.
        """
        roles = self._reader_roles(caller)
        needle = name.casefold() if name else None

        def wanted(doc: Doc) -> bool:
            return (
                (model_type is None or doc["type"] == model_type)
                and (status is None or doc["status"] == status)
                and (needle is None or needle in doc["name"].casefold())
                and _visible(doc, roles)
            )

        unfiltered = model_type is None and status is None and needle is None and roles is None
        batch = limit if unfiltered else _SCAN_BATCH
        found: list[Item] = []
        scanned = 0
        while True:
            page = self._records.list(CHECKPOINT, limit=batch, cursor=cursor, descending=True)
            for index, item in enumerate(page.items):
                scanned += 1
                if wanted(item.doc):
                    found.append(item)
                if len(found) == limit or scanned >= _SCAN_LIMIT:
                    more = index < len(page.items) - 1 or page.next_cursor is not None
                    after = encode_cursor(CHECKPOINT, item.key, descending=True) if more else None
                    return Listing([checkpoint_from(i) for i in found], after)
            if page.next_cursor is None:
                return Listing([checkpoint_from(i) for i in found], None)
            cursor = page.next_cursor

    def get(self, caller: Principal, checkpoint_id: str) -> Checkpoint:
        item = self._records.get(CHECKPOINT, checkpoint_id)
        # A model the caller may not see does not exist for it.
        if item is None or not _visible(item.doc, self._reader_roles(caller)):
            raise self._gone(checkpoint_id)
        return checkpoint_from(item)

    # -- uploads ---------------------------------------------------------------------------

    def start_upload(
        self,
        caller: Principal,
        *,
        name: str,
        model_type: str,
        size: int,
        sha256: str | None = None,
        allowed_roles: Sequence[str] = (),
    ) -> StartedUpload:
        """Record the model as `Uploading`, start a multipart upload and sign the first
        `MAX_PART_URLS` part URLs (the rest come from `part_urls`, batch by batch)."""
        self._check_size(size)
        roles = self._known_roles(allowed_roles)
        if sha256 is not None:
            self._refuse_duplicate(model_type, sha256)
        self._ensure_name_free(model_type, name)
        part_size, part_count = self._plan(size)
        checkpoint_id = new_id(self._clock)
        key = f"checkpoints/{checkpoint_id}/{name}"
        upload_id = self._blobs.create_multipart(key)
        now = timestamp(self._clock)
        doc: Doc = {
            "name": name,
            "type": model_type,
            "size": size,
            "sha256": None,
            "declared_sha256": sha256,
            "status": CHECKPOINT_UPLOADING,
            "allowed_roles": roles,
            "created_by": caller.username,
            "created_at": now,
            "updated_at": now,
            "object_key": key,
            "upload_id": upload_id,
            "part_size": part_size,
            "part_count": part_count,
            "source": None,
            "progress": None,
            "error": None,
        }
        try:
            # The record first, then the name: a claim then always names an existing model,
            # so a claim without one is known to be stale.
            item = self._records.create(CHECKPOINT, checkpoint_id, doc)
            self._claim_name(model_type, name, checkpoint_id)
        except BaseException:
            self._forget(checkpoint_id)
            self._blobs.abort_multipart(key, upload_id)
            raise
        urls = self._sign(key, upload_id, range(1, min(part_count, MAX_PART_URLS) + 1))
        upload = Upload(upload_id, part_size, part_count, urls.parts, urls.expires_at)
        return StartedUpload(checkpoint_from(item), upload)

    def part_urls(
        self, caller: Principal, checkpoint_id: str, part_numbers: Sequence[int]
    ) -> PartUrls:
        """Fresh URLs for parts of an upload in progress: to resume, or after expiry."""
        item = self._item(checkpoint_id)
        doc = item.doc
        self._expect(doc, CHECKPOINT_UPLOADING, "get part URLs for")
        outside = [n for n in part_numbers if not 1 <= n <= doc["part_count"]]
        if outside:
            count = doc["part_count"]
            raise Invalid(f"Model {doc['name']!r} has parts 1 to {count}, not {_numbers(outside)}.")
        return self._sign(doc["object_key"], doc["upload_id"], sorted(set(part_numbers)))

    def complete(
        self,
        caller: Principal,
        checkpoint_id: str,
        parts: Sequence[tuple[int, str]],
        sha256: str | None = None,
    ) -> Checkpoint:
        """Join the parts, check the stored size, and only then mark the model `Active`.

        A part list the stored parts do not support (missing, wrong ETag) is 400 and leaves
        the upload open to fix; a stored size other than the declared one fails the model.
        """
        item = self._item(checkpoint_id)
        doc = item.doc
        label = f"model {doc['name']!r}"
        self._expect(doc, CHECKPOINT_UPLOADING, "complete")
        ordered = sorted(parts)
        problem = _parts_problem([number for number, _ in ordered], doc["part_count"])
        if problem:
            raise Invalid(f"Cannot complete {label}: {problem}.")
        declared = doc["declared_sha256"]
        if sha256 is not None and declared is not None and sha256 != declared:
            error = (
                f"The file changed during the upload: its SHA-256 was {declared} at the start "
                f"and {sha256} at the end. Upload it again."
            )
            self._fail(item, CHECKPOINT_UPLOADING, error)
            raise Invalid(f"{label.capitalize()} failed: {error}")
        # The claim: of concurrent completions only one gets past this write.
        item = self._change(
            item, self._moving(CHECKPOINT_UPLOADING, "complete"), status=CHECKPOINT_COMPLETING
        )
        key, upload_id = doc["object_key"], doc["upload_id"]
        try:
            self._blobs.complete_multipart(key, upload_id, ordered)
        except UploadNotFound:
            if self._blobs.head(key) is None:
                error = "Its upload no longer exists (aborted or abandoned). Upload it again."
                self._fail(item, CHECKPOINT_COMPLETING, error)
                raise Conflict(f"{label.capitalize()} failed: {error}") from None
            # An earlier completion went through but its answer was lost; the stored object
            # is checked below like any other.
        except BaseException:
            self._reopen(item)
            raise
        stored = self._blobs.head(key)
        size = stored.size if stored is not None else 0
        if size != doc["size"]:
            self._blobs.delete(key)
            error = (
                f"{size} bytes were stored but {doc['size']} were declared, so the file was "
                "not kept. Upload it again."
            )
            self._fail(item, CHECKPOINT_COMPLETING, error)
            raise Invalid(f"{label.capitalize()} failed: {error}")
        final = sha256 or declared
        try:
            item = self._change(
                item,
                self._moving(CHECKPOINT_COMPLETING, "complete"),
                status=CHECKPOINT_ACTIVE,
                sha256=final,
                upload_id=None,
            )
        except (NotFound, Conflict):
            # Deleted or failed by the sweep meanwhile: its bytes must not stay behind.
            self._blobs.delete(key)
            raise
        if final is not None:
            self._index_content(doc["type"], final, item.key)
        return checkpoint_from(item)

    def abort(self, caller: Principal, checkpoint_id: str) -> None:
        """Give up an upload: drop its parts and its record, which frees the name."""
        item = self._item(checkpoint_id)
        for _ in range(_WRITE_ATTEMPTS):
            if item.doc["status"] not in (CHECKPOINT_UPLOADING, CHECKPOINT_FAILED):
                raise self._not_now(item.doc, "abort", "delete it instead")
            try:
                self._records.delete(CHECKPOINT, item.key, expected_version=item.version)
                break
            except VersionConflict:
                item = self._item(checkpoint_id)
            except NotFound:
                raise self._gone(checkpoint_id) from None
        else:
            raise self._busy(item.doc)
        self._clean_up(item)

    # -- management ------------------------------------------------------------------------

    def update(
        self,
        caller: Principal,
        checkpoint_id: str,
        *,
        name: str | None = None,
        allowed_roles: Sequence[str] | None = None,
    ) -> Checkpoint:
        """Rename and/or change who may use the model; instant, since objects are keyed by
        id. Allowed in every status."""
        item = self._item(checkpoint_id)
        roles = self._known_roles(allowed_roles) if allowed_roles is not None else None
        old_key = _name_key(item.doc["type"], item.doc["name"])
        new_key = old_key if name is None else _name_key(item.doc["type"], name)
        if new_key != old_key:
            assert name is not None
            self._claim_name(item.doc["type"], name, item.key)
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if roles is not None:
            changes["allowed_roles"] = roles
        try:
            item = self._change(item, lambda doc: doc, **changes)
        except BaseException:
            if new_key != old_key:
                self._release(NAME_CLAIM, new_key, item.key)
            raise
        if new_key != old_key:
            self._release(NAME_CLAIM, old_key, item.key)
        return checkpoint_from(item)

    def delete(self, caller: Principal, checkpoint_id: str) -> None:
        """Remove the model in any status: its record, its object, an upload in progress;
        a running import stops."""
        item = self._item(checkpoint_id)
        for _ in range(_WRITE_ATTEMPTS):
            try:
                self._records.delete(CHECKPOINT, item.key, expected_version=item.version)
                break
            except VersionConflict:
                item = self._item(checkpoint_id)
            except NotFound:
                raise self._gone(checkpoint_id) from None
        else:
            raise self._busy(item.doc)
        with self._lock:
            job = self._jobs.get(item.key)
        if job is not None:
            job.cancel()
        self._clean_up(item)

    # -- imports ---------------------------------------------------------------------------

    def import_url(
        self,
        caller: Principal,
        *,
        url: str,
        model_type: str,
        name: str | None = None,
        sha256: str | None = None,
        allowed_roles: Sequence[str] = (),
    ) -> Checkpoint:
        """Record the model as `Importing` and download it in the background.

        The URL is checked here too (scheme, addresses), so an obviously refused one is a
        400 at once; the download checks every hop again. The full URL is kept only in
        memory for the download: it may carry a token.
        """
        try:
            self._fetcher.check(url)
        except DownloadFailed as error:
            raise Invalid(str(error)) from None
        if name is None:
            name = name_from_url(url)
            problem = model_name_problem(name)
            if problem is not None:
                raise Invalid(
                    f"The URL does not end in a usable file name ({problem}); give the model "
                    "a name."
                )
        roles = self._known_roles(allowed_roles)
        if sha256 is not None:
            self._refuse_duplicate(model_type, sha256)
        self._ensure_name_free(model_type, name)
        checkpoint_id = new_id(self._clock)
        now = timestamp(self._clock)
        doc: Doc = {
            "name": name,
            "type": model_type,
            "size": None,
            "sha256": None,
            "declared_sha256": sha256,
            "status": CHECKPOINT_IMPORTING,
            "allowed_roles": roles,
            "created_by": caller.username,
            "created_at": now,
            "updated_at": now,
            "object_key": f"checkpoints/{checkpoint_id}/{name}",
            "upload_id": None,
            "source": public_source(url),
            "progress": {"bytes_done": 0, "bytes_total": None},
            "error": None,
        }
        item = self._records.create(CHECKPOINT, checkpoint_id, doc)
        try:
            self._claim_name(model_type, name, checkpoint_id)
        except BaseException:
            self._forget(checkpoint_id)
            raise
        job = _Job(self._stopping)
        with self._lock:
            self._jobs[checkpoint_id] = job
        try:
            self._executor.submit(self._run_import, item, url, job)
        except RuntimeError:  # the executor is shut down: the server is stopping
            self._end_job(checkpoint_id)
            self._fail_import(checkpoint_id, "The server is stopping; import the model again.")
            return checkpoint_from(self._item(checkpoint_id))
        return checkpoint_from(item)

    def _run_import(self, item: Item, url: str, job: _Job) -> None:
        """The background half of `import_url`; records every outcome on the model."""
        checkpoint_id = item.key
        try:
            job.check()
            self._download(item, url, job)
        except _Gone:
            self._blobs.delete(item.doc["object_key"])
        except _Stopped:
            self._fail_import(checkpoint_id, "The server stopped during the import; import again.")
        except TooLarge:
            limit = human_size(self._policy.max_size)
            self._fail_import(checkpoint_id, f"The file is larger than the {limit} allowed.")
        except (RefusedUrl, DownloadFailed) as error:
            self._fail_import(checkpoint_id, str(error))
        except (OSError, http.client.HTTPException) as error:
            reason = str(error) or type(error).__name__
            self._fail_import(checkpoint_id, f"The download failed: {reason}.")
        except Exception:
            logger.exception("The import of model %s failed unexpectedly", checkpoint_id)
            self._fail_import(checkpoint_id, "The import failed unexpectedly; see the server log.")
        finally:
            self._end_job(checkpoint_id)

    def _download(self, item: Item, url: str, job: _Job) -> None:
        doc = item.doc
        key = doc["object_key"]
        download = self._fetcher.open(url)
        try:
            job.attach(download)
            total = download.length
            if total is not None and total > self._policy.max_size:
                raise TooLarge(f"The server announced {total} bytes.")
            self._progress(item.key, 0, total)
            reader = _ImportReader(
                download,
                job,
                lambda done: self._progress(item.key, done, total),
                self._policy.progress_interval,
            )
            size = self._blobs.put_stream(key, reader, size_limit=self._policy.max_size)
        finally:
            download.close()
        sha256 = reader.sha256()
        declared = doc["declared_sha256"]
        if declared is not None and sha256 != declared:
            self._blobs.delete(key)
            raise DownloadFailed(
                f"The downloaded file's SHA-256 is {sha256}, not the {declared} given, so it "
                "was not kept."
            )
        try:
            self._change(
                self._item(item.key),
                self._moving(CHECKPOINT_IMPORTING, "finish"),
                status=CHECKPOINT_ACTIVE,
                size=size,
                sha256=sha256,
                progress=None,
            )
        except (NotFound, Conflict):
            raise _Gone from None
        self._index_content(doc["type"], sha256, item.key)

    def _progress(self, checkpoint_id: str, done: int, total: int | None) -> None:
        item = self._records.get(CHECKPOINT, checkpoint_id)
        if item is None:
            raise _Gone
        try:
            self._change(
                item,
                self._moving(CHECKPOINT_IMPORTING, "update"),
                progress={"bytes_done": done, "bytes_total": total},
            )
        except (NotFound, Conflict):
            raise _Gone from None

    def _fail_import(self, checkpoint_id: str, error: str) -> None:
        item = self._records.get(CHECKPOINT, checkpoint_id)
        if item is not None:
            logger.warning("Import of model %s failed: %s", checkpoint_id, error)
            self._fail(item, CHECKPOINT_IMPORTING, error)

    def _end_job(self, checkpoint_id: str) -> None:
        with self._lock:
            self._jobs.pop(checkpoint_id, None)

    # -- housekeeping ----------------------------------------------------------------------

    def sweep(self) -> int:
        """Fail what no event will ever finish; return how many models were failed.

        Uploads not completed within `upload_deadline` (their parts are dropped, and so are
        multipart uploads no record knows of), and completions or imports whose record has
        not moved for `stall_deadline` (the process running them died). The local stack
        runs this periodically; on AWS a scheduled invocation will.
        """
        self._blobs.sweep_abandoned(self._policy.upload_deadline)
        now = self._clock()
        failed = 0
        for item in self._records.scan(CHECKPOINT):
            doc = item.doc
            status = doc["status"]
            if status == CHECKPOINT_UPLOADING:
                if now - _epoch(doc["created_at"]) <= self._policy.upload_deadline:
                    continue
                hours = self._policy.upload_deadline / 3600
                error = f"The upload was not completed within {hours:g} h. Upload it again."
            elif status in (CHECKPOINT_COMPLETING, CHECKPOINT_IMPORTING):
                with self._lock:
                    running = item.key in self._jobs
                if running or now - _epoch(doc["updated_at"]) <= self._policy.stall_deadline:
                    continue
                what = "completing the upload" if status == CHECKPOINT_COMPLETING else "importing"
                error = f"The server stopped while {what}. Try again."
            else:
                continue
            if self._fail(item, status, error):
                failed += 1
        return failed

    def close(self) -> None:
        """Stop running imports (they end `Failed`) and the thread pool, if it is ours."""
        self._stopping.set()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.interrupt()
        if self._owns_executor:
            # Queued imports still start, see the flag and fail at once.
            self._executor.shutdown(wait=True)

    # -- helpers ---------------------------------------------------------------------------

    def _item(self, checkpoint_id: str) -> Item:
        item = self._records.get(CHECKPOINT, checkpoint_id)
        if item is None:
            raise self._gone(checkpoint_id)
        return item

    @staticmethod
    def _gone(checkpoint_id: str) -> NotFound:
        return NotFound(f"No model with id {checkpoint_id!r}.")

    @staticmethod
    def _busy(doc: Doc) -> Conflict:
        return Conflict(f"Model {doc['name']!r} is being changed by others; try again.")

    @staticmethod
    def _not_now(doc: Doc, action: str, advice: str = "") -> Conflict:
        reasons = {
            CHECKPOINT_UPLOADING: "its upload is still in progress",
            CHECKPOINT_COMPLETING: "its upload is being completed right now",
            CHECKPOINT_IMPORTING: "the server is importing it",
            CHECKPOINT_ACTIVE: "it is already complete",
            CHECKPOINT_FAILED: f"it failed ({doc.get('error') or 'no reason kept'})",
        }
        tail = f"; {advice}" if advice else ""
        return Conflict(f"Cannot {action} model {doc['name']!r}: {reasons[doc['status']]}{tail}.")

    def _expect(self, doc: Doc, status: str, action: str) -> None:
        if doc["status"] != status:
            raise self._not_now(doc, action)

    def _moving(self, status: str, action: str) -> Callable[[Doc], Doc]:
        """A `_change` check: refuse unless the model is (still) in `status`."""

        def check(doc: Doc) -> Doc:
            if doc["status"] != status:
                raise self._not_now(doc, action)
            return doc

        return check

    def _change(self, item: Item, check: Callable[[Doc], Doc], **changes: Any) -> Item:
        """Write `changes` over the newest version of the model.

        When someone else wrote in between (a rename during an import's progress writes),
        the record is read again and `check` decides on the fresh document whether the
        change still applies. Raises NotFound once the model is deleted.
        """
        for _ in range(_WRITE_ATTEMPTS):
            doc = {**check(dict(item.doc)), **changes, "updated_at": timestamp(self._clock)}
            try:
                return self._records.update(
                    CHECKPOINT, item.key, doc, expected_version=item.version
                )
            except VersionConflict:
                item = self._item(item.key)
            except NotFound:
                raise self._gone(item.key) from None
        raise self._busy(item.doc)

    def _fail(self, item: Item, status: str, error: str) -> bool:
        """Mark the model `Failed` if it is still in `status`, and drop its bytes; False when
        it was deleted or moved on meanwhile."""
        try:
            self._change(item, self._moving(status, "fail"), status=CHECKPOINT_FAILED, error=error)
        except (NotFound, Conflict):
            return False
        if item.doc.get("upload_id"):
            self._blobs.abort_multipart(item.doc["object_key"], item.doc["upload_id"])
        if status != CHECKPOINT_UPLOADING:
            self._blobs.delete(item.doc["object_key"])
        return True

    def _reopen(self, item: Item) -> None:
        """Back from `Completing` to `Uploading` after a completion that did not happen."""
        try:
            self._change(
                item, self._moving(CHECKPOINT_COMPLETING, "reopen"), status=CHECKPOINT_UPLOADING
            )
        except NotFound:
            # Deleted while completing: the deletion could not drop the claimed upload.
            self._blobs.abort_multipart(item.doc["object_key"], item.doc["upload_id"])
        except Conflict:
            pass

    def _forget(self, checkpoint_id: str) -> None:
        with contextlib.suppress(NotFound):
            self._records.delete(CHECKPOINT, checkpoint_id)

    def _clean_up(self, item: Item) -> None:
        """After the record is gone: free its name and content claims, drop its bytes."""
        doc = item.doc
        self._release(NAME_CLAIM, _name_key(doc["type"], doc["name"]), item.key)
        if doc["sha256"]:
            self._release(CONTENT, _content_key(doc["type"], doc["sha256"]), item.key)
        if doc.get("upload_id"):
            self._blobs.abort_multipart(doc["object_key"], doc["upload_id"])
        self._blobs.delete(doc["object_key"])

    def _release(self, kind: str, key: str, checkpoint_id: str) -> None:
        """Delete a claim if it is still this model's."""
        claim = self._records.get(kind, key)
        if claim is None or claim.doc["id"] != checkpoint_id:
            return
        # Failing means it was taken over meanwhile.
        with contextlib.suppress(NotFound, VersionConflict):
            self._records.delete(kind, key, expected_version=claim.version)

    def _reader_roles(self, caller: Principal) -> frozenset[str] | None:
        """None for model managers (they see everything), else the caller's roles."""
        if caller.holds(PERMISSION_CHECKPOINT):
            return None
        user = self._records.get(USER, caller.username)
        return frozenset(user.doc["roles"]) if user is not None else frozenset()

    def _known_roles(self, names: Iterable[str]) -> list[str]:
        unique = list(dict.fromkeys(names))
        self._access.known_roles(unique)
        return unique

    def _check_size(self, size: int) -> None:
        if size > self._policy.max_size:
            raise TooLarge(
                f"The model is {human_size(size)}; this deployment takes models up to "
                f"{human_size(self._policy.max_size)}."
            )

    def _plan(self, size: int) -> tuple[int, int]:
        """Part size and count: the configured size (at least the backend's minimum), raised
        to whole MiB when the file would otherwise need more than S3's 10,000 parts."""
        part_size = max(self._policy.part_size, self._blobs.min_part_size)
        needed = -(-size // MAX_PART_NUMBER)
        if needed > part_size:
            part_size = -(-needed // MIB) * MIB
        return part_size, max(1, -(-size // part_size))

    def _sign(self, key: str, upload_id: str, numbers: Iterable[int]) -> PartUrls:
        ttl = self._policy.part_url_ttl
        parts = [
            PartUrl(number, self._blobs.part_url(key, upload_id, number, expires_in=ttl))
            for number in numbers
        ]
        return PartUrls(parts, _moment(self._clock() + ttl))

    # -- name and content claims -------------------------------------------------------------

    def _holder(self, claim: Item, key: str) -> Item | None:
        """The model a name claim really belongs to: it exists, is not Failed, and still has
        that name. None means the claim is stale."""
        holder = self._records.get(CHECKPOINT, claim.doc["id"])
        if (
            holder is None
            or holder.doc["status"] == CHECKPOINT_FAILED
            or _name_key(holder.doc["type"], holder.doc["name"]) != key
        ):
            return None
        return holder

    @staticmethod
    def _taken(holder: Item) -> Conflict:
        doc = holder.doc
        return Conflict(
            f"A {doc['type']} model named {doc['name']!r} already exists; pick another name or "
            "delete that model first."
        )

    def _ensure_name_free(self, model_type: str, name: str) -> None:
        """Fail early, before any storage is touched; `_claim_name` decides for real."""
        key = _name_key(model_type, name)
        claim = self._records.get(NAME_CLAIM, key)
        if claim is not None:
            holder = self._holder(claim, key)
            if holder is not None:
                raise self._taken(holder)

    def _claim_name(self, model_type: str, name: str, checkpoint_id: str) -> None:
        key = _name_key(model_type, name)
        for _ in range(_WRITE_ATTEMPTS):
            try:
                self._records.create(NAME_CLAIM, key, {"id": checkpoint_id})
                return
            except AlreadyExists:
                pass
            claim = self._records.get(NAME_CLAIM, key)
            if claim is None:
                continue
            if claim.doc["id"] == checkpoint_id:
                return
            holder = self._holder(claim, key)
            if holder is not None:
                raise self._taken(holder)
            try:
                self._records.update(
                    NAME_CLAIM, key, {"id": checkpoint_id}, expected_version=claim.version
                )
            except (VersionConflict, NotFound):
                continue
            self._replace_failed(claim.doc["id"], key)
            return
        raise Conflict(f"The name {name!r} is being taken right now; try again.")

    def _replace_failed(self, checkpoint_id: str, key: str) -> None:
        """Drop a Failed model whose name a new model just took over."""
        item = self._records.get(CHECKPOINT, checkpoint_id)
        if (
            item is None
            or item.doc["status"] != CHECKPOINT_FAILED
            or _name_key(item.doc["type"], item.doc["name"]) != key
        ):
            return
        try:
            self._records.delete(CHECKPOINT, checkpoint_id, expected_version=item.version)
        except (NotFound, VersionConflict):
            return
        self._clean_up(item)

    def _duplicate_of(self, model_type: str, sha256: str) -> Item | None:
        entry = self._records.get(CONTENT, _content_key(model_type, sha256))
        if entry is None:
            return None
        holder = self._records.get(CHECKPOINT, entry.doc["id"])
        if (
            holder is None
            or holder.doc["status"] != CHECKPOINT_ACTIVE
            or holder.doc["sha256"] != sha256
            or holder.doc["type"] != model_type
        ):
            return None
        return holder

    def _refuse_duplicate(self, model_type: str, sha256: str) -> None:
        existing = self._duplicate_of(model_type, sha256)
        if existing is not None:
            raise DuplicateContent(
                f"The {model_type} model {existing.doc['name']!r} already has this content "
                "(same SHA-256); use it instead of uploading the file again.",
                existing_id=existing.key,
            )

    def _index_content(self, model_type: str, sha256: str, checkpoint_id: str) -> None:
        """Remember an Active model with this content, unless another one is remembered."""
        key = _content_key(model_type, sha256)
        try:
            self._records.create(CONTENT, key, {"id": checkpoint_id})
            return
        except AlreadyExists:
            pass
        entry = self._records.get(CONTENT, key)
        if entry is None or self._duplicate_of(model_type, sha256) is not None:
            return
        # Advisory: if another writer got there first, its choice is as good.
        with contextlib.suppress(NotFound, VersionConflict):
            self._records.update(
                CONTENT, key, {"id": checkpoint_id}, expected_version=entry.version
            )
