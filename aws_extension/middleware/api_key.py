"""The API-key gate: every request must carry the deployment's `x-api-key`.

A pure ASGI middleware rather than a route dependency, because it must answer before
routing and body parsing: an unknown route or an unparsable body without a valid key gets
403 like everything else, and reveals nothing about the API. Only the API documentation is
open, since the contract it describes is public, and the routes under `open_prefixes`,
whose signed URLs are their own credential (the local stack's `/blobs/...`, standing in for
S3's presigned URLs, which need no API key either).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from aws_extension.middleware.config import Config
from aws_extension.middleware.errors import InvalidApiKey, domain_error_response

HEADER = "x-api-key"


class ApiKeyGate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        config: Config,
        open_paths: Iterable[str],
        open_prefixes: Iterable[str] = (),
    ) -> None:
        self._app = app
        self._config = config
        self._open = frozenset(open_paths)
        self._open_prefixes = tuple(open_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in self._open or path.startswith(self._open_prefixes):
            await self._app(scope, receive, send)
            return
        if self._config.api_key_matches(Headers(scope=scope).get(HEADER)):
            await self._app(scope, receive, send)
            return
        error = InvalidApiKey(f"Send the deployment's API token in the {HEADER} header.")
        await domain_error_response(error)(scope, receive, send)
