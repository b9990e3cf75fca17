"""A stand-in for S3 presigned GET URLs: files served on 127.0.0.1, with counted requests.

A test publishes bytes under a path and may make a path answer an error status or stall
before its body, to exercise the model cache's failure handling over real HTTP.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, Path] = {}
        self.statuses: dict[str, int] = {}
        self.stalls: dict[str, float] = {}
        #: seconds to sleep between chunks (makes a download slow enough to overlap)
        self.chunk_delay = 0.0
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()

    def publish(self, path: Path, name: str | None = None) -> str:
        route = "/" + (name or path.name).replace(" ", "_")
        self.files[route] = path
        return self.url(route)

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{route}?X-Amz-Signature=test"


class _Handler(BaseHTTPRequestHandler):
    server: FileServer

    def do_GET(self) -> None:
        route = self.path.split("?", 1)[0]
        with self.server.lock:
            self.server.requests[route] += 1
        if route in self.server.statuses:
            self.send_error(self.server.statuses[route])
            return
        path = self.server.files.get(route)
        if path is None:
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if route in self.server.stalls:
            time.sleep(self.server.stalls[route])
        for start in range(0, len(data), 1 << 20):
            self.wfile.write(data[start : start + (1 << 20)])
            if self.server.chunk_delay:
                time.sleep(self.server.chunk_delay)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
