"""`create_app`: the middleware as one FastAPI app, on whatever records it is given.

The local stack calls it with SQLite records, folder blobs and a config from its state
folder; the AWS entry point will call it with DynamoDB records, S3 blobs and
`Config.from_env()`. Nothing here is global: two apps in one process (as in the tests) share
no state.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from aws_extension.contract import API_VERSION
from aws_extension.middleware.api_key import ApiKeyGate
from aws_extension.middleware.blobs import Blobs
from aws_extension.middleware.compute import Compute
from aws_extension.middleware.config import Config
from aws_extension.middleware.errors import install_error_handlers
from aws_extension.middleware.openapi import install_openapi
from aws_extension.middleware.records import Records
from aws_extension.middleware.routers import (
    auth,
    checkpoints,
    endpoints,
    inferences,
    me,
    ping,
    roles,
    users,
)
from aws_extension.middleware.security.outbound import Resolver, system_resolver
from aws_extension.middleware.services import Services

#: Every router of the API, in the order they are documented.
ROUTERS = (
    ping.router,
    auth.router,
    me.router,
    roles.router,
    users.router,
    checkpoints.router,
    endpoints.router,
    inferences.router,
)

DESCRIPTION = """\
REST API of sd-webui-sagemaker. Every request needs the deployment's API token in
`x-api-key`; every route except `/ping`, `/auth/login` and `/auth/refresh` also needs
`Authorization: Bearer <access token>`. Errors are RFC 9457 problem details with a
machine-readable `code`.
"""


def create_app(
    config: Config,
    records: Records,
    *,
    clock: Callable[[], float] = time.time,
    blobs: Blobs | None = None,
    signed_routes: APIRouter | None = None,
    resolver: Resolver = system_resolver,
    compute: Compute | None = None,
) -> FastAPI:
    """`clock` returns the time in epoch seconds; tests pass a fake one to move time.

    `blobs` stores model files; without it the `/checkpoints` routes answer 503.
    `signed_routes` are routes whose signed URLs are their own credential (the local stack's
    `blobs.folder_routes`): mounted without the API-key gate. `resolver` resolves the hosts
    of model imports; tests point names at local servers with it. `compute` runs endpoints
    and jobs (the local stack's runtime processes, or SageMaker); without it `/endpoints`
    answers 503, and the app owns it: call `app.state.services.close()` when done with the
    app, which stops running imports and the compute.
    """
    app = FastAPI(
        title="sd-webui-sagemaker middleware",
        version=API_VERSION,
        description=DESCRIPTION,
    )
    app.state.services = Services.build(
        config, records, clock, blobs=blobs, resolver=resolver, compute=compute
    )
    for router in ROUTERS:
        app.include_router(router)
    open_prefixes = []
    if signed_routes is not None:
        app.include_router(signed_routes)
        open_prefixes = [
            route.path.split("{", 1)[0]
            for route in signed_routes.routes
            if isinstance(route, APIRoute)
        ]
    install_error_handlers(app)
    install_openapi(app)
    open_paths = [app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url]
    app.add_middleware(
        ApiKeyGate,
        config=config,
        open_paths=[p for p in open_paths if p],
        open_prefixes=open_prefixes,
    )
    return app
