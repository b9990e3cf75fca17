"""A stand-in AUTOMATIC1111 API for the inference tests, standard library only.

The local endpoint's `webui` engine talks to it as to an A1111 started with `--api`: it
answers `GET /sdapi/v1/options` (readiness), the refresh routes and `POST
/sdapi/v1/txt2img` with real PNGs, a seed per image and A1111-shaped infotexts. Tests steer
it: `hold()` makes txt2img wait until `release()`, so a job stays `running` for as long as
a test needs; a prompt containing `FAIL` gets A1111's answer to an exception (HTTP 500).
It records every txt2img body.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Longest a held txt2img waits for `release`, so a failing test cannot hang a thread.
HOLD_LIMIT = 60.0
#: What an image's seed is when the body asks for a random one (-1).
RANDOM_SEED = 4242


def png(width: int, height: int, shade: int) -> bytes:
    """A real RGB PNG of one colour."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data)
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    row = b"\x00" + bytes([shade % 256, 64, 128]) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


class StandInA1111(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[dict[str, Any]] = []
        #: Set while txt2img calls may answer; cleared by `hold`.
        self.open_gate = threading.Event()
        self.open_gate.set()
        #: Set once a txt2img call is waiting at the closed gate.
        self.arrived = threading.Event()
        #: Gates of their own for prompts containing a word (`hold_prompt`).
        self.prompt_gates: dict[str, threading.Event] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A runtime stopped while its job was held is expected here; socketserver would
        print a traceback."""

    def hold(self) -> None:
        self.arrived.clear()
        self.open_gate.clear()

    def release(self) -> None:
        self.open_gate.set()

    def hold_prompt(self, word: str) -> None:
        """Hold txt2img calls whose prompt contains `word`, whatever `release` does."""
        self.prompt_gates[word] = threading.Event()

    def release_prompt(self, word: str) -> None:
        self.prompt_gates[word].set()


class _Handler(BaseHTTPRequestHandler):
    server: StandInA1111
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/sdapi/v1/options":
            self._json(200, {"sd_model_checkpoint": None})
        else:
            self._json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        if self.path.startswith("/sdapi/v1/refresh-"):
            self._json(200, None)
        elif self.path == "/sdapi/v1/txt2img":
            self._txt2img(body)
        else:
            self._json(404, {"detail": "Not Found"})

    def _txt2img(self, body: dict[str, Any]) -> None:
        self.server.bodies.append(body)
        if not self.server.open_gate.is_set():
            self.server.arrived.set()
            self.server.open_gate.wait(HOLD_LIMIT)
        prompt = str(body.get("prompt", ""))
        for word, gate in list(self.server.prompt_gates.items()):
            if word in prompt:
                gate.wait(HOLD_LIMIT)
        if "FAIL" in prompt:
            self._json(500, {"error": "RuntimeError", "detail": "", "errors": "CUDA is on fire"})
            return
        count = int(body.get("batch_size", 1)) * int(body.get("n_iter", 1))
        seed = int(body.get("seed", -1))
        seed = RANDOM_SEED if seed == -1 else seed
        width, height = int(body.get("width", 64)), int(body.get("height", 64))
        model = (body.get("override_settings") or {}).get("sd_model_checkpoint")
        seeds = [seed + index for index in range(count)]
        infotexts = [
            f"{prompt}\nSteps: {body.get('steps', 20)}, Seed: {s}, Size: {width}x{height}, "
            f"Model: {model}"
            for s in seeds
        ]
        images = [base64.b64encode(png(width, height, index)).decode() for index in range(count)]
        info = {"seed": seed, "all_seeds": seeds, "infotexts": infotexts, "prompt": prompt}
        self._json(200, {"images": images, "parameters": body, "info": json.dumps(info)})

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read `bodies` instead."""


@contextmanager
def running_a1111() -> Iterator[StandInA1111]:
    server = StandInA1111()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release()
        server.shutdown()
        server.server_close()
        thread.join(10)
