"""javascript/sagemaker.js in Chromium, in the standalone tab against a real local stack.

What it is for: password managers fill the sign-in form and never the "create user" or "new
password" fields, also after gradio re-renders a part of the tab; and leaving the page asks
first while an action of the tab is running, and only then. The slow action is a real one:
Test Connection against a port on 127.0.0.1 that accepts connections and does not answer
until the test lets it.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from tests.browser.test_settings_tab import (
    SIGN_IN_TIMEOUT_MS,
    area,
    connect,
    field,
    open_tab,
    shot,
    sign_in,
)
from tests.support.local_stack import ROOT

pytestmark = pytest.mark.browser

SCRIPT = ROOT / "javascript" / "sagemaker.js"
MAX_SCRIPT_LINES = 120
#: What the password managers are told, by the gradio elem_id of the field.
HINTS = {
    "sagemaker_username": "username",
    "sagemaker_password": "current-password",
    "sagemaker_api_token": "off",
    "sagemaker_user_name": "off",
    "sagemaker_user_password": "new-password",
    "sagemaker_own_password_current": "current-password",
    "sagemaker_own_password_new": "new-password",
    "sagemaker_own_password_repeat": "new-password",
}
PASSWORD_HINTS = {"current-password", "new-password", "off"}
#: gradio's marks of an event in flight, as the script looks for them.
PENDING = "#sagemaker_interface :is(.progress-text, .eta-bar, .pending)"
#: A real `beforeunload` goes through the script's listener; True when it asks to stay.
ASKS_TO_STAY = """() => {
    const event = new Event('beforeunload', {cancelable: true});
    window.dispatchEvent(event);
    return event.defaultPrevented;
}"""
#: A refused API token, as API Gateway words it: the answer the silent server gives at last.
FORBIDDEN = (
    b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: 24\r\n"
    b'Connection: close\r\n\r\n{"message": "Forbidden"}'
)


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and says nothing until `answer()`."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._answering = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def answer(self) -> None:
        """From now on every connection, held or new, gets a 403 and is closed."""
        self._answering.set()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._listener.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
                self._held.append(conn)
            except TimeoutError:
                pass
            if self._answering.is_set():
                while self._held:
                    conn = self._held.pop()
                    try:
                        conn.settimeout(1)
                        conn.recv(65536)
                        conn.sendall(FORBIDDEN)
                    except OSError:
                        pass
                    finally:
                        conn.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Errors the page logs or throws, from the first script on."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def autocomplete(page: Page, elem_id: str) -> str | None:
    return field(page, elem_id).get_attribute("autocomplete")


def password_hints(page: Page) -> dict[str, str | None]:
    """Every password field of the tab, by its wrapper's elem_id: none is left to guesses."""
    return page.eval_on_selector_all(
        "#sagemaker_interface input[type=password]",
        "els => Object.fromEntries(els.map(e => "
        "[e.closest('[id]').id, e.getAttribute('autocomplete')]))",
    )


def test_the_script_is_small_and_loads_without_errors(tab_server, page, console_errors):
    assert SCRIPT.exists()
    lines = SCRIPT.read_text(encoding="utf-8").splitlines()
    assert len(lines) < MAX_SCRIPT_LINES

    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if re.match(r"https?://(?!127\.0\.0\.1[:/])", request.url)
            else None
        ),
    )
    with page.expect_response(re.compile(r"/javascript/sagemaker\.js")) as served:
        open_tab(page, tab_server.url)

    assert served.value.status == 200
    assert "javascript" in (served.value.header_value("content-type") or "")
    expect(page.locator("head script[src*='sagemaker.js']")).to_have_count(1)
    assert console_errors == []
    assert outside == []  # gradio's cdnjs script and Google Fonts preconnects are dropped


def test_password_managers_get_hints_also_after_a_re_render(stack, tab_server, page):
    open_tab(page, tab_server.url)
    for elem_id, hint in HINTS.items():
        assert autocomplete(page, elem_id) == hint, elem_id

    sign_in(page, stack)
    expect(page.locator("#sagemaker_users_panel")).to_be_visible()
    for elem_id, hint in HINTS.items():
        assert autocomplete(page, elem_id) == hint, elem_id
    hints = password_hints(page)
    assert {"sagemaker_password", "sagemaker_user_password"} <= hints.keys()
    assert set(hints.values()) <= PASSWORD_HINTS, hints

    # A re-render as gradio does it: the input is replaced by a new one without the hint.
    page.eval_on_selector(
        "#sagemaker_user_password input",
        "el => { const fresh = el.cloneNode(); fresh.removeAttribute('autocomplete'); "
        "el.replaceWith(fresh); }",
    )
    expect(field(page, "sagemaker_user_password")).to_have_attribute("autocomplete", "new-password")
    shot(page, "js_autocomplete_signed_in")


def test_leaving_asks_first_only_while_an_action_runs(tab_server, silent_server, page):
    open_tab(page, tab_server.url)
    assert page.evaluate(ASKS_TO_STAY) is False

    connect(page, silent_server.url, "not-the-api-token", "admin", "pw-not-checked-0")
    status = area(page, "sagemaker_connection_status")
    expect(page.locator(PENDING).first).to_be_attached()
    assert page.evaluate(ASKS_TO_STAY) is True

    # A real navigation away: Chromium asks, the person stays, the action goes on.
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    with pytest.raises(PlaywrightError):
        page.goto(tab_server.url + "?elsewhere", timeout=5_000)
    assert dialogs == ["beforeunload"]
    assert "elsewhere" not in page.url
    expect(page.locator(PENDING).first).to_be_attached()
    shot(page, "js_leave_guard_pending")

    silent_server.answer()
    expect(status).to_contain_text("API token was refused", timeout=SIGN_IN_TIMEOUT_MS)
    expect(page.locator(PENDING)).to_have_count(0)
    assert page.evaluate(ASKS_TO_STAY) is False
    open_tab(page, tab_server.url)  # a dialog now would be dismissed and the load refused
    assert dialogs == ["beforeunload"]


def test_the_standalone_page_serves_only_the_listed_scripts(tab_server):
    import urllib.error
    import urllib.request

    base = tab_server.url + "sagemaker-extension/javascript/"
    with urllib.request.urlopen(base + "sagemaker.js", timeout=5) as reply:  # noqa: S310
        assert reply.read() == SCRIPT.read_bytes()
    for name in ("missing.js", "..%2Fstyle.css", "%2E%2E/pyproject.toml"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + name, timeout=5)  # noqa: S310
        assert refused.value.code == 404, name
