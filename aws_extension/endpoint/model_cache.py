"""A disk cache of model files fetched by URL, keyed by their SHA-256.

An endpoint serves many jobs with few models, and a checkpoint is gigabytes: each file is
fetched once, verified, and kept until the disk budget needs its room. Files are named
`<sha256><suffix>`, so two names for one content share a file and a renamed model is no new
download. The rules:

- A download streams into `.partial/` while hashing, then is renamed into place atomically:
  a crash never leaves a half file under a final name, and a file with the wrong SHA-256
  never becomes visible.
- Concurrent jobs asking for one model wait for a single download and share its outcome.
- `lease()` marks files in use; eviction (least recently used first, by mtime, which a lease
  refreshes) never removes a leased file. The budget is a target: the models of the running
  jobs are kept even when they alone exceed it.
- Every request has connect and read timeouts and a whole-download deadline. Error details
  never contain the URL: a presigned URL is a credential.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path

import requests

from aws_extension.endpoint.errors import ChecksumMismatch, FetchFailed, FetchRefused
from aws_extension.endpoint.invocation import ModelRef

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
PARTIAL_DIR = ".partial"


class ModelCache:
    def __init__(
        self,
        root: Path,
        budget_bytes: int | None = None,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        deadline_s: float = 3600.0,
        session: requests.Session | None = None,
    ) -> None:
        self.root = Path(root)
        self.budget_bytes = budget_bytes
        self._timeout = (connect_timeout, read_timeout)
        self._deadline_s = deadline_s
        self._session = session or requests.Session()
        self._lock = threading.Lock()
        self._inflight: dict[str, Future[None]] = {}
        self._leases: Counter[str] = Counter()
        self._partial = self.root / PARTIAL_DIR
        self._partial.mkdir(parents=True, exist_ok=True)
        # Partials are per download; any left over is from a process that died mid-way.
        for stale in self._partial.iterdir():
            stale.unlink(missing_ok=True)

    def path_for(self, ref: ModelRef) -> Path:
        return self.root / f"{ref.sha256}{ref.suffix}"

    @contextlib.contextmanager
    def lease(self, refs: Sequence[ModelRef]) -> Iterator[list[Path]]:
        """Fetch (when missing) and hold the models, in order, for the `with` block."""
        held: list[Path] = []
        try:
            for ref in refs:
                held.append(self._acquire(ref))
            yield held
        finally:
            with self._lock:
                for path in held:
                    self._leases[path.name] -= 1
                    if self._leases[path.name] <= 0:
                        del self._leases[path.name]
            self._make_room(0)  # files kept over budget while in use can go now

    def _acquire(self, ref: ModelRef) -> Path:
        path = self.path_for(ref)
        while True:
            with self._lock:
                pending = self._inflight.get(path.name)
                if pending is None and path.exists():
                    self._leases[path.name] += 1
                    os.utime(path)
                    return path
                owner = pending is None
                if owner:
                    pending = self._inflight[path.name] = Future()
            if not owner:
                pending.result()  # raises the download's own error for every waiter
                continue  # the file is there now (or was evicted again: fetch anew)
            try:
                self._download(ref, path)
            except BaseException as error:
                pending.set_exception(error)
                raise
            else:
                pending.set_result(None)
                return path
            finally:
                with self._lock:
                    del self._inflight[path.name]

    def _download(self, ref: ModelRef, path: Path) -> None:
        """Stream `ref` into place; on success the file is leased to the caller."""
        what = f"{ref.kind} model {ref.name!r}"
        started = time.monotonic()
        partial = self._partial / f"{path.name}.{uuid.uuid4().hex}"
        try:
            response = self._session.get(ref.url, stream=True, timeout=self._timeout)
        except requests.RequestException as error:
            raise FetchFailed(f"Fetching the {what} failed: {type(error).__name__}.") from None
        with response:
            if 400 <= response.status_code < 500:
                raise FetchRefused(
                    f"The URL of the {what} answered {response.status_code}: it may have "
                    "expired; submit the job again for a fresh one."
                )
            if response.status_code != 200:
                raise FetchFailed(f"The URL of the {what} answered {response.status_code}.")
            expected = _content_length(response)
            if expected is not None:
                self._make_room(expected)
            digest = hashlib.sha256()
            received = 0
            try:
                with partial.open("wb") as out:
                    for chunk in response.iter_content(CHUNK_BYTES):
                        if time.monotonic() - started > self._deadline_s:
                            raise FetchFailed(
                                f"Fetching the {what} took over {self._deadline_s:.0f} s."
                            )
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                if expected is not None and received != expected:
                    raise FetchFailed(
                        f"The {what} arrived truncated ({received} of {expected} bytes)."
                    )
                if digest.hexdigest() != ref.sha256:
                    raise ChecksumMismatch(
                        f"The {what} has SHA-256 {digest.hexdigest()[:16]}..., but the job "
                        f"says {ref.sha256[:16]}...: the stored file or the job is wrong."
                    )
            except requests.RequestException as error:
                partial.unlink(missing_ok=True)
                raise FetchFailed(f"Fetching the {what} failed: {type(error).__name__}.") from None
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        with self._lock:
            os.replace(partial, path)
            self._leases[path.name] += 1
        logger.info("fetched %s (%d bytes) in %.1f s", what, received, time.monotonic() - started)
        self._make_room(0)

    def _make_room(self, incoming: int) -> None:
        """Evict unleased files, least recently used first, until `incoming` fits the budget."""
        if self.budget_bytes is None:
            return
        with self._lock:
            files = [entry for entry in self.root.iterdir() if entry.is_file()]
            stats = {entry: entry.stat() for entry in files}
            total = sum(stat.st_size for stat in stats.values()) + incoming
            idle = sorted(
                (entry for entry in files if entry.name not in self._leases),
                key=lambda entry: stats[entry].st_mtime,
            )
            for entry in idle:
                if total <= self.budget_bytes:
                    break
                entry.unlink(missing_ok=True)
                total -= stats[entry].st_size
                logger.info("evicted %s from the model cache", entry.name)
            if total > self.budget_bytes:
                logger.warning(
                    "model cache holds %d bytes, over its budget of %d: the rest is in use",
                    total,
                    self.budget_bytes,
                )


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None or response.headers.get("Content-Encoding"):
        return None
    try:
        return int(value)
    except ValueError:
        return None
