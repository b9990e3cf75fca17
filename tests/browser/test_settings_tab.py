"""The API and User Settings sub-tab in Chromium, against a real local stack.

What a person does on first use: paste the API URL and token with the admin's username and
password, click Test Connection & Update Setting, then create a role and a user. Checked
along the way: failures are words, the token is never on the page after saving, the
settings file is private and holds no password, and a restart keeps the sign-in.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.browser

SIGN_IN_TIMEOUT_MS = 30_000
#: Where the screenshots go, to look at how the tab renders.
SHOTS = Path(os.environ.get("SAGEMAKER_SCREENSHOTS", "/tmp/shots"))


def field(page: Page, elem_id: str) -> Locator:
    """The input of a gradio Textbox/Dropdown (gradio puts elem_id on its wrapper)."""
    return page.locator(f"#{elem_id} input, #{elem_id} textarea").first


def area(page: Page, elem_id: str) -> Locator:
    """An HTML/Dataframe area by elem_id (gradio 3.41 repeats some ids on inner elements)."""
    return page.locator(f"#{elem_id}").first


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


#: What the page-load handler says; until then the area shows gradio's "processing".
LOADED = re.compile("Signed in as|Signed out|No API is configured|Not signed in")


def open_tab(page: Page, url: str) -> None:
    """Load the page and wait until the page-load handler has said who is signed in.

    Typing before that would race the handler's answer, which fills in saved values.
    """
    page.goto(url)
    expect(area(page, "sagemaker_connection_status")).to_contain_text(
        LOADED, timeout=SIGN_IN_TIMEOUT_MS
    )


def connect(page: Page, api_url: str, api_token: str, username: str, password: str) -> None:
    field(page, "sagemaker_api_url").fill(api_url)
    field(page, "sagemaker_api_token").fill(api_token)
    field(page, "sagemaker_username").fill(username)
    field(page, "sagemaker_password").fill(password)
    page.locator("#sagemaker_connect").click()


def sign_in(page: Page, stack) -> None:
    connect(page, stack.url, stack.api_token, stack.username, stack.password)
    expect(area(page, "sagemaker_connection_status")).to_contain_text(
        f"Signed in as {stack.username}", timeout=SIGN_IN_TIMEOUT_MS
    )


def test_a_wrong_api_token_is_refused_in_words(stack, tab_server, page):
    open_tab(page, tab_server.url)

    connect(page, stack.url, "not-the-api-token", stack.username, stack.password)

    status = area(page, "sagemaker_connection_status")
    expect(status).to_contain_text("API token was refused", timeout=SIGN_IN_TIMEOUT_MS)
    expect(page.locator("#sagemaker_roles_panel")).to_be_hidden()
    shot(page, "settings_wrong_token")


def test_an_unreachable_api_is_refused_in_words(stack, tab_server, page):
    open_tab(page, tab_server.url)

    connect(page, "http://127.0.0.1:9", stack.api_token, stack.username, stack.password)

    expect(area(page, "sagemaker_connection_status")).to_contain_text(
        "Cannot reach", timeout=SIGN_IN_TIMEOUT_MS
    )


def test_sign_in_saves_the_settings_and_keeps_secrets_off_the_page(stack, tab_server, page):
    open_tab(page, tab_server.url)
    shot(page, "settings_signed_out")

    sign_in(page, stack)

    token = field(page, "sagemaker_api_token")
    expect(token).to_have_value("")
    expect(token).to_have_attribute("placeholder", re.compile("saved"))
    expect(field(page, "sagemaker_password")).to_have_value("")
    expect(page.locator("#sagemaker_signout")).to_be_visible()
    expect(area(page, "sagemaker_roles_table")).to_contain_text("admin")
    values = page.eval_on_selector_all("input, textarea", "els => els.map(e => e.value)")
    assert stack.api_token not in page.content()
    assert not any(stack.api_token in value or stack.password in value for value in values)
    shot(page, "settings_signed_in")

    settings = tab_server.settings_file
    assert settings.stat().st_mode & 0o777 == 0o600
    text = settings.read_text()
    assert stack.password not in text
    saved = json.loads(text)
    assert saved["api_url"] == stack.url
    assert saved["users"][""]["username"] == stack.username


def test_a_role_and_a_user_with_it_can_be_created(stack, tab_server, page):
    open_tab(page, tab_server.url)
    sign_in(page, stack)

    field(page, "sagemaker_role_name").fill("artists")
    page.locator("#sagemaker_role_permissions label").filter(has_text="run inference").click()
    page.locator("#sagemaker_role_create").click()
    expect(area(page, "sagemaker_roles_status")).to_contain_text("Created role artists")
    expect(area(page, "sagemaker_roles_table")).to_contain_text("artists")
    expect(area(page, "sagemaker_roles_table")).to_contain_text("inference:all")

    field(page, "sagemaker_user_name").fill("carol")
    field(page, "sagemaker_user_password").fill("pw-Carol-5521-long")
    roles = field(page, "sagemaker_user_roles")
    roles.click()
    page.locator("#sagemaker_user_roles li").filter(has_text="artists").first.click()
    page.keyboard.press("Escape")
    page.locator("#sagemaker_user_create").click()

    expect(area(page, "sagemaker_users_status")).to_contain_text("Created user carol")
    row = page.locator("#sagemaker_users_table tr").filter(has_text="carol")
    expect(row).to_contain_text("artists")
    expect(field(page, "sagemaker_user_password")).to_have_value("")
    shot(page, "settings_role_and_user_created")


def test_a_row_picked_in_the_table_is_deleted_after_a_confirmation(stack, tab_server, page):
    open_tab(page, tab_server.url)
    sign_in(page, stack)
    field(page, "sagemaker_role_name").fill("short-lived")
    page.locator("#sagemaker_role_permissions label").filter(has_text="train models").click()
    page.locator("#sagemaker_role_create").click()
    expect(area(page, "sagemaker_roles_table")).to_contain_text("short-lived")
    field(page, "sagemaker_role_name").fill("")
    page.locator("#sagemaker_role_permissions input:checked").uncheck()

    # .last: gradio 4 draws an invisible copy of the table first, to size the columns.
    page.locator("#sagemaker_roles_table td").filter(has_text="short-lived").last.click()
    expect(field(page, "sagemaker_role_name")).to_have_value("short-lived")
    checked = page.locator("#sagemaker_role_permissions label").filter(has_text="train models")
    expect(checked.locator("input")).to_be_checked()
    page.locator("#sagemaker_role_delete").click()
    confirm = page.locator("#sagemaker_role_delete_confirm")
    expect(confirm).to_be_visible()
    shot(page, "settings_delete_confirmation")
    confirm.click()

    expect(area(page, "sagemaker_roles_status")).to_contain_text("Deleted role short-lived")
    expect(area(page, "sagemaker_roles_table")).not_to_contain_text("short-lived")
    expect(confirm).to_be_hidden()


def test_after_a_restart_the_saved_sign_in_is_used(stack, tab_server, page):
    open_tab(page, tab_server.url)
    sign_in(page, stack)

    tab_server.restart()
    open_tab(page, tab_server.url)

    status = area(page, "sagemaker_connection_status")
    expect(status).to_contain_text(f"Signed in as {stack.username}")
    expect(field(page, "sagemaker_api_url")).to_have_value(stack.url)
    expect(field(page, "sagemaker_api_token")).to_have_value("")
    assert stack.api_token not in page.content()

    page.locator("#sagemaker_signout").click()
    expect(status).to_contain_text("Signed out.")
    expect(page.locator("#sagemaker_users_panel")).to_be_hidden()
    assert "refresh_token" not in json.loads(tab_server.settings_file.read_text())["users"].get(
        "", {}
    )
