"""Generate from the tab in Chromium: a prompt becomes an image on a local endpoint.

The stack runs local endpoints with the engine environment (torch, diffusers) and holds the
demo model and an endpoint in service (`tests/client/generation_support.py`). What an artist
does: open txt2img on SageMaker, type a prompt, click Generate, see the image with its
infotext, and find the job in the history; and what an operator sees: the endpoint in
service in Inference Endpoint Management.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import TabServer
from tests.browser.test_settings_tab import SIGN_IN_TIMEOUT_MS, area, field, open_tab, shot
from tests.browser.test_settings_tab import connect as connect_page
from tests.client.generation_support import Generating, generating_stack

pytestmark = pytest.mark.browser

GENERATE_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def generating(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generating]:
    with generating_stack(tmp_path_factory.mktemp("generation")) as ready:
        yield ready


@pytest.fixture(scope="module")
def txt2img_tab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TabServer]:
    server = TabServer(data_dir=tmp_path_factory.mktemp("webui"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _sign_in(page: Page, generating: Generating) -> None:
    stack = generating.stack
    connect_page(page, stack.url, stack.api_token, stack.username, stack.password)
    expect(area(page, "sagemaker_connection_status")).to_contain_text(
        f"Signed in as {stack.username}", timeout=SIGN_IN_TIMEOUT_MS
    )


def _set_number(page: Page, elem_id: str, value: int) -> None:
    """Type into the number box of a gradio slider or number field."""
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")


def test_generate_shows_the_image_with_its_infotext_and_keeps_it_in_history(
    generating, txt2img_tab, page
):
    open_tab(page, txt2img_tab.url)
    _sign_in(page, generating)
    page.locator("button", has_text="txt2img on SageMaker").first.click()
    expect(field(page, "sagemaker_txt2img_checkpoint")).to_have_value(
        f"{generating.model['name']} [{generating.model['sha256'][:10]}]"
    )

    field(page, "sagemaker_txt2img_prompt").fill("a lighthouse at dusk")
    for elem_id, value in (("steps", 2), ("width", 64), ("height", 64), ("seed", 42)):
        _set_number(page, f"sagemaker_txt2img_{elem_id}", value)
    page.locator("#sagemaker_txt2img_generate").click()

    status = area(page, "sagemaker_txt2img_status")
    expect(status).to_contain_text("1 image in", timeout=GENERATE_TIMEOUT_MS)
    expect(status).to_contain_text("(seeds 42)")
    expect(page.locator("#sagemaker_txt2img_gallery img").first).to_be_visible()
    infotext = field(page, "sagemaker_txt2img_infotext")
    expect(infotext).to_have_value(re.compile(r"^a lighthouse at dusk\n.*Seed: 42, Size: 64x64"))
    expect(area(page, "sagemaker_history_table")).to_contain_text("succeeded")
    expect(page.locator("#sagemaker_history_thumbnails img").first).to_be_visible()
    shot(page, "txt2img_generated")

    page.locator("#sagemaker_history_table td").filter(has_text="a lighthouse at dusk").last.click()
    expect(page.locator("#sagemaker_history_gallery img").first).to_be_visible()
    expect(area(page, "sagemaker_history_details")).to_contain_text("succeeded")
    expect(field(page, "sagemaker_history_infotext")).to_have_value(
        re.compile(r"^a lighthouse at dusk\n")
    )

    page.locator("button", has_text="Inference Endpoint Management").first.click()
    row = page.locator("#sagemaker_endpoints_table tr").filter(has_text=generating.endpoint).last
    expect(row).to_contain_text("InService")
    shot(page, "endpoints_table")


def test_the_status_line_follows_the_job_and_cancel_stops_it(generating, txt2img_tab, page):
    """Last: the runtime works on the cancelled job until the stack stops."""
    open_tab(page, txt2img_tab.url)
    _sign_in(page, generating)
    page.locator("button", has_text="txt2img on SageMaker").first.click()
    field(page, "sagemaker_txt2img_prompt").fill("a long job")
    for elem_id, value in (("steps", 150), ("batch_size", 8), ("batch_count", 4)):
        _set_number(page, f"sagemaker_txt2img_{elem_id}", value)
    page.locator("#sagemaker_txt2img_generate").click()

    status = area(page, "sagemaker_txt2img_status")
    expect(status).to_contain_text(
        re.compile(rf"Job [0-9a-f]{{12}}… (queued|running) on {generating.endpoint} — \d+ s"),
        timeout=GENERATE_TIMEOUT_MS,
    )
    shot(page, "txt2img_running")
    page.locator("#sagemaker_txt2img_cancel").click()

    expect(status).to_contain_text("Cancelled.", timeout=GENERATE_TIMEOUT_MS)
    expect(area(page, "sagemaker_history_table")).to_contain_text("cancelled")
