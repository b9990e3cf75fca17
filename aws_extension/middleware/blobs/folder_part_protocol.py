"""The folder backend's part PUTs, received on worker threads that own the socket.

Why: a model upload is gigabytes of part bodies, and the local stack's server shares the
machine with the uploader. Through uvicorn and Starlette a body arrives in 64-256 KiB
`bytes` objects, each freshly allocated (page faults included) and copied two or three times
on the event loop's thread: measured here, 1.4-2.4 CPU seconds per GiB before the MD5 of the
ETag is even computed. A thread that owns the socket reads the body into one reused buffer
(`recv_into`), hashes it and writes it, and all three calls release the GIL, so the parts of
several connections use several cores: about 0.3 CPU seconds per GiB besides the MD5.

How: uvicorn makes one protocol object per connection from the class given as its `http`
setting, and `part_put_protocol(blobs)` returns such a class. It reads each request's head
on the event loop. A `PUT /blobs/parts/<upload id>/<part number>?...` over HTTP/1.1 with a
Content-Length (and without Transfer-Encoding or Expect) is served here: the transport stops
reading, a worker thread reads the body from a duplicate of the socket, stores it through
`FolderBlobs.open_part_writer`, answers exactly as the route in `folder_routes` would (the
ETag, or the same problem details), and hands the connection back to the event loop for the
next request. Any other request goes, with everything after it on that connection, to
uvicorn's own protocol, so the API and the route in `folder_routes` (which still serves part
PUTs this class leaves alone, such as chunked ones) see an ordinary connection.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import contextlib
import logging
import mmap
import queue
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote

from aws_extension.contract import ERROR_INTERNAL
from aws_extension.middleware.blobs.base import MAX_PART_SIZE, MIB
from aws_extension.middleware.blobs.folder import FolderBlobs, PartWriter
from aws_extension.middleware.errors import DomainError, domain_error_response, problem_response

log = logging.getLogger(__name__)

#: A request head longer than this is not a part PUT of ours: uvicorn gets it.
MAX_HEAD = 16 * 1024
#: Bytes read from the socket before one MD5 update and one write: few calls, little memory.
RECEIVE_BUFFER = MIB
#: Seconds a part's body may stall, and an answer may wait to be sent, before the connection
#: is dropped (uvicorn itself has no such limit; a vanished client must not hold a thread).
SOCKET_TIMEOUT = 60.0
#: Parts received at once; more wait for a thread, their bytes waiting in the kernel.
MAX_THREADS = 16
_PREFIX = "/blobs/parts/"


@dataclass(frozen=True)
class PartPut:
    """What a part PUT's head says, as the route in `folder_routes` would read it."""

    upload_id: str
    part_number: str
    key: str
    expires: str
    sig: str
    length: int
    close: bool


def parse_part_put(head: bytes) -> PartPut | None:
    """The part PUT in a request head (without its blank line), or None for anything else.

    None also for what this module leaves to uvicorn: other HTTP versions, a body without a
    Content-Length, Transfer-Encoding, Expect, folded or malformed header lines.
    """
    lines = head.decode("latin-1").split("\r\n")
    request_line = lines[0].split(" ")
    if len(request_line) != 3:
        return None
    method, target, version = request_line
    if method != "PUT" or version != "HTTP/1.1" or not target.startswith(_PREFIX):
        return None
    length: int | None = None
    close = False
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or " " in name or "\t" in name:
            return None
        name = name.lower()
        value = value.strip(" \t")
        if name == "content-length":
            if length is not None or not (value.isascii() and value.isdigit()):
                return None
            length = int(value)
        elif name in ("transfer-encoding", "expect"):
            return None
        elif name == "connection":
            close = "close" in (token.strip().lower() for token in value.split(","))
    if length is None:
        return None
    raw_path, _, query = target.partition("?")
    # As uvicorn and Starlette route it: the path decoded first, then matched by segments.
    segments = unquote(raw_path).split("/")
    if len(segments) != 5 or not segments[3] or not segments[4]:
        return None
    # The last of repeated parameters wins, as in Starlette's QueryParams.
    params = dict(parse_qsl(query, keep_blank_values=True))
    return PartPut(
        upload_id=segments[3],
        part_number=segments[4],
        key=params.get("key", ""),
        expires=params.get("expires", ""),
        sig=params.get("sig", ""),
        length=length,
        close=close,
    )


class _ClientGone(Exception):
    """The client closed the connection (or stalled past the timeout) before the whole body
    arrived; kept apart from OSError, which from a write means the disk failed."""


class _Body:
    """A part's body: the bytes that came with the head, then the socket's, up to `length`."""

    def __init__(self, sock: socket.socket, length: int, early: bytes) -> None:
        self._sock = sock
        self.remaining = length
        self._early = memoryview(early)[:length]
        # Bytes past the body are the next request's (a client that pipelines).
        self.leftover = early[length:]

    def read_into(self, buffer: memoryview) -> memoryview | None:
        """Fill `buffer` (or what is left of the body); None once the body is all read."""
        want = min(len(buffer), self.remaining)
        if want == 0:
            return None
        filled = min(want, len(self._early))
        if filled:
            buffer[:filled] = self._early[:filled]
            self._early = self._early[filled:]
        while filled < want:
            try:
                count = self._sock.recv_into(buffer[filled:want])
            except OSError as error:  # reset, timed out
                raise _ClientGone from error
            if not count:
                raise _ClientGone
            filled += count
        self.remaining -= want
        return buffer[:want]

    def drain(self, buffer: memoryview) -> None:
        """Read and drop the rest, so the client, done sending, gets to read the answer."""
        while self.read_into(buffer) is not None:
            pass


def _response(status: int, headers: list[tuple[bytes, bytes]], body: bytes, close: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode("latin-1")]
    lines += [name + b": " + value for name, value in headers]
    if close:
        lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _problem(error: DomainError, close: bool) -> bytes:
    reply = domain_error_response(error)
    return _response(reply.status_code, reply.raw_headers, bytes(reply.body), close)


def _unexpected(error: BaseException) -> bytes:
    """The 500 the app's handler answers for an unexpected error, logged the same way."""
    log.error("Unexpected error on PUT %s", _PREFIX, exc_info=error)
    reply = problem_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        ERROR_INTERNAL,
        "The server failed unexpectedly; the error has been logged.",
    )
    return _response(reply.status_code, reply.raw_headers, bytes(reply.body), close=True)


def serve_part_put(
    blobs: FolderBlobs, sock: socket.socket, request: PartPut, early: bytes, buffer: memoryview
) -> bytes | None:
    """Receive one part PUT and answer it on the blocking socket `sock`.

    Returns the bytes read past this request (the start of the next one), or None when the
    connection must close: the client went away or stalled, it asked to close, or the body
    was too large to drain.
    """
    body = _Body(sock, request.length, early)
    try:
        try:
            number = blobs.verify_part_url(
                request.key,
                request.upload_id,
                request.part_number,
                expires=request.expires,
                sig=request.sig,
            )
            writer = blobs.open_part_writer(
                request.key, request.upload_id, number, size=request.length
            )
        except DomainError as error:
            if request.length > MAX_PART_SIZE:
                # Not worth reading gigabytes to say no: answer, then hang up.
                sock.sendall(_problem(error, close=True))
                return None
            body.drain(buffer)
            sock.sendall(_problem(error, request.close))
            return None if request.close else body.leftover
        except Exception as error:
            sock.sendall(_unexpected(error))
            return None
        answer, close = _receive(writer, body, buffer, request)
        sock.sendall(answer)
    except (_ClientGone, OSError):
        # Nobody is left to answer (or the answer could not be sent): an interrupted part
        # is routine, the client sends it again.
        return None
    return None if close else body.leftover


def _receive(
    writer: PartWriter, body: _Body, buffer: memoryview, request: PartPut
) -> tuple[bytes, bool]:
    """Stream the body into `writer`; the answer to send, and whether to close after it
    (the rest of a refused body was not read). Raises _ClientGone (after discarding the
    bytes) when the client goes away mid-body."""
    try:
        while (chunk := body.read_into(buffer)) is not None:
            writer.write(chunk, aligned=True)  # a slice from the start of an mmap
        etag = writer.commit()
    except DomainError as error:
        # The upload was completed or aborted meanwhile, or the part is too large.
        writer.discard()
        if request.length > MAX_PART_SIZE:
            return _problem(error, close=True), True
        body.drain(buffer)
        return _problem(error, request.close), request.close
    except BaseException as error:
        writer.discard()
        if isinstance(error, _ClientGone):
            raise
        # A disk that is full or failing, say: the route would answer 500 too.
        return _unexpected(error), True
    headers = [(b"etag", etag.encode()), (b"content-length", b"0")]
    return _response(200, headers, b"", request.close), request.close


class _Threads:
    """Daemon threads that run jobs, started as needed up to `limit`, each with one receive
    buffer for its whole life. Daemon threads, so a client that stalls a part never keeps
    the server's process from ending."""

    def __init__(self, limit: int) -> None:
        self._jobs: queue.SimpleQueue[Callable[[memoryview], None]] = queue.SimpleQueue()
        self._limit = limit
        self._lock = threading.Lock()
        self._started = 0
        self._idle = 0  # threads waiting for a job
        self._queued = 0  # jobs no thread has taken yet

    def submit(self, job: Callable[[memoryview], None]) -> None:
        with self._lock:
            self._queued += 1
            if self._queued > self._idle and self._started < self._limit:
                self._started += 1
                threading.Thread(target=self._run, name="part-put", daemon=True).start()
        self._jobs.put(job)

    def _run(self) -> None:
        # An anonymous mmap: page-aligned, allocated once per thread.
        buffer = memoryview(mmap.mmap(-1, RECEIVE_BUFFER))
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
                self._queued -= 1
            try:
                job(buffer)
            except BaseException:
                log.exception("A part PUT failed unexpectedly.")


class _PartPutProtocol(asyncio.Protocol):
    """One connection: part PUTs served by `_threads`, the rest by uvicorn's protocol."""

    _blobs: FolderBlobs
    _threads: _Threads
    _inner: type[asyncio.Protocol]

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: Any,
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        # uvicorn's own protocols take the same arguments: the one this hands over to too.
        self._inner_args = {
            "config": config,
            "server_state": server_state,
            "app_state": app_state,
            "_loop": _loop,
        }
        self._loop = _loop or asyncio.get_event_loop()
        self._keep_alive = float(getattr(config, "timeout_keep_alive", 5))
        self._connections = server_state.connections
        self._transport: asyncio.Transport | None = None
        self._received = bytearray()
        self._busy = False  # a worker thread owns the socket
        self._closing = False  # the server is shutting down
        self._idle_timer: asyncio.TimerHandle | None = None

    # -- asyncio ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if (
            transport.get_extra_info("sslcontext") is not None
            or transport.get_extra_info("socket") is None
            or not isinstance(self._loop, asyncio.selector_events.BaseSelectorEventLoop)
        ):
            # Over TLS the socket carries ciphertext; other event loops (Windows' proactor)
            # may keep reading the socket while paused: all of it goes to uvicorn.
            self._hand_over()
            return
        self._connections.add(self)
        self._start_idle_timer()

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._cancel_idle_timer()
        self._received += data
        end = self._received.find(b"\r\n\r\n")
        if end < 0:
            if len(self._received) > MAX_HEAD:
                self._hand_over()
            else:
                self._start_idle_timer()  # a head that never ends must not hold the socket
            return
        request = parse_part_put(bytes(self._received[:end]))
        if request is None:
            self._hand_over()
            return
        early = bytes(self._received[end + 4 :])
        self._received = bytearray()
        self._transport.pause_reading()
        self._busy = True
        sock = self._transport.get_extra_info("socket").dup()
        self._threads.submit(partial(self._serve, sock, request, early))

    def eof_received(self) -> bool | None:
        return None  # the client is done: the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_idle_timer()
        self._connections.discard(self)

    def shutdown(self) -> None:
        """uvicorn asks every connection to end when it stops (and waits until they have).

        A part still arriving is cut short, as a client that hangs up would cut it (its
        bytes are discarded, the client sends the part again later): waiting for it could
        keep the server from stopping for as long as a stalled client holds on.
        """
        self._closing = True
        if self._transport is None:
            return
        if not self._busy:
            self._transport.close()
            return
        with contextlib.suppress(OSError):
            self._transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)

    # -- the worker thread and back --------------------------------------------------------

    def _serve(
        self, sock: socket.socket, request: PartPut, early: bytes, buffer: memoryview
    ) -> None:
        leftover: bytes | None = None
        try:
            sock.settimeout(SOCKET_TIMEOUT)
            leftover = serve_part_put(self._blobs, sock, request, early, buffer)
        finally:
            sock.close()  # the duplicate only: the connection lives on in the transport
            # RuntimeError: the event loop is closed, the server and the connection are gone.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._served, leftover)

    def _served(self, leftover: bytes | None) -> None:
        assert self._transport is not None
        self._busy = False
        if leftover is None or self._closing or self._transport.is_closing():
            self._transport.close()
            return
        self._transport.resume_reading()
        if leftover:
            self.data_received(leftover)
        else:
            self._start_idle_timer()

    # -- helpers ---------------------------------------------------------------------------

    def _hand_over(self) -> None:
        """Give the connection, and the bytes read so far, to uvicorn's own protocol."""
        assert self._transport is not None
        self._cancel_idle_timer()
        self._connections.discard(self)
        data = bytes(self._received)
        self._received = bytearray()
        inner = self._inner(**self._inner_args)
        self._transport.set_protocol(inner)
        inner.connection_made(self._transport)
        if data:
            inner.data_received(data)

    def _start_idle_timer(self) -> None:
        self._cancel_idle_timer()
        self._idle_timer = self._loop.call_later(self._keep_alive, self._close_idle)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _close_idle(self) -> None:
        self._idle_timer = None
        if not self._busy and self._transport is not None:
            self._transport.close()


def part_put_protocol(
    blobs: FolderBlobs,
    *,
    inner: type[asyncio.Protocol] | None = None,
    max_threads: int = MAX_THREADS,
) -> type[asyncio.Protocol]:
    """A protocol class for uvicorn's `http` setting that serves `blobs`' part PUTs itself.

    `inner` takes every other request; by default uvicorn's own choice (httptools when it
    is installed, else h11). Serve the app that mounts `make_blob_router(blobs)` with it:
    `uvicorn.Config(app, http=part_put_protocol(blobs))`.
    """
    if inner is None:
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        inner = AutoHTTPProtocol

    class PartPutProtocol(_PartPutProtocol):
        _blobs = blobs
        _threads = _Threads(max_threads)
        _inner = inner  # type: ignore[assignment]

    return PartPutProtocol
