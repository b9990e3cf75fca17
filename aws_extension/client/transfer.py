"""The part engine of the uploader: reads a file in order and PUTs its parts to signed URLs.

It knows nothing of the API, only of part URLs (S3 presigned or the local stack's signed
`/blobs/...` URLs, which behave alike: one PUT of a part's bytes answers 200 with the quoted
MD5 of those bytes as `ETag`), so the same engine serves the API upload, the benchmark
against S3 and the tests against the folder backend.

How the work is split, and why:

- One reader thread reads the parts in order, because the file's SHA-256 (A1111 shows its
  first ten hex digits as the model hash) must see the bytes in order. It hashes every part,
  also those an earlier run already sent, since reading is fast and sending is slow.
- Parts to send go to a bounded number of upload workers through a pool of at most
  `workers + 1` part buffers, allocated once and reused: the reader waits for a free buffer,
  so memory stays at (workers + 1) x part size whatever the file's size.
- The caller's thread only waits for events: finished parts (so it can record them for a
  resume), errors, and a tick for progress. Callbacks therefore run in the caller's thread;
  one that raises stops the transfer, which is how a user cancels.
- A failed PUT is retried with exponential backoff; an expired URL is replaced by a fresh one
  (`UrlBook`) without counting as a failure. A part counts only once its ETag equals the MD5
  of the bytes sent, so parts damaged on the way are caught before the completion; except
  on a direct connection to this machine (a loopback address, no proxy), where the bytes
  only move through the kernel's memory between two processes, nothing on the way can
  change them, and computing the MD5 a second time would cost as much CPU (about 2 s per
  GiB) as the server's own MD5, on the same cores (`verify_etags`).

One PUT is `part_put.PartSender`'s job (http.client for plain HTTP, requests otherwise).
Only the standard library and requests: this runs inside the WebUI.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from aws_extension import contract
from aws_extension.client import errors
from aws_extension.client.part_put import PartSender, PutFailed, TransferCancelled

log = logging.getLogger(__name__)

MIB = 1024 * 1024
#: Chunk for reading parts that need no sending and for hashing a whole file.
READ_CHUNK = MIB
#: Statuses after which the same PUT may well succeed.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: How many fresh URLs a part may use up on expiry before that counts as failing.
MAX_URL_REFRESHES = 3
#: Refresh a URL this many seconds before it expires rather than after a 403.
EXPIRY_MARGIN = 60.0
#: Seconds of history the moving average of the rate looks at.
RATE_WINDOW = 5.0


class FileChanged(errors.ApiError):
    """The file changed while it was read, so the uploaded bytes would not be one version."""


class PartFailed(errors.ApiError):
    """A part could not be stored: refused for good, or failing on every attempt."""


@dataclass(frozen=True)
class FilePlan:
    """A file cut into parts of `part_size` bytes (the last one may be shorter)."""

    path: Path
    size: int
    part_size: int
    mtime_ns: int

    @property
    def part_count(self) -> int:
        return max(1, -(-self.size // self.part_size))

    def part_length(self, number: int) -> int:
        return min(self.part_size, self.size - (number - 1) * self.part_size)


@dataclass(frozen=True)
class UploadProgress:
    """One progress report, for a bar: what is in the cloud, how fast, how long to go.

    `phase` is "hashing" (reading the file for its SHA-256 before sending), "uploading" or
    "completing". `bytes_done` counts bytes stored in the cloud, including parts an earlier,
    interrupted run sent, plus the bytes of parts on their way (a part that must be sent again
    takes its bytes back). `rate` (bytes/s) is a moving average over the last few seconds of
    this run and `eta` the seconds left at that rate; both are None until there is enough to
    measure.
    """

    path: str
    name: str
    phase: str
    bytes_done: int
    bytes_total: int
    parts_done: int
    parts_total: int
    rate: float | None
    eta: float | None

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.bytes_total if self.bytes_total else 1.0


class RateMeter:
    """Bytes per second over a sliding window, from samples of a growing byte count."""

    def __init__(self, window: float = RATE_WINDOW, clock: Callable[[], float] = time.monotonic):
        self._window = window
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, count: int) -> float | None:
        """Record the count now; return the rate, or None before half a second of history."""
        now = self._clock()
        self._samples.append((now, count))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self._window:
            self._samples.popleft()
        first_time, first_count = self._samples[0]
        span = now - first_time
        if span < 0.5:
            return None
        return max(0.0, (count - first_count) / span)


def parse_expiry(value: Any) -> float | None:
    """Epoch seconds of an `expires_at` given as ISO 8601 text or a number; None if unusable."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        # Python 3.10's fromisoformat does not read the "Z" suffix.
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


#: Fetches fresh URLs for part numbers: ({part_number: url}, expiry in epoch seconds or None).
UrlFetcher = Callable[[list[int]], tuple[dict[int, str], float | None]]


class UrlBook:
    """The part URLs of one upload: handed out per part, renewed in batches before expiry.

    Renewal runs under a lock, and asks for the part wanted plus the next parts still to send
    that lack a usable URL, so one request serves every worker instead of one each.
    """

    def __init__(
        self,
        fetch: UrlFetcher,
        order: Iterable[int],
        *,
        batch: int = 100,
        margin: float = EXPIRY_MARGIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`order` lists the parts to send in the order they will be asked for."""
        self._fetch = fetch
        # Parts still to send, in order (a dict is an ordered set with O(1) removal).
        self._pending = dict.fromkeys(order)
        self._batch = batch
        self._margin = margin
        self._clock = clock
        self._lock = threading.Lock()
        self._urls: dict[int, tuple[str, float | None]] = {}

    def add(self, urls: dict[int, str], expires_at: float | None) -> None:
        with self._lock:
            for number, url in urls.items():
                self._urls[number] = (url, expires_at)

    def get(self, number: int) -> str:
        with self._lock:
            entry = self._urls.get(number)
            if entry is None or self._stale(entry):
                self._renew(number)
                entry = self._urls[number]
            return entry[0]

    def done(self, number: int) -> None:
        """Part `number` is stored: its URL is never needed again, nor renewed."""
        with self._lock:
            self._pending.pop(number, None)
            self._urls.pop(number, None)

    def discard(self, number: int, url: str) -> None:
        """Forget `url` (refused as expired); a URL another worker already renewed stays."""
        with self._lock:
            entry = self._urls.get(number)
            if entry is not None and entry[0] == url:
                del self._urls[number]

    def _stale(self, entry: tuple[str, float | None]) -> bool:
        expires_at = entry[1]
        return expires_at is not None and expires_at - self._margin <= self._clock()

    def _renew(self, number: int) -> None:
        numbers = [number]
        for other in self._pending:
            if len(numbers) >= self._batch:
                break
            entry = self._urls.get(other)
            if other != number and (entry is None or self._stale(entry)):
                numbers.append(other)
        urls, expires_at = self._fetch(numbers)
        if number not in urls:
            raise PartFailed(f"The server sent no URL for part {number}.")
        for part, url in urls.items():
            self._urls[part] = (url, expires_at)


class _Counters:
    """Bytes confirmed and bytes on their way, shared by the workers and the caller's thread."""

    def __init__(self, confirmed: int) -> None:
        self._lock = threading.Lock()
        self.confirmed = confirmed
        self.sent = 0  # bytes sent in this run, retried bytes taken back
        self._in_flight: dict[int, int] = {}

    def add(self, number: int, count: int) -> None:
        with self._lock:
            self._in_flight[number] = self._in_flight.get(number, 0) + count
            self.sent += count

    def rewind(self, number: int) -> None:
        with self._lock:
            self.sent -= self._in_flight.pop(number, 0)

    def finish(self, number: int, size: int) -> None:
        with self._lock:
            self._in_flight.pop(number, None)
            self.confirmed += size

    def snapshot(self) -> tuple[int, int]:
        """(bytes done including those on their way, bytes sent in this run)."""
        with self._lock:
            return self.confirmed + sum(self._in_flight.values()), self.sent


@dataclass(frozen=True)
class _Done:
    number: int
    etag: str
    size: int


@dataclass(frozen=True)
class _Hashed:
    sha256: str


@dataclass(frozen=True)
class _Failed:
    error: BaseException


def make_session(workers: int) -> requests.Session:
    """A session whose connection pool keeps one connection per worker alive."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(1, workers), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def sha256_file(
    path: Path, on_bytes: Callable[[int], None] | None = None, chunk: int = READ_CHUNK
) -> str:
    """SHA-256 of a file read in chunks into one reused buffer; `on_bytes` gets the count."""
    digest = hashlib.sha256()
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    done = 0
    with path.open("rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
            done += count
            if on_bytes is not None:
                on_bytes(done)
    return digest.hexdigest()


class PartEngine:
    """Sends the parts of files to part URLs; one engine may serve many files in turn.

    `attempts` is how often one part is tried before the transfer fails, with a delay of
    `backoff` x 2^n seconds (plus jitter) between tries. Each PUT has a `(connect_timeout,
    read_timeout)` timeout. `session` lets the caller bring its own (proxies, CA bundle); by
    default the engine makes one whose pool holds a connection per worker.

    `verify_etags`: compare each part's ETag with the MD5 of the bytes sent. None (the
    default) does so unless the PUT goes straight to a loopback address, with no proxy
    between (see the module's words on why).
    """

    def __init__(
        self,
        *,
        workers: int = 4,
        attempts: int = 5,
        backoff: float = 0.5,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        session: requests.Session | None = None,
        verify_etags: bool | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.workers = workers
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = (connect_timeout, read_timeout)
        self.verify_etags = verify_etags
        self._owns_session = session is None
        self._session = session if session is not None else make_session(workers)
        self._sender = PartSender(self._session, self.timeout)
        self._verify_by_origin: dict[tuple[str, str], bool] = {}

    def close(self) -> None:
        self._sender.close()
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> PartEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(
        self,
        plan: FilePlan,
        todo: Iterable[int],
        urls: UrlBook,
        *,
        on_part: Callable[[int, str], None] | None = None,
        on_tick: Callable[[int, int, int], None] | None = None,
        tick_seconds: float = 0.25,
    ) -> str:
        """Send the parts numbered in `todo`, hash the whole file; return its SHA-256 hex.

        `on_part(number, etag)` is called when a part is stored, `on_tick(bytes_done,
        bytes_sent, parts_done)` at most every `tick_seconds` and once at the end; both in
        the caller's thread. `bytes_done` counts the parts not in `todo` as done already.
        Raises PartFailed, FileChanged, OSError (reading), an ApiError from renewing URLs, or
        whatever a callback raised; the workers are stopped before it returns or raises.
        """
        wanted = sorted(set(todo))
        if any(not 1 <= n <= plan.part_count for n in wanted):
            raise ValueError(f"part numbers must lie within 1..{plan.part_count}")
        already = plan.size - sum(plan.part_length(n) for n in wanted)
        counters = _Counters(already)
        stop = threading.Event()
        events: queue.Queue[_Done | _Hashed | _Failed] = queue.Queue()
        work: queue.Queue[tuple[int, bytearray, int] | None] = queue.Queue()
        free: queue.Queue[bytearray] = queue.Queue()
        worker_count = min(self.workers, len(wanted))
        threads = [
            threading.Thread(
                target=self._read,
                args=(plan, set(wanted), worker_count + 1, work, free, events, stop),
                name="upload-reader",
                daemon=True,
            )
        ]
        threads += [
            threading.Thread(
                target=self._work,
                args=(work, free, urls, counters, events, stop),
                name=f"upload-worker-{index}",
                daemon=True,
            )
            for index in range(worker_count)
        ]
        for thread in threads:
            thread.start()
        sha256: str | None = None
        parts_done = plan.part_count - len(wanted)
        last_tick = 0.0
        recording = True  # False once on_part itself failed: it is not called again
        try:
            while sha256 is None or parts_done < plan.part_count:
                try:
                    event = events.get(timeout=tick_seconds)
                except queue.Empty:
                    event = None
                if isinstance(event, _Failed):
                    raise event.error
                if isinstance(event, _Hashed):
                    sha256 = event.sha256
                elif isinstance(event, _Done):
                    counters.finish(event.number, event.size)
                    parts_done += 1
                    if on_part is not None:
                        recording = False
                        on_part(event.number, event.etag)
                        recording = True
                now = time.monotonic()
                if on_tick is not None and now - last_tick >= tick_seconds:
                    last_tick = now
                    on_tick(*counters.snapshot(), parts_done)
            if on_tick is not None:
                on_tick(*counters.snapshot(), parts_done)
            return sha256
        finally:
            stop.set()
            for _ in range(worker_count):
                work.put(None)
            for thread in threads:
                # Every wait in the threads polls `stop`; a PUT stuck in a read ends at its
                # timeout, and daemon threads never keep the process alive.
                thread.join(timeout=5)
            if on_part is not None and recording:
                _record_late_parts(events, on_part)

    # -- threads ---------------------------------------------------------------------------

    @staticmethod
    def _read(
        plan: FilePlan,
        wanted: set[int],
        max_buffers: int,
        work: queue.Queue[tuple[int, bytearray, int] | None],
        free: queue.Queue[bytearray],
        events: queue.Queue[_Done | _Hashed | _Failed],
        stop: threading.Event,
    ) -> None:
        """Hash every part in order; hand the wanted ones to the workers in pooled buffers."""
        try:
            digest = hashlib.sha256()
            scratch = bytearray(min(READ_CHUNK, plan.part_size))
            allocated = 0
            with plan.path.open("rb", buffering=0) as handle:
                for number in range(1, plan.part_count + 1):
                    length = plan.part_length(number)
                    if number not in wanted:
                        _hash_exactly(handle, scratch, length, digest)
                        continue
                    buffer: bytearray | None = None
                    while buffer is None:
                        if stop.is_set():
                            return
                        if allocated < max_buffers and free.empty():
                            buffer = bytearray(plan.part_size)
                            allocated += 1
                        else:
                            try:
                                buffer = free.get(timeout=0.1)
                            except queue.Empty:
                                continue
                    view = memoryview(buffer)[:length]
                    _read_exactly(handle, view)
                    digest.update(view)
                    work.put((number, buffer, length))
                status = os.fstat(handle.fileno())
            if status.st_size != plan.size or status.st_mtime_ns != plan.mtime_ns:
                raise FileChanged(
                    f"{plan.path.name} changed while it was being uploaded: upload it again "
                    "once nothing writes to it any more."
                )
            events.put(_Hashed(digest.hexdigest()))
        except BaseException as error:
            stop.set()
            events.put(_Failed(error))

    def _work(
        self,
        work: queue.Queue[tuple[int, bytearray, int] | None],
        free: queue.Queue[bytearray],
        urls: UrlBook,
        counters: _Counters,
        events: queue.Queue[_Done | _Hashed | _Failed],
        stop: threading.Event,
    ) -> None:
        try:
            while (item := work.get()) is not None:
                number, buffer, length = item
                try:
                    if stop.is_set():
                        continue
                    view = memoryview(buffer)[:length]
                    etag = self._send_part(number, view, urls, counters, stop)
                    urls.done(number)
                    events.put(_Done(number, etag, length))
                except TransferCancelled:
                    continue
                except BaseException as error:
                    stop.set()
                    events.put(_Failed(error))
                finally:
                    free.put(buffer)
        finally:
            self._sender.release_thread()

    # -- one part ----------------------------------------------------------------------------

    def _send_part(
        self,
        number: int,
        data: memoryview,
        urls: UrlBook,
        counters: _Counters,
        stop: threading.Event,
    ) -> str:
        """PUT one part until it is stored with the right ETag; return the ETag."""
        expected: str | None = None
        failures = 0
        refreshes = 0
        while True:
            url = urls.get(number)
            if expected is None and self._must_verify(url):
                expected = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
            try:
                reply = self._sender.put(url, data, partial(counters.add, number), stop)
            except TransferCancelled:
                counters.rewind(number)
                raise
            except PutFailed as failed:
                counters.rewind(number)
                why = failed.why
            else:
                status, etag, body = reply.status, reply.etag, reply.body
                if status == 200 and expected is None and _is_md5_etag(etag):
                    return _quoted(etag)
                if status == 200 and expected is not None and _same_etag(etag, expected):
                    return expected
                counters.rewind(number)
                if status == 200 and expected is None:
                    why = "the server's answer carries no checksum (ETag)"
                elif status == 200:
                    why = "the stored part's checksum (ETag) differs from the bytes sent"
                elif status == 403 and _says_expired(body):
                    urls.discard(number, url)
                    refreshes += 1
                    if refreshes <= MAX_URL_REFRESHES:
                        log.info("Part %d: URL expired, using a fresh one.", number)
                        continue
                    why = "its URLs kept expiring (is this computer's clock right?)"
                elif status == 403:
                    # A URL refused for another reason may still be replaced by a good one.
                    urls.discard(number, url)
                    why = f"the server refused the URL ({status})"
                elif status == 404:
                    raise PartFailed(
                        f"Part {number} was refused: the server no longer knows this upload "
                        "(it was aborted, completed or cleaned up).",
                        status=status,
                    )
                elif status not in RETRY_STATUSES:
                    reason = f"{status} {reply.reason}".strip()
                    raise PartFailed(
                        f"Part {number} was refused by the server ({reason}).", status=status
                    )
                else:
                    why = f"the server answered {status} {reply.reason}".rstrip()
            failures += 1
            if failures >= self.attempts:
                raise PartFailed(
                    f"Part {number} could not be stored after {failures} attempts (last: {why})."
                )
            delay = self.backoff * 2 ** (failures - 1)
            delay += random.uniform(0, delay / 2)  # noqa: S311 - jitter, not cryptography
            log.warning(
                "Part %d failed (%s); attempt %d of %d in %.1f s.",
                number,
                why,
                failures + 1,
                self.attempts,
                delay,
            )
            if stop.wait(delay):
                raise TransferCancelled

    def _must_verify(self, url: str) -> bool:
        """Whether a part sent to `url` needs its ETag compared with the bytes' MD5."""
        if self.verify_etags is not None:
            return self.verify_etags
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        known = self._verify_by_origin.get(origin)
        if known is None:
            known = not (_is_loopback(parts.hostname) and self._sender.proxy_for(url) is None)
            self._verify_by_origin[origin] = known
        return known


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _record_late_parts(
    events: queue.Queue[_Done | _Hashed | _Failed], on_part: Callable[[int, str], None]
) -> None:
    """Record the parts stored while the transfer was stopping, so a resume skips them.

    Best effort, during a stop that already has its own error: a failure here is logged
    rather than raised, so that error stays the one the caller sees.
    """
    while True:
        try:
            event = events.get_nowait()
        except queue.Empty:
            return
        if isinstance(event, _Done):
            try:
                on_part(event.number, event.etag)
            except Exception as exc:
                log.warning("Could not record part %d (%s).", event.number, type(exc).__name__)
                return


def _read_exactly(handle: Any, view: memoryview) -> None:
    done = 0
    while done < len(view):
        count = handle.readinto(view[done:])
        if not count:
            raise FileChanged("The file became shorter while it was being uploaded.")
        done += count


def _hash_exactly(handle: Any, scratch: bytearray, length: int, digest: Any) -> None:
    view = memoryview(scratch)
    while length:
        count = handle.readinto(view[: min(length, len(view))])
        if not count:
            raise FileChanged("The file became shorter while it was being uploaded.")
        digest.update(view[:count])
        length -= count


def _quoted(etag: str) -> str:
    """An ETag as the completion takes it: quoted, lower case."""
    return f'"{etag.strip().strip(chr(34)).lower()}"'


def _is_md5_etag(received: str) -> bool:
    value = received.strip().strip('"')
    return len(value) == 32 and all(c in "0123456789abcdefABCDEF" for c in value)


def _same_etag(received: str, expected: str) -> bool:
    return received.strip().strip('"').lower() == expected.strip('"')


def _says_expired(body: bytes) -> bool:
    """The local stack answers code `url_expired`; S3 says "Request has expired"."""
    return contract.ERROR_URL_EXPIRED.encode() in body or b"Request has expired" in body
