"""`create_app`: the middleware as one FastAPI app, on whatever records it is given.

The local stack calls it with SQLite records and a config from its state folder; the AWS
entry point will call it with DynamoDB records and `Config.from_env()`. Nothing here is
global: two apps in one process (as in the tests) share no state.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import FastAPI

from aws_extension.contract import API_VERSION
from aws_extension.middleware.api_key import ApiKeyGate
from aws_extension.middleware.config import Config
from aws_extension.middleware.errors import install_error_handlers
from aws_extension.middleware.openapi import install_openapi
from aws_extension.middleware.records import Records
from aws_extension.middleware.routers import auth, me, ping, roles, users
from aws_extension.middleware.services import Services

#: Every router of the API, in the order they are documented.
ROUTERS = (ping.router, auth.router, me.router, roles.router, users.router)

DESCRIPTION = """\
REST API of sd-webui-sagemaker. Every request needs the deployment's API token in
`x-api-key`; every route except `/ping`, `/auth/login` and `/auth/refresh` also needs
`Authorization: Bearer <access token>`. Errors are RFC 9457 problem details with a
machine-readable `code`.
"""


def create_app(
    config: Config, records: Records, *, clock: Callable[[], float] = time.time
) -> FastAPI:
    """`clock` returns the time in epoch seconds; tests pass a fake one to move time."""
    app = FastAPI(
        title="sd-webui-sagemaker middleware",
        version=API_VERSION,
        description=DESCRIPTION,
    )
    app.state.services = Services.build(config, records, clock)
    for router in ROUTERS:
        app.include_router(router)
    install_error_handlers(app)
    install_openapi(app)
    open_paths = [app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url]
    app.add_middleware(ApiKeyGate, config=config, open_paths=[p for p in open_paths if p])
    return app
