"""Settings > Amazon SageMaker values become the client's network options."""

from __future__ import annotations

import pytest

from aws_extension.client.api import ClientOptions
from aws_extension.webui import options


def test_before_the_settings_page_registered_them_the_defaults_apply(a1111):
    assert options.client_options() == ClientOptions()


def test_changed_settings_apply_to_the_next_client(a1111):
    options.add_options()
    opts = a1111.shared.opts

    opts.set("sagemaker_request_timeout", 120)
    opts.set("sagemaker_connect_timeout", 10.0)
    opts.set("sagemaker_retries", 5.0)  # sliders hand back floats

    got = options.client_options()
    assert (got.timeout, got.connect_timeout, got.retries) == (120.0, 10.0, 5)
    assert isinstance(got.retries, int)


@pytest.mark.parametrize("bad", [0, -1, 10_000, "30", None, True, float("nan")])
def test_a_bad_value_in_config_json_falls_back_to_the_default(a1111, bad):
    options.add_options()
    a1111.shared.opts.data["sagemaker_request_timeout"] = bad

    assert options.client_options().timeout == ClientOptions().timeout


def test_without_opts_at_all_the_defaults_apply(a1111, monkeypatch):
    monkeypatch.setattr(a1111.shared, "opts", None)

    assert options.client_options() == ClientOptions()
