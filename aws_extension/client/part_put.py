"""One part PUT to a part URL: through `http.client` for plain HTTP, through requests otherwise.

Why two ways: requests spends about 1-2 ms of Python per request (settings merged, the
request prepared, urllib3's pool, headers parsed by the email package), and a GiB is 128
part PUTs; measured against the local stack, parts sent with `http.client` on a kept-alive
connection per worker cost the uploader 0.25-0.3 CPU seconds per GiB less (about a seventh
of its CPU), on the machine the server shares. That path is taken only where it behaves as
requests would: `http://` URLs reached directly or through a plain HTTP proxy without
credentials, as the session (and, with `trust_env`, the environment) says. HTTPS (S3, with
its CA bundles, client certificates and proxy tunnels) and every other proxy stay with
requests, which already gets them right.

Either way the body goes out in blocks that count as sent (for progress) and that a stop
can cut short; the reply comes back as `PutReply`, and a transport failure as `PutFailed`
with words that never hold the URL (it is a credential).
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.utils import select_proxy

from aws_extension.client.api import _connection_reason

MIB = 1024 * 1024
#: Largest block handed to the socket at once: few calls, yet smooth progress and a prompt stop.
SEND_BLOCK = MIB
#: Bytes of an answer's body kept (for the words of an error; a stored part's body is empty).
REPLY_BODY = 2000


class TransferCancelled(Exception):
    """Inside the workers: the transfer is stopping, so a part on its way is dropped."""


class PutFailed(Exception):
    """The PUT got no answer; `why` says so in words, without the URL."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True)
class PutReply:
    status: int
    reason: str
    etag: str
    body: bytes


class _Body:
    """A part's bytes as a file-like request body for requests: counts what was sent and
    can stop. A read may return more than asked: urllib3 2 and http.client send whatever a
    read returns, and fewer, larger blocks cost fewer system calls."""

    def __init__(
        self, data: memoryview, on_sent: Callable[[int], None], stop: threading.Event
    ) -> None:
        self._data = data
        self._on_sent = on_sent
        self._stop = stop
        self._offset = 0

    def __len__(self) -> int:
        return len(self._data)

    def read(self, size: int = -1) -> memoryview:
        if self._stop.is_set():
            raise TransferCancelled
        end = len(self._data) if size is None or size < 0 else self._offset + max(size, SEND_BLOCK)
        block = self._data[self._offset : end]
        self._offset += len(block)
        self._on_sent(len(block))
        return block


@dataclass(frozen=True)
class _Route:
    """How a URL's origin is reached: `(host, port)` to connect to, and through a proxy?"""

    host: str
    port: int
    proxied: bool


class PartSender:
    """Sends part PUTs for the workers of one engine; `close()` ends its connections.

    `session` serves what `http.client` does not (and decides the proxies); `timeout` is
    `(connect, read)` seconds, as requests takes it.
    """

    def __init__(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        self._session = session
        self._timeout = timeout
        self._routes: dict[tuple[str, str], _Route | None] = {}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()

    def close(self) -> None:
        with self._lock:
            connections, self._open = self._open, set()
        for connection in connections:
            connection.close()

    def proxy_for(self, url: str) -> str | None:
        """The proxy requests would send `url` through: the session's, or the environment's."""
        settings = self._session.merge_environment_settings(url, {}, None, None, None)
        return select_proxy(url, settings["proxies"])

    def put(
        self,
        url: str,
        data: memoryview,
        on_sent: Callable[[int], None],
        stop: threading.Event,
    ) -> PutReply:
        """PUT `data` to `url`; raises PutFailed without an answer, TransferCancelled on stop."""
        if stop.is_set():
            raise TransferCancelled
        route = self._route(url)
        if route is None:
            return self._put_requests(url, data, on_sent, stop)
        return self._put_plain(route, url, data, on_sent, stop)

    # -- requests --------------------------------------------------------------------------

    def _put_requests(
        self, url: str, data: memoryview, on_sent: Callable[[int], None], stop: threading.Event
    ) -> PutReply:
        try:
            response = self._session.put(
                url,
                data=_Body(data, on_sent, stop),
                headers={"Content-Type": "application/octet-stream"},
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            # Never str(exc): requests puts the URL, a credential, in its messages.
            raise PutFailed(_requests_reason(exc)) from None
        with response:
            return PutReply(
                response.status_code,
                response.reason or "",
                response.headers.get("ETag", ""),
                response.content[:REPLY_BODY],
            )

    # -- http.client -----------------------------------------------------------------------

    def _route(self, url: str) -> _Route | None:
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        if origin in self._routes:
            return self._routes[origin]
        route: _Route | None = None
        if parts.scheme == "http" and parts.hostname:
            proxy = self.proxy_for(url)
            if proxy is None:
                route = _Route(parts.hostname, parts.port or 80, proxied=False)
            else:
                via = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
                if via.scheme == "http" and via.hostname and not (via.username or via.password):
                    route = _Route(via.hostname, via.port or 80, proxied=True)
        self._routes[origin] = route
        return route

    def _put_plain(
        self,
        route: _Route,
        url: str,
        data: memoryview,
        on_sent: Callable[[int], None],
        stop: threading.Event,
    ) -> PutReply:
        parts = urlsplit(url)
        # Through a proxy the request names the whole URL; http.client sets Host from it.
        query = f"?{parts.query}" if parts.query else ""
        target = url if route.proxied else f"{parts.path or '/'}{query}"
        connection = self._connection(route)
        try:
            connection.putrequest("PUT", target, skip_accept_encoding=True)
            connection.putheader("Content-Type", "application/octet-stream")
            connection.putheader("Content-Length", str(len(data)))
            connection.endheaders()
            for start in range(0, len(data), SEND_BLOCK):
                if stop.is_set():
                    raise TransferCancelled
                block = data[start : start + SEND_BLOCK]
                connection.send(block)
                on_sent(len(block))
            response = connection.getresponse()
            body = response.read()
            reply = PutReply(
                response.status, response.reason or "", response.getheader("ETag", ""), body
            )
            if response.will_close:
                self._drop(connection)
            return reply
        except TransferCancelled:
            self._drop(connection)
            raise
        except (OSError, http.client.HTTPException) as exc:
            self._drop(connection)
            raise PutFailed(_plain_reason(exc)) from None

    def release_thread(self) -> None:
        """Close the calling thread's connections (a worker that is done)."""
        for connection in list(self._connections().values()):
            self._drop(connection)

    def _connections(self) -> dict[_Route, http.client.HTTPConnection]:
        """The calling thread's connections, by route."""
        connections = getattr(self._local, "connections", None)
        if connections is None:
            connections = self._local.connections = {}
        return connections

    def _connection(self, route: _Route) -> http.client.HTTPConnection:
        """This thread's kept-alive connection to `route`, or a new one."""
        connections = self._connections()
        connection = connections.get(route)
        if connection is not None and _dropped(connection):
            self._drop(connection)
            connection = None
        if connection is None:
            connection = _TimedConnection(route.host, route.port, self._timeout)
            connections[route] = connection
            with self._lock:
                self._open.add(connection)
        return connection

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        connections = self._connections()
        for route, known in list(connections.items()):
            if known is connection:
                del connections[route]
        with self._lock:
            self._open.discard(connection)


class _TimedConnection(http.client.HTTPConnection):
    """Connects within the connect timeout, then waits for the server up to the read one."""

    def __init__(self, host: str, port: int, timeout: tuple[float, float]) -> None:
        super().__init__(host, port, timeout=timeout[0])
        self._read_timeout = timeout[1]

    def connect(self) -> None:
        try:
            super().connect()
        except TimeoutError:
            raise _ConnectTimeout from None
        assert self.sock is not None
        self.sock.settimeout(self._read_timeout)


class _ConnectTimeout(OSError):
    """No connection within the connect timeout."""


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether a kept-alive connection was closed by the server meanwhile (idle timeout).

    Between requests nothing may arrive, so a readable socket means its end was closed;
    sending on it would fail the part for nothing (requests checks the same way).
    """
    sock = connection.sock
    if sock is None:
        return False
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _plain_reason(exc: BaseException) -> str:
    if isinstance(exc, _ConnectTimeout):
        return "no connection in time"
    if isinstance(exc, socket.timeout):
        return "no answer in time"
    if isinstance(exc, (http.client.HTTPException, ConnectionResetError, BrokenPipeError)):
        return "the server closed the connection"
    return _connection_reason(exc)


def _requests_reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "no connection in time"
    if isinstance(exc, requests.exceptions.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.exceptions.SSLError):
        return "the secure connection (TLS) failed"
    return _connection_reason(exc)
