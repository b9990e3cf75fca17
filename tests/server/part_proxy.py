"""A real HTTP forward proxy on 127.0.0.1 that counts part PUTs and can make them fail.

The uploader under test is used unchanged: it is pointed at this proxy the way any client is
pointed at a proxy (`proxies=` on its session, or `HTTP_PROXY` for a subprocess), and the
proxy forwards every request to the real server behind it. For the PUTs of part URLs
(`/blobs/parts/<upload>/<n>` on the local stack, `?partNumber=n` on S3) it counts each one
and, when told, answers a planned failure instead of forwarding: a status with an empty body,
or the 403 `url_expired` problem the local stack sends for an expired URL.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
_CHUNK = 1024 * 1024


def part_number_of(url: str) -> int | None:
    parts = urlsplit(url)
    match = _PART_PATH.search(parts.path)
    if match:
        return int(match.group(1))
    numbers = parse_qs(parts.query).get("partNumber")
    return int(numbers[0]) if numbers else None


class PartProxy:
    """Counts the part PUTs it forwarded or failed, per part number; plans failures.

    `fail(part, *answers)` makes the next PUTs of `part` get those answers in turn (an int
    status, or EXPIRED), after which they are forwarded again.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.puts: Counter[int] = Counter()
        self.forwarded: Counter[int] = Counter()
        self.requests: list[tuple[str, str]] = []
        self._plans: dict[int, list[int | str]] = {}
        self.url = ""
        #: Seconds each forwarded part PUT is held back, to make uploads slow enough to stop.
        self.delay = 0.0

    def fail(self, part: int, *answers: int | str) -> None:
        with self.lock:
            self._plans.setdefault(part, []).extend(answers)

    def planned(self, part: int) -> int | str | None:
        with self.lock:
            self.puts[part] += 1
            plan = self._plans.get(part)
            if plan:
                return plan.pop(0)
            self.forwarded[part] += 1
            return None

    def paths(self, method: str) -> list[str]:
        with self.lock:
            return [path for m, path in self.requests if m == method]


def _handler(proxy: PartProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _relay(self) -> None:
            target = urlsplit(self.path)
            with proxy.lock:
                proxy.requests.append((self.command, target.path))
            length = int(self.headers.get("Content-Length") or 0)
            number = part_number_of(self.path) if self.command == "PUT" else None
            answer = proxy.planned(number) if number is not None else None
            if answer is not None:
                self._drain(length)
                self._answer_failure(answer)
                return
            if number is not None and proxy.delay:
                time.sleep(proxy.delay)
            upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            try:
                path = target.path + (f"?{target.query}" if target.query else "")
                upstream.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        upstream.putheader(name, value)
                upstream.endheaders()
                remaining = length
                while remaining:
                    chunk = self.rfile.read(min(_CHUNK, remaining))
                    if not chunk:
                        break
                    upstream.send(chunk)
                    remaining -= len(chunk)
                if remaining:
                    # The client gave up mid-body: so does the proxy, rather than leave the
                    # server waiting for bytes that will never come.
                    self.close_connection = True
                    return
                reply = upstream.getresponse()
                body = reply.read()
                self.send_response(reply.status, reply.reason)
                for name, value in reply.getheaders():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            finally:
                upstream.close()

        def _drain(self, length: int) -> None:
            while length:
                chunk = self.rfile.read(min(_CHUNK, length))
                if not chunk:
                    break
                length -= len(chunk)

        def _answer_failure(self, answer: int | str) -> None:
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


@contextmanager
def running_proxy() -> Iterator[PartProxy]:
    proxy = PartProxy()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
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
