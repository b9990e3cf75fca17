"""SageMaker's container contract over the standard library's threaded HTTP server.

Why not FastAPI/uvicorn: the contract is two routes with JSON bodies, and the image should
carry the engine's dependencies only (no pydantic, no ASGI stack to keep in step with the
middleware's). Why threads: GET /ping must answer within SageMaker's 2 s while a job holds
the engine for minutes; torch releases the GIL, so a ping thread answers at once.

- `GET /ping`: 200 `{"status": "ready"}` when the engine can run a job, else 503
  `{"status": "starting"}`, or `{"status": "failed", "detail"}` when it could not start.
- `POST /invocations`: the runtime's reply, or `{"status", "detail", "code"}` with the
  error's status (4xx: the job's fault; 5xx: the engine's or the storage's).
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aws_extension.endpoint.errors import (
    EndpointError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    TooLarge,
)
from aws_extension.endpoint.runtime import Runtime

logger = logging.getLogger(__name__)

#: SageMaker real-time payloads stop at 25 MB, async ones are read from S3; a txt2img body
#: is a few KB, so a larger one is a mistake.
MAX_BODY_BYTES = 16 * 1024 * 1024
ROUTES = {"/ping": "GET", "/invocations": "POST"}


class EndpointServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], runtime: Runtime) -> None:
        super().__init__(address, EndpointHandler)
        self.runtime = runtime


class EndpointHandler(BaseHTTPRequestHandler):
    server: EndpointServer
    protocol_version = "HTTP/1.1"
    server_version = "sd-webui-sagemaker-endpoint"

    def _route(self, method: str) -> bool:
        """True when this request is the contract's route for `method`; else answers it."""
        path = self.path.split("?", 1)[0]
        if ROUTES.get(path) == method:
            return True
        if method == "POST":
            self._discard_body()
        if path in ROUTES:
            self._reply_error(MethodNotAllowed(f"{path} takes {ROUTES[path]} only."))
        else:
            self._reply_error(NotFound(f"No route {method} {path}."))
        return False

    def do_GET(self) -> None:
        if not self._route("GET"):
            return
        runtime = self.server.runtime
        if runtime.ready():
            self._reply(HTTPStatus.OK, {"status": "ready"})
        elif runtime.start_error is not None:
            # Never ready: the local stack fails the endpoint at once with this detail.
            failed = {"status": "failed", "detail": runtime.start_error}
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, failed)
        else:
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "starting"})

    def do_POST(self) -> None:
        if not self._route("POST"):
            return
        try:
            body = self._read_json()
            reply = self.server.runtime.invoke(body)
        except EndpointError as error:
            self._reply_error(error)
            return
        self._reply(HTTPStatus.OK, reply)

    def _read_json(self) -> Any:
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self.close_connection = True
            raise InvalidRequest("Send the body with a Content-Length header.")
        try:
            length = int(length_header)
        except ValueError:
            self.close_connection = True
            raise InvalidRequest("Content-Length is not a number.") from None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise TooLarge(f"The body is over {MAX_BODY_BYTES // (1024 * 1024)} MiB.")
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidRequest(f"The body is not valid JSON: {error}.") from None

    def _discard_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= MAX_BODY_BYTES:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    def _reply_error(self, error: EndpointError) -> None:
        self._reply(error.status, error.body())

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)


def make_server(runtime: Runtime, host: str = "0.0.0.0", port: int = 8080) -> EndpointServer:  # noqa: S104 - a container must listen on all interfaces
    return EndpointServer((host, port), runtime)
