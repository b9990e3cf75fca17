"""A stand-in AUTOMATIC1111 v1.10.1 API, shaped by the captured OpenAPI document.

It answers what the webui engine uses: GET /sdapi/v1/options (readiness), the three
refresh routes, and POST /sdapi/v1/txt2img, whose body it checks against the captured
`StableDiffusionProcessingTxt2Img` schema (422 in pydantic's shape on a wrong type or an
unknown field) and answers with a `TextToImageResponse` of real PNGs. It records every body
and which checkpoint file it would have loaded from its models folder. A prompt containing
`FAIL500` makes it fail like A1111 does on an exception.

Run as a script (`launch.py` of a fake WebUI folder does) it serves until killed.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
A1111_REFERENCE = ROOT / "tests" / "data" / "a1111"
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def txt2img_schema() -> dict[str, Any]:
    document = json.loads((A1111_REFERENCE / "sdapi-v1-openapi.json").read_text())
    return document["components"]["schemas"]["StableDiffusionProcessingTxt2Img"]["properties"]


def type_errors(body: dict[str, Any], properties: dict[str, Any]) -> list[dict[str, Any]]:
    errors = []
    for key, value in body.items():
        spec = properties.get(key)
        if spec is None:
            errors.append({"loc": ["body", key], "msg": "extra fields not permitted"})
            continue
        expected = JSON_TYPES.get(spec.get("type", ""), (object,))
        wrong_bool = isinstance(value, bool) and bool not in expected
        if value is not None and (wrong_bool or not isinstance(value, expected)):
            errors.append({"loc": ["body", key], "msg": f"value is not a valid {spec['type']}"})
    return errors


class FakeA1111(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, models_dir: Path, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.models_dir = models_dir
        self.properties = txt2img_schema()
        self.bodies: list[dict[str, Any]] = []
        self.refreshed: list[str] = []
        #: checkpoint bytes A1111 would have loaded, per txt2img call (None: not found)
        self.loaded: list[bytes | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeA1111

    def do_GET(self) -> None:
        if self.path == "/sdapi/v1/options":
            self._json(200, {"sd_model_checkpoint": None, "sd_vae": "Automatic"})
        else:
            self._json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        if self.path.startswith("/sdapi/v1/refresh-"):
            self.server.refreshed.append(self.path.rsplit("/", 1)[1])
            self._json(200, None)
        elif self.path == "/sdapi/v1/txt2img":
            self._txt2img(body)
        else:
            self._json(404, {"detail": "Not Found"})

    def _txt2img(self, body: dict[str, Any]) -> None:
        errors = type_errors(body, self.server.properties)
        if errors:
            self._json(422, {"detail": errors})
            return
        self.server.bodies.append(body)
        checkpoint = (body.get("override_settings") or {}).get("sd_model_checkpoint")
        path = self.server.models_dir / "Stable-diffusion" / str(checkpoint)
        self.server.loaded.append(path.read_bytes() if checkpoint and path.is_file() else None)
        if "FAIL500" in body.get("prompt", ""):
            self._json(500, {"error": "RuntimeError", "detail": "", "body": "", "errors": "boom"})
            return
        count = body.get("batch_size", 1) * body.get("n_iter", 1)
        seed = body.get("seed", -1) if body.get("seed", -1) != -1 else 1234
        images = []
        for index in range(count):
            buffer = io.BytesIO()
            Image.new("RGB", (body.get("width", 512), body.get("height", 512)), (index, 0, 0)).save(
                buffer, format="PNG"
            )
            images.append(base64.b64encode(buffer.getvalue()).decode())
        info = {"seed": seed, "all_seeds": [seed + i for i in range(count)], "infotexts": []}
        self._json(200, {"images": images, "parameters": body, "info": json.dumps(info)})

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def running_fake_a1111(models_dir: Path) -> Iterator[FakeA1111]:
    server = FakeA1111(models_dir)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def main() -> None:
    """What the fake WebUI's launch.py runs: A1111's flags are accepted and mostly ignored."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    args, _ = parser.parse_known_args()
    FakeA1111(args.models_dir, args.port).serve_forever()


if __name__ == "__main__":
    main()
