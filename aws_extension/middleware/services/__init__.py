"""Business and security rules. Routers call these; these raise the domain errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_extension.middleware.blobs import Blobs
from aws_extension.middleware.compute import Compute
from aws_extension.middleware.config import Config
from aws_extension.middleware.records import Records
from aws_extension.middleware.security.outbound import Fetcher, Resolver, system_resolver
from aws_extension.middleware.security.passwords import PasswordHasher
from aws_extension.middleware.security.throttle import LoginThrottle
from aws_extension.middleware.security.tokens import TokenSigner
from aws_extension.middleware.services.access import Access
from aws_extension.middleware.services.auth import AuthService
from aws_extension.middleware.services.checkpoints import CheckpointService
from aws_extension.middleware.services.endpoints import EndpointService
from aws_extension.middleware.services.inferences import InferenceService
from aws_extension.middleware.services.roles import RoleService
from aws_extension.middleware.services.users import UserService


@dataclass(frozen=True)
class Services:
    """One app's services, wired once in `create_app` and reached through `app.state`."""

    auth: AuthService
    users: UserService
    roles: RoleService
    #: None when the app was built without blob storage (the routes then answer 503).
    checkpoints: CheckpointService | None = None
    #: None when the app was built without compute (the endpoint routes then answer 503).
    endpoints: EndpointService | None = None
    #: The compute the app was given; the app owns it and closes it in `close`.
    compute: Compute | None = None
    #: None without compute or blobs (the inference routes then answer 503).
    inferences: InferenceService | None = None

    @classmethod
    def build(
        cls,
        config: Config,
        records: Records,
        clock: Callable[[], float],
        *,
        blobs: Blobs | None = None,
        resolver: Resolver = system_resolver,
        compute: Compute | None = None,
    ) -> Services:
        access = Access(records)
        hasher = PasswordHasher(config.scrypt)
        signer = TokenSigner(
            config.signing_secret,
            issuer=config.issuer,
            access_ttl=config.access_token_ttl,
            refresh_ttl=config.refresh_token_ttl,
            clock=clock,
        )
        users = UserService(records, access, hasher, clock)
        auth = AuthService(
            records, access, users, hasher, signer, LoginThrottle(records, config.throttle, clock)
        )
        checkpoints = None
        if blobs is not None:
            fetcher = Fetcher(config.outbound, resolver)
            checkpoints = CheckpointService(
                records, access, blobs, config.checkpoints, fetcher, clock
            )
        endpoints = None
        if compute is not None:
            endpoints = EndpointService(records, access, compute, clock)
        inferences = None
        if endpoints is not None and compute is not None and checkpoints is not None:
            assert blobs is not None  # checkpoints are built only with blobs
            inferences = InferenceService(
                records, blobs, checkpoints, endpoints, compute, config.inferences, clock
            )
            endpoints.on_deleted.append(inferences.endpoint_deleted)
        return cls(
            auth=auth,
            users=users,
            roles=RoleService(records, access, clock),
            checkpoints=checkpoints,
            endpoints=endpoints,
            compute=compute,
            inferences=inferences,
        )

    def close(self) -> None:
        """Stop background work (running imports); the app answers nothing afterwards."""
        if self.checkpoints is not None:
            self.checkpoints.close()
        if self.compute is not None:
            self.compute.close()
