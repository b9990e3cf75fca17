"""Everything the middleware needs to know about its deployment, in one immutable object.

The local stack builds it from its state folder; the Lambda entry point builds it from
environment variables (`Config.from_env`). Secrets are excluded from `repr`, so a logged or
printed config never shows them.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_extension.middleware.checkpoint_policy import CheckpointPolicy
from aws_extension.middleware.inference_policy import InferencePolicy
from aws_extension.middleware.security.outbound import OutboundPolicy
from aws_extension.middleware.security.passwords import ScryptParams
from aws_extension.middleware.security.throttle import ThrottlePolicy

#: HS256 keys shorter than the hash output weaken the signature (RFC 7518 section 3.2).
MIN_SECRET_LENGTH = 32

ENV_API_TOKENS = "SAGEMAKER_API_TOKENS"
ENV_SIGNING_SECRET = "SAGEMAKER_SIGNING_SECRET"  # noqa: S105 (a variable name)
ENV_RECORDS_TABLE = "SAGEMAKER_RECORDS_TABLE"
ENV_ACCESS_TTL = "SAGEMAKER_ACCESS_TOKEN_TTL"
ENV_REFRESH_TTL = "SAGEMAKER_REFRESH_TOKEN_TTL"


class ConfigError(ValueError):
    """The configuration is incomplete or unsafe; the message names the setting, never its
    value."""


@dataclass(frozen=True)
class Config:
    #: Accepted `x-api-key` values; more than one lets a deployment rotate its token.
    api_tokens: tuple[str, ...] = field(repr=False)
    signing_secret: str = field(repr=False)
    issuer: str = "sd-webui-sagemaker"
    access_token_ttl: int = 15 * 60
    refresh_token_ttl: int = 30 * 24 * 3600
    scrypt: ScryptParams = field(default_factory=ScryptParams)
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    #: Model sizes, part size, URL lifetime and the deadlines of the sweep.
    checkpoints: CheckpointPolicy = field(default_factory=CheckpointPolicy)
    #: Deadlines, limits and long-poll pacing of inference jobs.
    inferences: InferencePolicy = field(default_factory=InferencePolicy)
    #: What model imports may fetch (SSRF guard) and their time limits.
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    #: DynamoDB table of the records on AWS; None for the embedded stack.
    records_table: str | None = None

    def __post_init__(self) -> None:
        if not self.api_tokens or not all(self.api_tokens):
            raise ConfigError("at least one non-empty API token is required")
        if len(self.signing_secret) < MIN_SECRET_LENGTH:
            raise ConfigError(f"the signing secret must be at least {MIN_SECRET_LENGTH} characters")
        if self.access_token_ttl <= 0 or self.refresh_token_ttl <= 0:
            raise ConfigError("token lifetimes must be positive")

    def api_key_matches(self, presented: str | None) -> bool:
        """Constant-time comparison with every accepted token (no early exit on a match)."""
        if presented is None:
            return False
        given = presented.encode()
        matches = [hmac.compare_digest(given, token.encode()) for token in self.api_tokens]
        return any(matches)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Read the deployment's settings; raises `ConfigError` naming what is missing."""
        env = os.environ if environ is None else environ

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigError(f"environment variable {name} is not set")
            return value

        def seconds(name: str, default: int) -> int:
            text = env.get(name, "").strip()
            if not text:
                return default
            try:
                return int(text)
            except ValueError:
                raise ConfigError(f"{name} must be a whole number of seconds") from None

        tokens = tuple(t.strip() for t in required(ENV_API_TOKENS).split(",") if t.strip())
        return cls(
            api_tokens=tokens,
            signing_secret=required(ENV_SIGNING_SECRET),
            access_token_ttl=seconds(ENV_ACCESS_TTL, cls.access_token_ttl),
            refresh_token_ttl=seconds(ENV_REFRESH_TTL, cls.refresh_token_ttl),
            records_table=required(ENV_RECORDS_TABLE),
        )
