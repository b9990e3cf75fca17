"""The Cloud Models Management sub-tab in Chromium, against a real local stack.

What a model manager does: upload a file from the computer and one from the WebUI's model
folder and see both `Active` in the table with their short hash, then rename one and delete
it after a confirmation. What every user does: see the models, and change their own password
in the API and User Settings sub-tab (the local stack's banner asks its admin to do so).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from aws_extension.client.api import ApiClient
from aws_extension.client.uploader import Uploader
from tests.browser.conftest import TabServer
from tests.browser.test_settings_tab import (
    SIGN_IN_TIMEOUT_MS,
    area,
    connect,
    field,
    open_tab,
    shot,
    sign_in,
)

pytestmark = pytest.mark.browser

UPLOAD_TIMEOUT_MS = 60_000


def _model_file(path: Path) -> str:
    """Write a small model file of its own content; its short hash, as the table shows it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = f"{path.name} {uuid.uuid4().hex}\n".encode() * 64
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()[:10]


def _upload_as_admin(stack, path: Path, model_type: str) -> None:
    """A model made through the API, for the tests of what comes after an upload."""
    _model_file(path)
    with ApiClient(stack.url, stack.api_token) as admin:
        admin.login(stack.username, stack.password)
        with Uploader(admin, path.parent / "upload-state") as uploader:
            uploader.upload(path, model_type)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def models_tab(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[TabServer]:
    """The standalone tab with an A1111-like models folder (`--models-dir`)."""
    server = TabServer(
        data_dir=tmp_path_factory.mktemp("webui"), options=("--models-dir", str(models_dir))
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _models_tab(page: Page) -> None:
    page.locator("button", has_text="Cloud Models Management").first.click()


def _pick(page: Page, elem_id: str, choice: str) -> None:
    """Choose in a gradio dropdown (single or multiple choice)."""
    field(page, elem_id).click()
    page.locator(f"#{elem_id} li").filter(has_text=choice).first.click()
    page.keyboard.press("Escape")


def _row(page: Page, name: str) -> Locator:
    # .last: gradio 4 draws an invisible copy of the table first, to size the columns.
    return page.locator("#sagemaker_models_table tr").filter(has_text=name).last


def test_a_file_from_the_computer_is_uploaded_and_shown_active(stack, models_tab, page, tmp_path):
    upload = tmp_path / "tiny-upload.safetensors"
    short_hash = _model_file(upload)
    open_tab(page, models_tab.url)
    sign_in(page, stack)
    _models_tab(page)
    page.locator("button", has_text="From this computer").first.click()
    _pick(page, "sagemaker_models_computer_type", "Lora")

    page.locator("#sagemaker_models_computer_files input[type=file]").set_input_files(upload)
    # The file has reached the WebUI once gradio shows its size as a download link.
    chosen = page.locator("#sagemaker_models_computer_files a[download]").filter(has_text="KB")
    expect(chosen).to_be_visible()
    # (gradio 4 shows the stem and the extension apart.)
    expect(area(page, "sagemaker_models_computer_files")).to_contain_text(upload.stem)
    page.locator("#sagemaker_models_computer_upload").click()

    results = area(page, "sagemaker_models_upload_results")
    expect(results).to_contain_text(f"{upload.name}: Active", timeout=UPLOAD_TIMEOUT_MS)
    expect(results).to_contain_text(f"hash {short_hash}")
    row = _row(page, upload.name)
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text(short_hash)
    expect(row).to_contain_text("Lora")
    shot(page, "models_computer_upload")


def test_a_file_from_the_model_folder_is_uploaded_and_shown_active(
    stack, models_tab, models_dir, page
):
    short_hash = _model_file(models_dir / "Lora" / "styles" / "ink.safetensors")
    _model_file(models_dir / "Lora" / "notes.safetensors")
    open_tab(page, models_tab.url)
    sign_in(page, stack)
    _models_tab(page)

    _pick(page, "sagemaker_models_folder_type", "Lora")
    expect(area(page, "sagemaker_models_folder_where")).to_contain_text("2 model files")
    _pick(page, "sagemaker_models_folder_files", "styles/ink.safetensors")
    page.locator("#sagemaker_models_folder_upload").click()

    results = area(page, "sagemaker_models_upload_results")
    expect(results).to_contain_text("ink.safetensors: Active", timeout=UPLOAD_TIMEOUT_MS)
    expect(_row(page, "ink.safetensors")).to_contain_text(short_hash)
    shot(page, "models_folder_upload")


def test_a_model_picked_in_the_table_is_renamed_then_deleted(stack, models_tab, page, tmp_path):
    _upload_as_admin(stack, tmp_path / "to-rename.safetensors", "VAE")
    open_tab(page, models_tab.url)
    sign_in(page, stack)
    _models_tab(page)

    page.locator("#sagemaker_models_table td").filter(has_text="to-rename.safetensors").last.click()
    expect(field(page, "sagemaker_models_name")).to_have_value("to-rename.safetensors")
    field(page, "sagemaker_models_name").fill("renamed.safetensors")
    page.locator("#sagemaker_models_rename").click()
    status = area(page, "sagemaker_models_status")
    expect(status).to_contain_text("to renamed.safetensors")
    expect(_row(page, "renamed.safetensors")).to_contain_text("VAE")

    page.locator("#sagemaker_models_delete").click()
    confirm = page.locator("#sagemaker_models_delete_confirm")
    expect(area(page, "sagemaker_models_delete_question")).to_contain_text(
        "Delete model renamed.safetensors (VAE)?"
    )
    shot(page, "models_delete_confirmation")
    confirm.click()
    expect(status).to_contain_text("Deleted model renamed.safetensors (VAE).")
    expect(area(page, "sagemaker_models_table")).not_to_contain_text("renamed.safetensors")


def test_a_user_sees_the_models_and_changes_their_own_password(stack, models_tab, page, tmp_path):
    username, password, new_password = "pat", "pat's first pass 1", "pat's second pass 2"
    _upload_as_admin(stack, tmp_path / "shared.safetensors", "Stable-diffusion")
    with ApiClient(stack.url, stack.api_token) as admin:
        admin.login(stack.username, stack.password)
        admin.create_role("readers", ["inference:all"])
        admin.create_user(username, password, ["readers"])
    open_tab(page, models_tab.url)
    connect(page, stack.url, stack.api_token, username, password)
    status = area(page, "sagemaker_connection_status")
    expect(status).to_contain_text(f"Signed in as {username}", timeout=SIGN_IN_TIMEOUT_MS)

    _models_tab(page)
    expect(_row(page, "shared.safetensors")).to_contain_text("Active")
    expect(page.locator("#sagemaker_models_upload_panel")).to_be_hidden()
    expect(page.locator("#sagemaker_models_editor")).to_be_hidden()
    shot(page, "models_reader_view")

    page.locator("button", has_text="API and User Settings").first.click()
    field(page, "sagemaker_own_password_current").fill(password)
    field(page, "sagemaker_own_password_new").fill(new_password)
    field(page, "sagemaker_own_password_repeat").fill(new_password)
    page.locator("#sagemaker_own_password_change").click()
    expect(area(page, "sagemaker_own_password_status")).to_contain_text(
        "Your password was changed."
    )
    for elem_id in ("current", "new", "repeat"):
        expect(field(page, f"sagemaker_own_password_{elem_id}")).to_have_value("")
    shot(page, "models_password_changed")

    page.locator("#sagemaker_signout").click()
    expect(status).to_contain_text("Signed out.")
    connect(page, stack.url, "", username, new_password)
    expect(status).to_contain_text(f"Signed in as {username}", timeout=SIGN_IN_TIMEOUT_MS)
