"""Fixtures of the client-side tests: a faked AUTOMATIC1111 for the webui glue, the real
middleware (the embedded local stack as a process) for the tab's handlers, and a mocked
server (`rsps`, with `sleeps`) for ApiClient's own mechanics.

The stack runs with the server environment's interpreter (see tests/support/local_stack.py):
one per test session, shared by the tests that ask for `server`. Each of those signs in as a
user of its own, and whatever users, roles and models it made are deleted after it, so every
test starts from the stack's first-start records (the role and user `admin`, no models).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
import responses

from aws_extension.client.api import ApiClient, ClientOptions
from aws_extension.client.settings_store import SettingsStore
from aws_extension.client.uploader import Uploader
from aws_extension.ui.context import UiContext
from aws_extension.ui.tab import TabPanels
from tests.client.mocked_api import Sleeps
from tests.client.tab_support import build
from tests.support.local_stack import Stack, StackUnavailable, running_stack, stack_python

ROOT = Path(__file__).resolve().parents[2]
FAKE_A1111 = Path(__file__).resolve().parent / "fake_a1111"
SHIM = ROOT / "scripts" / "sagemaker_tab.py"


def _forget_modules() -> None:
    for name in [n for n in sys.modules if n == "modules" or n.startswith("modules.")]:
        del sys.modules[name]


@dataclass
class A1111:
    """Starts A1111's `modules.*` (see fake_a1111/README.md) with `--data-dir <data_dir>`.

    A test may put extensions into `data_dir / "extensions"` before `start`, as a user
    installs them before starting the WebUI.
    """

    data_dir: Path
    monkeypatch: pytest.MonkeyPatch

    def start(self, *options: str) -> SimpleNamespace:
        """Import `modules` as A1111 does when started with `options` on the command line."""
        self.monkeypatch.setattr(
            sys, "argv", ["launch.py", "--data-dir", str(self.data_dir), *options]
        )
        self.monkeypatch.syspath_prepend(str(FAKE_A1111))
        _forget_modules()
        from modules import paths_internal, script_callbacks, script_loading, shared

        def load_shim() -> ModuleType:
            """Execute scripts/sagemaker_tab.py the way A1111 executes extension scripts."""
            return script_loading.load_module(str(SHIM))

        return SimpleNamespace(
            data_dir=self.data_dir,
            paths_internal=paths_internal,
            script_callbacks=script_callbacks,
            shared=shared,
            load_shim=load_shim,
        )


@pytest.fixture
def a1111_launcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[A1111]:
    """A1111 to start with options of the test's choice.

    `modules` is installed on sys.path and in sys.modules for one test and removed
    afterwards, so no test sees another's callbacks or options, and tests without this
    fixture see no `modules`.
    """
    data_dir = tmp_path / "webui-data"
    data_dir.mkdir()
    try:
        yield A1111(data_dir, monkeypatch)
    finally:
        _forget_modules()


@pytest.fixture
def a1111(a1111_launcher: A1111) -> SimpleNamespace:
    """A1111 started with nothing but `--data-dir <tmp>`."""
    return a1111_launcher.start()


OPTIONS = ClientOptions(timeout=10, connect_timeout=5, retries=0)
#: The role the stack creates at its first start, with all six permissions.
ADMIN_ROLE = "admin"


def unique(prefix: str) -> str:
    """A user or role name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Login:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Server:
    """The real middleware for one test, and a user of the test's own to sign in as.

    `username`/`password` hold the role `admin` (all permissions), so the tab shows every
    panel; `admin` is the stack's super admin, signed in, for preparing and checking.
    """

    stack: Stack
    admin: ApiClient
    username: str
    password: str = field(repr=False)

    @property
    def login(self) -> Login:
        return Login(self.username, self.password)

    @property
    def url(self) -> str:
        return self.stack.url

    @property
    def api_token(self) -> str:
        return self.stack.api_token

    def add_user(self, prefix: str, roles: list[str]) -> Login:
        return _add_user(self.admin, prefix, roles)

    def add_role(self, prefix: str, permissions: list[str]) -> str:
        name = unique(prefix)
        self.admin.create_role(name, permissions)
        return name

    def client(self, refresh_token: str | None = None) -> ApiClient:
        return ApiClient(self.url, self.api_token, options=OPTIONS, refresh_token=refresh_token)

    def sign_out_elsewhere(self, login: Login) -> None:
        """Sign `login` in and out from another client: the server revokes all its tokens."""
        with self.client() as other:
            other.login(login.username, login.password)
            other.logout()

    def add_model(
        self,
        folder: Path,
        name: str,
        model_type: str = "Lora",
        allowed_roles: list[str] | None = None,
    ) -> dict:
        """An `Active` model uploaded by the super admin, with content no other model has."""
        path = folder / name
        path.write_bytes(model_bytes(name))
        with Uploader(self.admin, folder / "admin-upload-state") as uploader:
            result = uploader.upload(path, model_type, allowed_roles=allowed_roles)
        assert result.checkpoint is not None
        return result.checkpoint

    def model(self, model_id: str) -> dict:
        return self.admin.get_checkpoint(model_id)

    def model_names(self) -> list[str]:
        return [model["name"] for model in _every(self.admin.list_checkpoints)]

    def role_names(self) -> list[str]:
        return [role["name"] for role in _every(self.admin.list_roles)]

    def usernames(self) -> list[str]:
        return [user["username"] for user in _every(self.admin.list_users)]


def model_bytes(name: str) -> bytes:
    """A few KiB that no other file of the test session holds (one upload part)."""
    return f"{name} {uuid.uuid4().hex}\n".encode() * 64


def _add_user(admin: ApiClient, prefix: str, roles: list[str]) -> Login:
    """A new user with `roles`; its password has a space, as no token or hash does."""
    login = Login(unique(prefix), f"pw {uuid.uuid4().hex} 1!")
    admin.create_user(login.username, login.password, roles)
    return login


def _reset(stack: Stack, admin: ApiClient) -> None:
    """Delete every model, and every user and role but the first start's, users first (they
    hold roles). Models go too: a name or content one test left would be taken in the next."""
    for checkpoint in _every(admin.list_checkpoints):
        admin.delete_checkpoint(checkpoint["id"])
    for user in _every(admin.list_users):
        if user["username"] != stack.username:
            admin.delete_user(user["username"])
    for role in _every(admin.list_roles):
        if role["name"] != ADMIN_ROLE:
            admin.delete_role(role["name"])


def _every(list_page) -> list[dict]:
    items: list[dict] = []
    cursor = None
    for _ in range(100):  # bounded: 100 pages of 200 is far more than any test makes
        page = list_page(limit=200, cursor=cursor)
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            return items
    raise AssertionError("more than 100 pages of records")


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The embedded local stack as a real process, with its first-start credentials.

    `--allow-private-import` lets it import models from a server of the test on 127.0.0.1;
    the refusal of private addresses itself is tested on the server side.
    """
    try:
        python = stack_python()
    except StackUnavailable as exc:
        pytest.fail(str(exc))
    state = tmp_path_factory.mktemp("stack") / "state"
    with running_stack(state, "--allow-private-import", python=python) as stack:
        yield stack


@pytest.fixture(scope="session")
def stack_admin(local_stack: Stack) -> Iterator[ApiClient]:
    """The stack's super admin, signed in once; no test signs it out."""
    with ApiClient(local_stack.url, local_stack.api_token, options=OPTIONS) as admin:
        admin.login(local_stack.username, local_stack.password)
        yield admin


@pytest.fixture
def server(local_stack: Stack, stack_admin: ApiClient) -> Iterator[Server]:
    """The real middleware with a fresh user holding the role `admin`; reset afterwards."""
    _reset(local_stack, stack_admin)  # in case a test before could not clean up
    login = _add_user(stack_admin, "op", [ADMIN_ROLE])
    try:
        yield Server(local_stack, stack_admin, login.username, login.password)
    finally:
        _reset(local_stack, stack_admin)


@pytest.fixture
def ui_context(tmp_path: Path) -> UiContext:
    """The tab's context as the standalone app makes it, with a settings file in tmp."""
    return UiContext(
        store=SettingsStore(tmp_path / "sagemaker" / "settings.json"),
        client_options=lambda: ClientOptions(timeout=5, connect_timeout=2, retries=0),
    )


@pytest.fixture
def tab(ui_context: UiContext) -> TabPanels:
    """The whole tab built for `ui_context`, as the standalone app builds it."""
    return build(ui_context)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    """The mocked server: every request must match a registered response."""
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
