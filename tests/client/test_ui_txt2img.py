"""The txt2img sub-tab: Generate, its gallery, Cancel, and the history, against a real stack.

The module's stack runs local endpoints with the engine environment's interpreter (torch,
diffusers), so a job really runs: on the demo model (the tiny random SD 1.x checkpoint the
runtime's `make-demo-model` writes, uploaded like any model) on a local `diffusers` endpoint.
Each test signs in as a user of its own, so its history holds its own jobs only. The test
that cancels a long job comes last: the runtime works on it until the stack stops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from PIL import Image

from aws_extension.client.api import ApiClient
from aws_extension.client.uploader import Uploader
from aws_extension.ui.feedback import UiError, failure, notice
from aws_extension.ui.model_choices import AUTOMATIC_ENDPOINT, NO_VAE, model_label
from aws_extension.ui.paging import PageState
from aws_extension.ui.txt2img_panel import BUSY, NO_CHECKPOINT, NOT_ALLOWED, SIGN_IN
from tests.client.conftest import Server, model_bytes
from tests.client.generation_support import generating_stack
from tests.client.tab_support import REQUEST, cells, connect, visible
from tests.support.local_stack import Stack

ENDPOINT = "tiny"
#: Bound on a job's first report, and on the end of a cancelled one.
WAIT_S = 300.0


@dataclass
class Run:
    """What one click of Generate showed: the page's final state, and the status lines
    the page showed on the way."""

    updates: dict = field(default_factory=dict)
    statuses: list[str] = field(default_factory=list)
    #: Set once the status line reports a submitted job.
    reported: threading.Event = field(default_factory=threading.Event)

    def follow(self, tab, events: Iterator[dict]) -> Run:
        for updates in events:
            self.updates.update(updates)
            status = updates.get(tab.txt2img.status)
            if status is not None:
                self.statuses.append(status)
                if "Job " in status:
                    self.reported.set()
        return self


@dataclass(frozen=True)
class Generation:
    """The module's stack, with users and roles of the tests' choice."""

    stack: Stack
    admin: ApiClient
    model: dict

    def server(self, roles: list[str]) -> Server:
        """A `Server` signing in as a new user with `roles`."""
        login = self._admin_side().add_user("artist", roles)
        return Server(self.stack, self.admin, login.username, login.password)

    def role(self, prefix: str, permissions: list[str]) -> str:
        return self._admin_side().add_role(prefix, permissions)

    def _admin_side(self) -> Server:
        return Server(self.stack, self.admin, self.stack.username, self.stack.password)


@pytest.fixture(scope="module")
def generation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generation]:
    """The endpoint is for the role `admin` only, so other users have none to use."""
    folder = tmp_path_factory.mktemp("generation")
    with generating_stack(folder, ENDPOINT, allowed_roles=["admin"]) as ready:
        yield Generation(ready.stack, ready.admin, ready.model)


@pytest.fixture
def artist(generation: Generation) -> Server:
    """A user of the role `admin` (every permission), with no job yet."""
    return generation.server(["admin"])


def _generate(tab, shown: dict, run: Run | None = None, **given) -> dict:
    """Click Generate with the panel's lists as signing in filled them, small and fast."""
    t = tab.txt2img
    fields = {
        "prompt": "a red fox",
        "negative_prompt": "blurry",
        "sampler": "Euler a",
        "scheduler": "Automatic",
        "steps": 2,
        "cfg_scale": 7.0,
        "width": 64,
        "height": 64,
        "seed": 1234,
        "batch_size": 2,
        "batch_count": 1,
        "checkpoint": shown[t.checkpoint]["value"],
        "loras": [],
        "lora_weight": 1.0,
        "vae": NO_VAE,
        "endpoint": AUTOMATIC_ENDPOINT,
        "choices": shown[t.choices],
        **given,
    }
    return (run or Run()).follow(tab, t.on_generate(**fields, request=REQUEST)).updates


def test_the_panel_offers_the_active_models_and_the_endpoints(generation, artist, tab):
    shown = connect(tab, artist)

    t = tab.txt2img
    assert visible(shown[t.notice]) is False
    assert visible(shown[t.panel]) is True
    label = model_label(generation.model)
    assert shown[t.checkpoint]["choices"] == [label]
    assert shown[t.checkpoint]["value"] == label
    assert shown[t.loras]["choices"] == []
    assert shown[t.vae]["choices"] == [NO_VAE]
    assert shown[t.endpoint]["choices"] == [AUTOMATIC_ENDPOINT, ENDPOINT]
    assert visible(shown[tab.history.panel]) is True
    assert cells(shown[tab.history.table]) == []


def test_generate_shows_the_images_with_their_infotext_and_seed(artist, tab):
    shown = connect(tab, artist)
    run = Run()

    updates = _generate(tab, shown, run, endpoint=ENDPOINT)

    t = tab.txt2img
    assert "2 images in" in updates[t.status]
    assert f"on {ENDPOINT} (seeds 1234, 1235)" in updates[t.status]
    (first, first_caption), (second, second_caption) = updates[t.gallery]
    assert second.size == (64, 64)
    assert isinstance(first, Image.Image)
    assert first.size == (64, 64)
    assert (first_caption, second_caption) == ("Seed 1234", "Seed 1235")
    infotexts = updates[t.infotexts]
    assert updates[t.infotext] == infotexts[0]
    assert infotexts[0].startswith("a red fox\nNegative prompt: blurry\n")
    assert "Steps: 2, Sampler: Euler a" in infotexts[0]
    assert "Seed: 1234" in infotexts[0]
    assert "Seed: 1235" in infotexts[1]
    # Saved from the gallery, an image carries its infotext where A1111 writes it.
    assert first.info["parameters"] == infotexts[0]
    # The status line followed the job before it showed the outcome.
    assert run.statuses[0] == notice("Submitting the job…")
    assert any(f" on {ENDPOINT} — " in status for status in run.statuses[1:-1])

    picked = t.on_image(infotexts, SimpleNamespace(index=1))
    assert picked == {t.infotext: infotexts[1]}


def test_the_history_lists_the_job_and_reopens_it(artist, tab):
    shown = connect(tab, artist)
    _generate(tab, shown, prompt="a blue heron", batch_size=1)

    h = tab.history
    listed = h.on_refresh(PageState(), REQUEST)

    (row,) = cells(listed[h.table])
    assert row[1:5] == ["succeeded", "a blue heron", "1", ENDPOINT]
    assert row[0].endswith(" UTC")
    ((thumbnail, caption),) = listed[h.thumbnails]
    assert isinstance(thumbnail, Image.Image)
    assert caption == "succeeded · a blue heron"

    reopened = h.on_select(listed[h.items], SimpleNamespace(index=0), REQUEST)

    assert reopened[h.job_id] == listed[h.items][0]["id"]
    assert "succeeded" in reopened[h.details]
    ((image, image_caption),) = reopened[h.gallery]
    assert image.size == (64, 64)
    assert image_caption.startswith("Seed ")
    assert reopened[h.infotext].startswith("a blue heron\n")


def test_a_job_that_fails_says_why_and_stays_in_the_history(generation, artist, tab, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(model_bytes("broken"))
    with Uploader(generation.admin, tmp_path / "state") as uploader:
        lora = uploader.upload(broken, "Lora").checkpoint
    shown = connect(tab, artist)
    t = tab.txt2img
    label = model_label(lora)
    assert shown[t.loras]["choices"] == [label]

    updates = _generate(tab, shown, loras=[label], lora_weight=0.5)

    assert "Error: Job " in updates[t.status]
    assert f"failed on endpoint {ENDPOINT}" in updates[t.status]
    assert updates[t.gallery] == []
    listed = tab.history.on_refresh(PageState(), REQUEST)
    (row,) = cells(listed[tab.history.table])
    assert row[1].startswith("failed: ")
    job = listed[tab.history.items][0]
    assert job["models"]["Lora"][0]["weight"] == 0.5


def test_history_delete_asks_first_then_removes_the_job(artist, tab):
    shown = connect(tab, artist)
    _generate(tab, shown, prompt="an old lighthouse", batch_size=1)
    h = tab.history
    listed = h.on_refresh(PageState(), REQUEST)
    job_id = listed[h.items][0]["id"]
    h.on_select(listed[h.items], SimpleNamespace(index=[0, 2]), REQUEST)

    asked = h.on_delete(job_id, listed[h.items])
    assert "Delete job <b>an old lighthouse (" in asked[h.confirm_text]
    assert "and its images</b>?" in asked[h.confirm_text]

    done = h.on_confirm_delete(asked[h.pending], PageState(), listed[h.items], REQUEST)

    assert "Deleted job" in done[h.status]
    assert cells(done[h.table]) == []
    assert done[h.thumbnails] == []
    assert done[h.gallery] == []
    assert done[h.job_id] == ""


def test_cancelling_a_finished_job_is_refused_in_words(artist, tab):
    shown = connect(tab, artist)
    _generate(tab, shown, batch_size=1)
    h = tab.history
    listed = h.on_refresh(PageState(), REQUEST)

    updates = h.on_cancel_job(listed[h.items][0]["id"], PageState(), REQUEST)

    assert set(updates) == {h.status}
    assert "Error:" in updates[h.status]
    assert "Pick a job in the history first." in h.on_cancel_job("", PageState(), REQUEST)[h.status]


def test_missing_picks_are_said_before_anything_is_sent(artist, tab):
    shown = connect(tab, artist)
    t = tab.txt2img

    no_checkpoint = _generate(tab, shown, checkpoint=None)
    stale = _generate(tab, shown, loras=["gone.safetensors [0123456789]"])
    bad_seed = _generate(tab, shown, seed=1.5)

    assert NO_CHECKPOINT in no_checkpoint[t.status]
    assert "gone.safetensors [0123456789] is no longer listed" in stale[t.status]
    assert "click Refresh lists" in stale[t.status]
    assert "seed (-1 for a random one) must be a whole number" in bad_seed[t.status]
    assert artist.admin.list_inferences(user=artist.username).items == []


def test_without_an_endpoint_one_may_use_the_server_says_where_to_deploy(generation, tab):
    artists = generation.role("artists", ["inference:all"])
    ann = generation.server([artists])  # the endpoint is for the role admin only
    shown = connect(tab, ann)
    assert shown[tab.txt2img.endpoint]["choices"] == [AUTOMATIC_ENDPOINT]

    updates = _generate(tab, shown)

    assert "No endpoint you may use is in service" in updates[tab.txt2img.status]
    assert "Inference Endpoint Management" in updates[tab.txt2img.status]


def test_without_inference_all_the_sub_tab_says_so(generation, tab):
    managers = generation.role("managers", ["checkpoint:all"])
    cleo = generation.server([managers])

    shown = connect(tab, cleo)

    assert visible(shown[tab.txt2img.panel]) is False
    assert visible(shown[tab.txt2img.notice]) is True
    assert NOT_ALLOWED in shown[tab.txt2img.notice]["value"]
    assert visible(shown[tab.history.panel]) is False


def test_signed_out_the_sub_tab_says_where_to_sign_in(artist, tab):
    shown = connect(tab, artist)
    _generate(tab, shown, batch_size=1)

    updates = tab.connection.on_sign_out(REQUEST)

    t = tab.txt2img
    assert visible(updates[t.panel]) is False
    assert SIGN_IN in updates[t.notice]["value"]
    assert updates[t.gallery] == []
    assert updates[t.checkpoint]["choices"] == []
    assert cells(updates[tab.history.table]) == []
    assert updates[tab.history.thumbnails] == []


def test_cancel_stops_the_running_job(artist, tab):
    """Last: the runtime works on the cancelled job until the stack stops."""
    shown = connect(tab, artist)
    t = tab.txt2img
    assert t.on_cancel(REQUEST) == {t.status: notice("Nothing is running on this page.")}
    run = Run()
    # As much work as one job may ask for (32 images): it is still running when cancelled.
    big = {"steps": 150, "width": 512, "height": 512, "batch_size": 8, "batch_count": 4}
    running = threading.Thread(target=lambda: _generate(tab, shown, run, **big), daemon=True)
    running.start()
    deadline = time.monotonic() + WAIT_S
    while not run.reported.wait(0.1):
        assert running.is_alive(), run.statuses  # it ended before it was submitted
        assert time.monotonic() < deadline

    again = _generate(tab, shown)
    assert again == {t.status: failure(UiError(BUSY))}  # one job at a time per page

    assert t.on_cancel(REQUEST) == {t.status: notice("Cancelling…")}

    running.join(WAIT_S)
    assert not running.is_alive()
    assert run.updates[t.status] == notice("Cancelled.")
    assert run.updates[t.gallery] == []
    (job,) = artist.admin.list_inferences(user=artist.username).items
    assert job["status"] == "cancelled"
