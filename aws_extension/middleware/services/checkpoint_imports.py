"""Server-side model imports: a URL downloaded in the background into the blob store.

Each import runs on a thread pool the `Importer` owns (or is given). The bytes stream from
the guarded fetcher (`security.outbound`) to `Blobs.put_stream` without ever being held
whole, hashed and counted on the way; progress is written to the model every few seconds,
which also shows the sweep that the import is alive. Every outcome ends on the model:
`Active` with size and SHA-256, or `Failed` with the reason. A deleted model stops its
import, and so does the server shutting down (the model then ends `Failed`).

On AWS the download will run in a separate asynchronous invocation rather than a thread of
the API's Lambda, which ends with the response; the rules stay the same.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor

from aws_extension.contract import CHECKPOINT_ACTIVE, CHECKPOINT_IMPORTING
from aws_extension.middleware.blobs import Blobs
from aws_extension.middleware.checkpoint_policy import MIB, CheckpointPolicy
from aws_extension.middleware.errors import Conflict, Invalid, NotFound, TooLarge
from aws_extension.middleware.records import Item
from aws_extension.middleware.security.outbound import (
    Download,
    DownloadFailed,
    Fetcher,
    RefusedUrl,
)
from aws_extension.middleware.services.checkpoint_store import (
    CHECKPOINT,
    CheckpointStore,
    human_size,
)

logger = logging.getLogger(__name__)

#: Bytes per read: small enough to notice a cancellation and report progress often.
_READ_CHUNK = MIB


class _Gone(Exception):
    """The model was deleted (or failed by someone else) while its import ran."""


class _Stopped(Exception):
    """The server is shutting down while an import runs."""


class _Job:
    """One import in flight, so that a deletion or shutdown can stop it mid-download."""

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
        try:
            data = self._download.read(_READ_CHUNK if size < 0 else min(size, _READ_CHUNK))
        except Exception:
            self._job.check()  # a cancellation is what broke the connection, if any
            raise
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


class Importer:
    def __init__(
        self,
        store: CheckpointStore,
        blobs: Blobs,
        policy: CheckpointPolicy,
        fetcher: Fetcher,
        *,
        executor: Executor | None = None,
    ) -> None:
        """`executor` runs the downloads; by default the importer owns a thread pool of
        `policy.import_workers` threads and shuts it down in `close`."""
        self._store = store
        self._blobs = blobs
        self._policy = policy
        self._fetcher = fetcher
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=policy.import_workers, thread_name_prefix="checkpoint-import"
        )
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}

    def check(self, url: str) -> None:
        """Refuse at once what the download would refuse at its first hop (400)."""
        try:
            self._fetcher.check(url)
        except DownloadFailed as error:
            raise Invalid(str(error)) from None

    def start(self, item: Item, url: str) -> Item:
        """Download `url` into the `Importing` model `item`, in the background.

        The full URL stays in memory only: it may carry a token.
        """
        job = _Job(self._stopping)
        with self._lock:
            self._jobs[item.key] = job
        try:
            self._executor.submit(self._run, item, url, job)
        except RuntimeError:  # the pool is shut down: the server is stopping
            self._end(item.key)
            self._fail(item.key, "The server is stopping; import the model again.")
            return self._store.item(item.key)
        return item

    def running(self, checkpoint_id: str) -> bool:
        with self._lock:
            return checkpoint_id in self._jobs

    def cancel(self, checkpoint_id: str) -> None:
        """Stop the import of a deleted model; it removes what it wrote."""
        with self._lock:
            job = self._jobs.get(checkpoint_id)
        if job is not None:
            job.cancel()

    def close(self) -> None:
        """Stop every import (they end `Failed`) and the thread pool, if it is ours."""
        self._stopping.set()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.interrupt()
        if self._owns_executor:
            # Queued imports still start, see the flag and fail at once.
            self._executor.shutdown(wait=True)

    def _run(self, item: Item, url: str, job: _Job) -> None:
        checkpoint_id = item.key
        try:
            job.check()
            self._download(item, url, job)
        except _Gone:
            self._blobs.delete(item.doc["object_key"])
        except _Stopped:
            self._fail(checkpoint_id, "The server stopped during the import; import again.")
        except TooLarge:
            limit = human_size(self._policy.max_size)
            self._fail(checkpoint_id, f"The file is larger than the {limit} allowed.")
        except (RefusedUrl, DownloadFailed) as error:
            self._fail(checkpoint_id, str(error))
        except (OSError, http.client.HTTPException) as error:
            reason = str(error) or type(error).__name__
            self._fail(checkpoint_id, f"The download failed: {reason}.")
        except Exception:
            logger.exception("The import of model %s failed unexpectedly", checkpoint_id)
            self._fail(checkpoint_id, "The import failed unexpectedly; see the server log.")
        finally:
            self._end(checkpoint_id)

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
        store = self._store
        try:
            store.change(
                store.item(item.key),
                store.moving(CHECKPOINT_IMPORTING, "finish"),
                status=CHECKPOINT_ACTIVE,
                size=size,
                sha256=sha256,
                progress=None,
            )
        except (NotFound, Conflict):
            raise _Gone from None
        store.index_content(doc["type"], sha256, item.key)

    def _progress(self, checkpoint_id: str, done: int, total: int | None) -> None:
        store = self._store
        try:
            store.change(
                store.item(checkpoint_id),
                store.moving(CHECKPOINT_IMPORTING, "update"),
                progress={"bytes_done": done, "bytes_total": total},
            )
        except (NotFound, Conflict):
            raise _Gone from None

    def _fail(self, checkpoint_id: str, error: str) -> None:
        item = self._store.records.get(CHECKPOINT, checkpoint_id)
        if item is not None:
            logger.warning("Import of model %s failed: %s", checkpoint_id, error)
            self._store.fail(item, CHECKPOINT_IMPORTING, error)

    def _end(self, checkpoint_id: str) -> None:
        with self._lock:
            self._jobs.pop(checkpoint_id, None)
