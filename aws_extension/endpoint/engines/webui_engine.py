"""The webui engine: jobs run on an AUTOMATIC1111 WebUI through its own API.

Either the runtime starts A1111 itself (`WebuiProcess`, the container case) or it talks to
one already running with `--api` ("this machine as an endpoint"). Either way the txt2img
body goes to A1111 unchanged except for model selection:

- the job's files are linked (symlinks into the model cache) into A1111's model folders under
  their names, and A1111 is told to rescan the folders it gained files in;
- `override_settings.sd_model_checkpoint` names the checkpoint file (and `sd_vae` the VAE);
- each LoRA gets a `<lora:name:weight>` tag in the prompt unless the prompt already has one.

A name already taken by a file the runtime did not link (the user's own model in a shared
WebUI) is never overwritten: the job's file goes in as `<stem>-<sha256[:10]><suffix>`.

Readiness comes from a watcher thread that asks A1111 for `/sdapi/v1/options` every few
seconds, so GET /ping answers from memory at once. A1111's 4xx (its 422 validation errors)
become 400s with A1111's own words; its 5xx or silence become 502s.
"""

from __future__ import annotations

import base64
import binascii
import copy
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import requests

from aws_extension.endpoint.engines.base import EngineResult
from aws_extension.endpoint.engines.webui_process import WebuiProcess
from aws_extension.endpoint.errors import InvalidRequest, NotReady, UpstreamEngineFailed
from aws_extension.endpoint.invocation import CHECKPOINT, LORA, VAE, Invocation, ModelRef
from aws_extension.endpoint.lora_tags import with_lora_tags

logger = logging.getLogger(__name__)

#: The A1111 route that rescans a model folder after the runtime linked files into it.
REFRESH_ROUTES = {
    CHECKPOINT: "/sdapi/v1/refresh-checkpoints",
    VAE: "/sdapi/v1/refresh-vae",
    LORA: "/sdapi/v1/refresh-loras",
}
#: What A1111 reads as a model: the runtime accepts these for the webui engine.
WEBUI_SUFFIXES = {
    CHECKPOINT: (".safetensors", ".ckpt"),
    VAE: (".safetensors", ".ckpt", ".pt"),
    LORA: (".safetensors", ".pt"),
}


def forwarded_body(
    payload: dict[str, Any],
    checkpoint: str,
    vae: str | None,
    loras: tuple[ModelRef, ...],
) -> dict[str, Any]:
    """The body A1111 gets: the job's payload with the job's models selected."""
    body = copy.deepcopy(payload)
    overrides = dict(body.get("override_settings") or {})
    overrides["sd_model_checkpoint"] = checkpoint
    if vae is not None:
        overrides["sd_vae"] = vae
    body["override_settings"] = overrides
    if loras:
        body["prompt"] = with_lora_tags(body.get("prompt") or "", loras)
    return body


class WebuiEngine:
    name = "webui"

    def __init__(
        self,
        base_url: str,
        models_dir: Path,
        cache_root: Path,
        *,
        process: WebuiProcess | None = None,
        request_timeout_s: float = 3600.0,
        ping_interval_s: float = 2.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.models_dir = Path(models_dir)
        self.cache_root = Path(cache_root).resolve()
        self.process = process
        self.request_timeout_s = request_timeout_s
        self.ping_interval_s = ping_interval_s
        self._session = session or requests.Session()
        self._lock = threading.Lock()
        self._ready = False
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self.process is not None:
            self.process.start()
        self._watcher = threading.Thread(target=self._watch, name="a1111-ping", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping.is_set():
            self._ready = self._ping()
            self._stopping.wait(self.ping_interval_s)

    def _ping(self) -> bool:
        if self.process is not None and not self.process.alive():
            return False
        try:
            response = self._session.get(f"{self.base_url}/sdapi/v1/options", timeout=5)
        except requests.RequestException:
            return False
        return response.status_code == 200

    def ready(self) -> bool:
        return self._ready

    def close(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(5)
        if self.process is not None:
            self.process.stop()
        self._ready = False

    # -- the job ------------------------------------------------------------------------------

    def check(self, invocation: Invocation) -> None:
        if not self._ready:
            raise NotReady("A1111 is not answering yet.")
        for model in invocation.models():
            if model.suffix not in WEBUI_SUFFIXES[model.kind]:
                allowed = ", ".join(WEBUI_SUFFIXES[model.kind])
                raise InvalidRequest(f"{model.name}: A1111 reads {model.kind} files as {allowed}.")
        payload = invocation.payload
        if not isinstance(payload.get("prompt", ""), str):
            raise InvalidRequest("payload.prompt must be a string.")
        if not isinstance(payload.get("override_settings") or {}, dict):
            raise InvalidRequest("payload.override_settings must be an object.")

    def txt2img(self, invocation: Invocation, paths: dict[ModelRef, Path]) -> EngineResult:
        with self._lock:
            started = time.monotonic()
            self._prune_dangling()
            names: dict[ModelRef, str] = {}
            refresh: set[str] = set()
            for model in invocation.models():
                names[model], changed = self._link(model, paths[model])
                if changed:
                    refresh.add(model.kind)
            for kind in sorted(refresh):
                self._call("POST", REFRESH_ROUTES[kind], None, timeout=300)
            load_s = time.monotonic() - started
            loras = tuple(
                ModelRef(lora.kind, names[lora], lora.sha256, lora.url, lora.id, lora.weight)
                for lora in invocation.loras
            )
            body = forwarded_body(
                invocation.payload,
                names[invocation.checkpoint],
                names[invocation.vae] if invocation.vae else None,
                loras,
            )
            started = time.monotonic()
            reply = self._call("POST", "/sdapi/v1/txt2img", body, timeout=self.request_timeout_s)
            generate_s = time.monotonic() - started
        return _result(reply, load_s, generate_s)

    def _folder(self, kind: str) -> Path:
        return self.models_dir / kind

    def _link(self, model: ModelRef, path: Path) -> tuple[str, bool]:
        """Link `path` into A1111's folder; return the file name used and whether it changed."""
        folder = self._folder(model.kind)
        folder.mkdir(parents=True, exist_ok=True)
        source = path.resolve()
        for name in (model.name, f"{model.stem}-{model.short_hash}{model.suffix}"):
            target = folder / name
            if target.is_symlink() and Path(os.readlink(target)) == source:
                return name, False
            if target.exists() and not self._ours(target):
                continue  # a file of the WebUI's own: leave it alone, try the hashed name
            staging = folder / f".{name}.{os.getpid()}.link"
            staging.unlink(missing_ok=True)
            staging.symlink_to(source)
            os.replace(staging, target)
            return name, True
        raise InvalidRequest(f"{model.name}: both its names are taken in {folder}.")

    def _ours(self, path: Path) -> bool:
        return path.is_symlink() and Path(os.readlink(path)).parent == self.cache_root

    def _prune_dangling(self) -> None:
        """Remove links to cache files that were evicted, so A1111 never lists a dead model."""
        for kind in REFRESH_ROUTES:
            folder = self._folder(kind)
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if self._ours(entry) and not entry.exists():
                    entry.unlink(missing_ok=True)

    def _call(self, method: str, route: str, body: Any, *, timeout: float) -> Any:
        try:
            response = self._session.request(
                method, f"{self.base_url}{route}", json=body, timeout=(10, timeout)
            )
        except requests.RequestException as error:
            raise UpstreamEngineFailed(
                f"A1111 did not answer {route}: {type(error).__name__}."
            ) from None
        if 400 <= response.status_code < 500:
            raise InvalidRequest(
                f"A1111 refused the job ({response.status_code}): {_why(response)}"
            )
        if response.status_code >= 300:
            raise UpstreamEngineFailed(f"A1111 failed ({response.status_code}): {_why(response)}")
        try:
            return response.json()
        except ValueError:
            raise UpstreamEngineFailed(f"A1111 answered {route} with no JSON.") from None


def _why(response: requests.Response) -> str:
    """A1111's own explanation: pydantic's `detail` list (422) or its `errors` text (500)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, list):
            return "; ".join(
                f"{'.'.join(str(part) for part in item.get('loc', []))}: {item.get('msg')}"
                for item in detail
                if isinstance(item, dict)
            )
        parts = [str(body[key]) for key in ("error", "detail", "errors") if body.get(key)]
        if parts:
            return ": ".join(parts)[:500]
    return str(body)[:300]


def _result(reply: Any, load_s: float, generate_s: float) -> EngineResult:
    if (
        not isinstance(reply, dict)
        or not isinstance(reply.get("images", []), list)
        or not isinstance(reply.get("info", ""), str)
    ):
        raise UpstreamEngineFailed("A1111's txt2img reply is not a TextToImageResponse.")
    try:
        images = [base64.b64decode(image, validate=True) for image in reply.get("images") or []]
    except (binascii.Error, TypeError):
        raise UpstreamEngineFailed("A1111 sent an image that is not base64.") from None
    return EngineResult(
        images, reply.get("parameters") or {}, reply.get("info") or "", load_s, generate_s
    )
