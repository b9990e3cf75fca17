"""One invocation, from body to reply, without HTTP: what the server and local workers call.

```python
runtime = Runtime(DiffusersEngine(config_root), ModelCache(cache_dir, budget_bytes))
runtime.start()                      # blocking: imports, warms up (or starts A1111)
reply = runtime.invoke(body)         # raises EndpointError (status, code, detail)
```

`invoke` is thread-safe: the engine runs one job at a time and the cache shares downloads,
so a pool of worker threads can call it directly. The reply is A1111's TextToImageResponse
(`images` as base64 PNGs, `parameters`, `info` as a JSON string) plus `timings` in seconds.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

from aws_extension.endpoint.engines.base import Engine
from aws_extension.endpoint.errors import EndpointError, Internal, NotReady
from aws_extension.endpoint.invocation import parse_invocation
from aws_extension.endpoint.model_cache import ModelCache

logger = logging.getLogger(__name__)


class Runtime:
    def __init__(self, engine: Engine, cache: ModelCache) -> None:
        self.engine = engine
        self.cache = cache
        self.start_error: str | None = None

    def start(self) -> None:
        """Start the engine; a failure is logged and kept, and the runtime stays not ready."""
        try:
            self.engine.start()
        except Exception as error:
            logger.exception("the %s engine failed to start", self.engine.name)
            self.start_error = f"{type(error).__name__}: {error}"

    def ready(self) -> bool:
        return self.start_error is None and self.engine.ready()

    def invoke(self, body: Any) -> dict[str, Any]:
        try:
            return self._invoke(body)
        except EndpointError:
            raise
        except Exception as error:
            logger.exception("invocation failed unexpectedly")
            raise Internal(f"Unexpected failure: {type(error).__name__}.") from error

    def _invoke(self, body: Any) -> dict[str, Any]:
        invocation = parse_invocation(body)
        if not self.ready():
            reason = f" (start failed: {self.start_error})" if self.start_error else ""
            raise NotReady(f"The {self.engine.name} engine is not ready{reason}.")
        self.engine.check(invocation)
        models = invocation.models()
        started = time.monotonic()
        with self.cache.lease(models) as paths:
            fetch_s = time.monotonic() - started
            result = self.engine.txt2img(invocation, dict(zip(models, paths, strict=True)))
        info = result.info if isinstance(result.info, str) else json.dumps(result.info)
        return {
            "images": [base64.b64encode(image).decode("ascii") for image in result.images],
            "parameters": result.parameters,
            "info": info,
            "timings": {
                "fetch_s": round(fetch_s, 3),
                "load_s": round(result.load_s, 3),
                "generate_s": round(result.generate_s, 3),
            },
        }

    def close(self) -> None:
        self.engine.close()
