"""Fixtures of the client-side tests: a faked AUTOMATIC1111 for the webui glue."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
import responses
from fake_api import FakeApi

from aws_extension.client.api import ClientOptions
from aws_extension.client.settings_store import SettingsStore
from aws_extension.ui.context import UiContext

ROOT = Path(__file__).resolve().parents[2]
FAKE_A1111 = Path(__file__).resolve().parent / "fake_a1111"
SHIM = ROOT / "scripts" / "sagemaker_tab.py"


def _forget_modules() -> None:
    for name in [n for n in sys.modules if n == "modules" or n.startswith("modules.")]:
        del sys.modules[name]


@pytest.fixture
def a1111(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """A1111's `modules.*` (see fake_a1111/README.md), started with `--data-dir <tmp>`.

    Installed on sys.path and in sys.modules for one test and removed afterwards, so no test
    sees another's callbacks or options, and tests without this fixture see no `modules`.
    """
    data_dir = tmp_path / "webui-data"
    data_dir.mkdir()
    monkeypatch.setattr(sys, "argv", ["launch.py", "--data-dir", str(data_dir)])
    monkeypatch.syspath_prepend(str(FAKE_A1111))
    _forget_modules()
    from modules import paths_internal, script_callbacks, script_loading, shared

    def load_shim() -> ModuleType:
        """Execute scripts/sagemaker_tab.py the way A1111 executes extension scripts."""
        return script_loading.load_module(str(SHIM))

    try:
        yield SimpleNamespace(
            data_dir=data_dir,
            paths_internal=paths_internal,
            script_callbacks=script_callbacks,
            shared=shared,
            load_shim=load_shim,
        )
    finally:
        _forget_modules()


@pytest.fixture
def api() -> Iterator[FakeApi]:
    """The API, faked in memory over `responses` (see fake_api.py)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeApi(mock)


@pytest.fixture
def ui_context(tmp_path: Path) -> UiContext:
    """The tab's context as the standalone app makes it, with a settings file in tmp."""
    return UiContext(
        store=SettingsStore(tmp_path / "sagemaker" / "settings.json"),
        client_options=lambda: ClientOptions(timeout=5, connect_timeout=2, retries=0),
    )
