"""The API-key gate: every request must carry the deployment's `x-api-key`.

A pure ASGI middleware rather than a route dependency, because it must answer before
routing and body parsing: an unknown route or an unparsable body without a valid key gets
403 like everything else, and reveals nothing about the API. Only the API documentation is
open, since the contract it describes is public.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from aws_extension.middleware.config import Config
from aws_extension.middleware.errors import InvalidApiKey, domain_error_response

HEADER = "x-api-key"


class ApiKeyGate:
    def __init__(self, app: ASGIApp, *, config: Config, open_paths: Iterable[str]) -> None:
        self._app = app
        self._config = config
        self._open = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open:
            await self._app(scope, receive, send)
            return
        if self._config.api_key_matches(Headers(scope=scope).get(HEADER)):
            await self._app(scope, receive, send)
            return
        error = InvalidApiKey(f"Send the deployment's API token in the {HEADER} header.")
        await domain_error_response(error)(scope, receive, send)
