from __future__ import annotations

import pytest

from aws_extension.middleware.config import Config, ConfigError

ENV = {
    "SAGEMAKER_API_TOKENS": "token-one, token-two",
    "SAGEMAKER_SIGNING_SECRET": "a-signing-secret-of-forty-characters-xxxx",
    "SAGEMAKER_RECORDS_TABLE": "stack-records",
}


def test_from_env_reads_the_deployment_settings() -> None:
    config = Config.from_env({**ENV, "SAGEMAKER_ACCESS_TOKEN_TTL": "300"})
    assert config.api_tokens == ("token-one", "token-two")
    assert config.records_table == "stack-records"
    assert config.access_token_ttl == 300
    assert config.refresh_token_ttl == 30 * 24 * 3600


@pytest.mark.parametrize("missing", sorted(ENV))
def test_from_env_names_a_missing_variable(missing: str) -> None:
    env = {name: value for name, value in ENV.items() if name != missing}
    with pytest.raises(ConfigError, match=missing):
        Config.from_env(env)


def test_from_env_rejects_a_bad_lifetime_without_echoing_secrets() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({**ENV, "SAGEMAKER_REFRESH_TOKEN_TTL": "soon"})
    assert "SAGEMAKER_REFRESH_TOKEN_TTL" in str(caught.value)
    assert ENV["SAGEMAKER_SIGNING_SECRET"] not in str(caught.value)


def test_repr_hides_the_secrets() -> None:
    config = Config.from_env(ENV)
    assert "token-one" not in repr(config)
    assert ENV["SAGEMAKER_SIGNING_SECRET"] not in repr(config)
    assert "stack-records" in repr(config)


@pytest.mark.parametrize(
    ("tokens", "secret"),
    [((), "s" * 40), (("",), "s" * 40), (("ok",), "too short"), (("ok", ""), "s" * 40)],
)
def test_unsafe_configs_are_refused(tokens: tuple[str, ...], secret: str) -> None:
    with pytest.raises(ConfigError):
        Config(api_tokens=tokens, signing_secret=secret)


def test_api_key_matching_is_exact() -> None:
    config = Config(api_tokens=("alpha", "beta"), signing_secret="s" * 40)
    assert config.api_key_matches("alpha")
    assert config.api_key_matches("beta")
    for wrong in (None, "", "alph", "alphaa", "ALPHA", "gamma", "älpha"):
        assert not config.api_key_matches(wrong)
