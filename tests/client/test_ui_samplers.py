"""The sampler and schedule-type names the txt2img panel offers are A1111 v1.10.1's, and it
says truly which of them the diffusers engine lacks."""

from __future__ import annotations

import json

from aws_extension.endpoint.engines import samplers as engine
from aws_extension.ui import samplers
from tests.client.conftest import ROOT

A1111 = ROOT / "tests" / "data" / "a1111"


def test_the_names_are_a1111_s_in_its_order():
    a1111_samplers = json.loads((A1111 / "samplers.json").read_text(encoding="utf-8"))
    a1111_schedulers = json.loads((A1111 / "schedulers.json").read_text(encoding="utf-8"))

    assert list(samplers.SAMPLERS) == [s["name"] for s in a1111_samplers]
    assert list(samplers.SCHEDULERS) == [s["label"] for s in a1111_schedulers]


def test_the_webui_only_names_are_those_the_diffusers_engine_refuses():
    supported = engine.supported_samplers()
    unmapped = [s.label for s in engine.SCHEDULES if s.settings is None]

    assert list(samplers.WEBUI_ONLY_SAMPLERS) == [
        name for name in samplers.SAMPLERS if name not in supported
    ]
    assert list(samplers.WEBUI_ONLY_SCHEDULERS) == unmapped
    assert samplers.DEFAULT_SAMPLER in supported
    assert samplers.DEFAULT_SCHEDULER not in unmapped
