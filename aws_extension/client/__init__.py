"""The WebUI side's view of the API: typed REST client, its errors, the settings store.

Names are re-exported lazily (PEP 562) because the WebUI imports extensions at start-up:
`import aws_extension.client` costs nothing, and `requests` is loaded only when the client
itself is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aws_extension.client import errors

_EXPORTS: dict[str, str] = {
    "ApiClient": "api",
    "ClientOptions": "api",
    "Page": "api",
    "normalise_api_url": "api",
    "SettingsStore": "settings_store",
    "Connection": "settings_store",
    "UserSession": "settings_store",
    # The errors module is plain Python (no requests), so its own list is read directly.
    **dict.fromkeys(errors.__all__, "errors"),
}

# Spelled out (not derived from _EXPORTS) so linters and IDEs can read it.
__all__ = [
    "ApiClient",
    "ApiError",
    "ClientOptions",
    "Conflict",
    "Connection",
    "ConnectionFailed",
    "DuplicateContent",
    "IncompatibleServer",
    "InvalidApiToken",
    "InvalidRequest",
    "InvalidUrl",
    "NotAuthenticated",
    "NotFound",
    "Page",
    "PermissionDenied",
    "RequestTimeout",
    "ServerError",
    "SettingsStore",
    "TlsFailed",
    "TooManyAttempts",
    "UserSession",
    "WrongCredentials",
    "normalise_api_url",
]

if TYPE_CHECKING:
    from aws_extension.client.api import ApiClient, ClientOptions, Page, normalise_api_url
    from aws_extension.client.errors import (
        ApiError,
        Conflict,
        ConnectionFailed,
        DuplicateContent,
        IncompatibleServer,
        InvalidApiToken,
        InvalidRequest,
        InvalidUrl,
        NotAuthenticated,
        NotFound,
        PermissionDenied,
        RequestTimeout,
        ServerError,
        TlsFailed,
        TooManyAttempts,
        WrongCredentials,
    )
    from aws_extension.client.settings_store import Connection, SettingsStore, UserSession


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
