"""A real HTTP forward proxy on 127.0.0.1 that watches an upload and can make it fail.

The uploader under test is used unchanged: it is pointed at this proxy the way any client is
pointed at a proxy (`proxies=` on its sessions, or `HTTP_PROXY` for a process), and the proxy
forwards every request to the real server behind it. It records each request (method, path,
full URL, and the body of the small ones: the API's JSON) and counts the PUTs of part URLs
(`/blobs/parts/<upload>/<n>` on the local stack, `?partNumber=n` on S3) per part number.

Faults are planned, never simulated inside the client:
- `fail(part, *answers)`: the next PUTs of that part get these answers instead of being
  forwarded: a status with an empty body, EXPIRED (the 403 `url_expired` problem the local
  stack sends for an expired URL), RESET (the connection closes without an answer), or
  CORRUPT (forwarded with a byte changed);
- `lose_answer(method, suffix)`: the next such request reaches the server, but its answer
  does not reach the client (the connection closes), as when a network drops mid-reply;
- `edit_reply(method, suffix, edit)`: the next such JSON answer is changed by `edit`.

Only the standard library, so both test environments can import it.
"""

from __future__ import annotations

import http.client
import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_PART_PATH = re.compile(r"/blobs/parts/[0-9a-f]+/(\d+)$")
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
#: Planned answer meaning "this URL has expired", as the local stack words it.
EXPIRED = "expired"
#: Planned answer meaning "the connection broke": it closes without a reply.
RESET = "reset"
#: Planned answer meaning "damaged on the way": the part goes on with its first byte changed,
#: so the server stores (and answers the ETag of) other bytes than the client sent.
CORRUPT = "corrupt"
_CHUNK = 1024 * 1024
#: Bodies up to this size are kept (the API's JSON); part bodies are streamed through.
_KEEP = 256 * 1024

Answer = int | str
Edit = Callable[[Any], Any]


def part_number_of(url: str) -> int | None:
    parts = urlsplit(url)
    match = _PART_PATH.search(parts.path)
    if match:
        return int(match.group(1))
    numbers = parse_qs(parts.query).get("partNumber")
    return int(numbers[0]) if numbers else None


@dataclass(frozen=True)
class Seen:
    """One request the proxy received. `body` is None for part PUTs and large bodies."""

    method: str
    path: str
    url: str
    body: bytes | None


class PartProxy:
    """What went through, per request and per part number; the faults still planned.

    `puts[n]` counts the PUTs of part n whose body reached the proxy in full (a PUT the client
    gave up half way is not counted), `forwarded[n]` those of them passed on to the server
    (the others got a planned failure).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.puts: Counter[int] = Counter()
        self.forwarded: Counter[int] = Counter()
        self.seen: list[Seen] = []
        self._plans: dict[int, list[Answer]] = {}
        self._lost: list[tuple[str, str]] = []
        self._edits: list[tuple[str, str, Edit]] = []
        self.url = ""
        #: Seconds each forwarded part PUT is held back, to make uploads slow enough to stop.
        self.delay = 0.0
        self._connections = 0

    # -- planning ------------------------------------------------------------------------

    def fail(self, part: int, *answers: Answer) -> None:
        with self.lock:
            self._plans.setdefault(part, []).extend(answers)

    def lose_answer(self, method: str, suffix: str) -> None:
        """Forward the next `method` request whose path ends with `suffix`, drop its answer."""
        with self.lock:
            self._lost.append((method, suffix))

    def edit_reply(self, method: str, suffix: str, edit: Edit) -> None:
        """Pass the next such request's JSON answer through `edit(parsed) -> parsed`."""
        with self.lock:
            self._edits.append((method, suffix, edit))

    # -- what happened -------------------------------------------------------------------

    def paths(self, method: str) -> list[str]:
        with self.lock:
            return [seen.path for seen in self.seen if seen.method == method]

    def bodies(self, method: str, suffix: str) -> list[Any]:
        """The JSON bodies of the `method` requests whose path ends with `suffix`, in order."""
        with self.lock:
            return [
                json.loads(seen.body) if seen.body else None
                for seen in self.seen
                if seen.method == method and seen.path.endswith(suffix)
            ]

    def part_urls(self) -> list[str]:
        """The full URLs of every part PUT (signatures and all)."""
        with self.lock:
            return [
                seen.url
                for seen in self.seen
                if seen.method == "PUT" and part_number_of(seen.url) is not None
            ]

    def sent_parts(self) -> int:
        with self.lock:
            return sum(self.forwarded.values())

    def wait_closed(self, timeout: float = 30.0) -> None:
        """Wait until no client has a connection open, e.g. after killing the client process:
        the proxy has then handled (and counted) whatever the client had sent."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if self._connections == 0:
                    return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"connections still open after {timeout} s")
            time.sleep(0.02)

    # -- used by the handler ---------------------------------------------------------------

    def _planned(self, part: int) -> Answer | None:
        with self.lock:
            plan = self._plans.get(part)
            return plan.pop(0) if plan else None

    def _count(self, part: int, forwarded: bool) -> None:
        """Count a PUT whose body arrived in full: before its answer, so a client that has
        its answer always finds it counted, and a PUT the client gave up is never counted."""
        with self.lock:
            self.puts[part] += 1
            if forwarded:
                self.forwarded[part] += 1

    def _take(self, planned: list, method: str, path: str) -> Any:
        with self.lock:
            for index, entry in enumerate(planned):
                if entry[0] == method and path.endswith(entry[1]):
                    return planned.pop(index)
        return None


def _handler(proxy: PartProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _relay(self) -> None:
            target = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            number = part_number_of(self.path) if self.command == "PUT" else None
            body = None
            if number is None and length <= _KEEP:
                body = self._read(length)
                if body is None:
                    return
            with proxy.lock:
                proxy.seen.append(Seen(self.command, target.path, self.path, body))
            answer = proxy._planned(number) if number is not None else None
            corrupt = answer == CORRUPT
            if answer is not None and not corrupt:
                if self._drain(length):
                    proxy._count(number, forwarded=False)
                    self._answer_failure(answer)
                else:
                    self.close_connection = True
                return
            if number is not None and proxy.delay:
                time.sleep(proxy.delay)
            lost = proxy._take(proxy._lost, self.command, target.path)
            edit = proxy._take(proxy._edits, self.command, target.path)
            upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            try:
                path = target.path + (f"?{target.query}" if target.query else "")
                upstream.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        upstream.putheader(name, value)
                upstream.endheaders()
                if body is not None:
                    upstream.send(body)
                elif not self._stream(upstream, length, corrupt):
                    # The client gave up mid-body: so does the proxy, rather than leave the
                    # server waiting for bytes that will never come.
                    self.close_connection = True
                    return
                if number is not None:
                    proxy._count(number, forwarded=True)
                reply = upstream.getresponse()
                content = reply.read()
            finally:
                upstream.close()
            if lost is not None:
                self.close_connection = True
                return
            if edit is not None and content:
                content = json.dumps(edit[2](json.loads(content))).encode()
            self.send_response(reply.status, reply.reason)
            for name, value in reply.getheaders():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def _read(self, length: int) -> bytes | None:
            body = self.rfile.read(length) if length else b""
            if len(body) < length:
                self.close_connection = True
                return None
            return body

        def _stream(self, upstream: http.client.HTTPConnection, length: int, corrupt: bool) -> bool:
            remaining = length
            while remaining:
                chunk = self.rfile.read(min(_CHUNK, remaining))
                if not chunk:
                    return False
                if corrupt and remaining == length:
                    chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                upstream.send(chunk)
                remaining -= len(chunk)
            return True

        def _drain(self, length: int) -> bool:
            while length:
                chunk = self.rfile.read(min(_CHUNK, length))
                if not chunk:
                    return False
                length -= len(chunk)
            return True

        def _answer_failure(self, answer: Answer) -> None:
            if answer == RESET:
                self.close_connection = True
                return
            if answer == EXPIRED:
                status = 403
                body = json.dumps(
                    {"status": 403, "code": "url_expired", "detail": "The URL has expired."}
                ).encode()
            else:
                status = int(answer)
                body = b""
            self.send_response(status)
            self.send_header("Content-Type", "application/problem+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _relay

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, proxy: PartProxy) -> None:
        super().__init__(("127.0.0.1", 0), _handler(proxy))
        self.proxy = proxy

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.proxy.lock:
            self.proxy._connections += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.proxy.lock:
                self.proxy._connections -= 1

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hung up (a test stopping or killing an upload) is not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def running_proxy() -> Iterator[PartProxy]:
    proxy = PartProxy()
    server = _Server(proxy)
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
