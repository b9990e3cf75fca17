"""The history of the txt2img sub-tab: the user's own jobs, newest first, a page at a time.

A thumbnail per job (its first image; grey while it has none) above a table of status,
prompt and time. Picking a job in either reopens it: its images in a gallery, the infotext of
the image picked there. The picked job can be cancelled while it is queued or running, or
deleted with its images (two steps). The server lists only the caller's own jobs, so one
user's images never show in another's history.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import gradio as gr
from PIL import Image

from aws_extension.client.api import ApiClient
from aws_extension.client.errors import ApiError
from aws_extension.client.jobs import fetch_result
from aws_extension.contract import (
    INFERENCE_FAILED,
    INFERENCE_SUCCEEDED,
    PERMISSION_INFERENCE,
)
from aws_extension.ui import gallery_images, paging
from aws_extension.ui.feedback import UiError, escape, notice, success
from aws_extension.ui.job_images import JobImages
from aws_extension.ui.paging import PageState
from aws_extension.ui.records_panel import RecordsPanel
from aws_extension.ui.tables import when
from aws_extension.ui.views import Updates

HISTORY_HEADERS = ["Created at", "Status", "Prompt", "Images", "Endpoint"]
#: How much of a prompt the table and the captions show.
PROMPT_WORDS = 120
CAPTION_WORDS = 40
#: Thumbnails kept in memory (a few KiB each): those of a finished job never change.
THUMBNAIL_CACHE = 200
#: Downloads of one page's thumbnails at once.
THUMBNAIL_WORKERS = 4


def shorten(text: object, length: int) -> str:
    words = " ".join(str(text or "").split())
    return words if len(words) <= length else words[: length - 1] + "…"


def prompt_of(job: dict) -> str:
    payload = job.get("payload")
    return str(payload.get("prompt") or "") if isinstance(payload, dict) else ""


def job_status(job: dict) -> str:
    """The status, with the reason of a failure."""
    status = str(job.get("status", ""))
    error = job.get("error")
    return f"{status}: {error}" if status == INFERENCE_FAILED and error else status


def history_rows(items: list[dict]) -> list[list[str]]:
    return [
        [
            when(job.get("created_at")),
            job_status(job),
            shorten(prompt_of(job), PROMPT_WORDS),
            str(len(job.get("images") or [])),
            str(job.get("endpoint") or ""),
        ]
        for job in items
    ]


class HistoryPanel(JobImages, RecordsPanel):
    noun = "job"
    plural = "history"
    title = "History"
    permission = PERMISSION_INFERENCE
    headers = HISTORY_HEADERS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._thumbnails: OrderedDict[str, Image.Image] = OrderedDict()
        self._thumbnails_lock = threading.Lock()

    @property
    def form_id(self) -> str:
        return "sagemaker_history"

    @property
    def key_field(self) -> Any:
        return self.job_id

    def list_page(self, client: ApiClient) -> paging.ListPage:
        return client.list_inferences

    def rows(self, items: list[dict]) -> list[list[str]]:
        return history_rows(items)

    def build_filters(self) -> None:
        """The thumbnails, above the table: one per job of the page, in the same order."""
        self.thumbnails = gr.Gallery(
            label="Jobs on this page (click one to reopen it)",
            columns=8,
            height=240,
            object_fit="contain",
            allow_preview=False,
            elem_id="sagemaker_history_thumbnails",
        )

    def build_form(self) -> None:
        with gr.Row(elem_classes="sagemaker-pager"):
            self.job_id = gr.Textbox(
                label="Picked job", interactive=False, max_lines=1, elem_id="sagemaker_history_id"
            )
            self.cancel_job = gr.Button("Cancel job", elem_id="sagemaker_history_cancel")
            self.delete_button()
        self.details = gr.HTML(elem_id="sagemaker_history_details")
        self.build_images("sagemaker_history", "Images of the picked job", columns=4, height=360)

    def wire_form(self) -> None:
        self.thumbnails.select(self.on_select, inputs=[self.items], outputs=self.form_outputs)
        self.wire_images()
        self.cancel_job.click(
            self.on_cancel_job, inputs=[self.job_id, self.state], outputs=self.listing_outputs
        )

    @property
    def viewer(self) -> list[Any]:
        """What shows the picked job."""
        return [self.job_id, self.details, self.gallery, self.infotext, self.infotexts]

    @property
    def listing_outputs(self) -> list[Any]:
        # The viewer too: deleting the job it shows empties it.
        return [*super().listing_outputs, self.thumbnails, *self.viewer]

    @property
    def form_outputs(self) -> list[Any]:
        return self.viewer

    def fill_form(self, item: dict) -> Updates:
        return {self.job_id: str(item.get("id", ""))}

    def describe(self, key: str, items: list[dict]) -> str:
        job = next((i for i in items if i.get("id") == key), None)
        if job is None:
            return escape(key)
        prompt = shorten(prompt_of(job), CAPTION_WORDS) or "no prompt"
        return f"{escape(prompt)} ({escape(when(job.get('created_at')))}) and its images"

    def delete(self, client: ApiClient, key: str) -> None:
        client.delete_inference(key)

    def hide(self) -> Updates:
        return {**super().hide(), **self._viewer_cleared(), self.thumbnails: []}

    def _viewer_cleared(self) -> Updates:
        return {self.job_id: "", self.details: "", **self.images_shown([], [])}

    def _load(self, client: ApiClient, state: PageState) -> Updates:
        updates = super()._load(client, state)
        updates[self.thumbnails] = self._page_thumbnails(client, updates[self.items])
        return updates

    # -- handlers ----------------------------------------------------------------------------

    def on_select(self, items: list[dict], evt: gr.SelectData, request: gr.Request) -> Updates:
        """Reopen the job picked in the table or among the thumbnails, as it is now."""
        index = evt.index
        row = index[0] if isinstance(index, (list, tuple)) else index
        if not isinstance(row, int) or not 0 <= row < len(items):
            return {}
        job_id = str(items[row].get("id", ""))
        user = self._context.webui_user(request)
        try:
            client = self._sessions.client(user)
            job = client.get_inference(job_id)
            result = fetch_result(client, job) if job.get("status") == INFERENCE_SUCCEEDED else None
        except (ApiError, UiError) as exc:
            return {
                **self._viewer_cleared(),
                self.job_id: job_id,
                self.details: self._failure(user, exc),
            }
        if result is None:
            return {**self._viewer_cleared(), self.job_id: job_id, self.details: job_details(job)}
        items = gallery_images.gallery(result.images, result.infotexts, result.seeds)
        return {
            self.job_id: job_id,
            self.details: job_details(job),
            **self.images_shown(items, result.infotexts),
        }

    def on_cancel_job(self, job_id: str, state: PageState, request: gr.Request) -> Updates:
        def cancel(client: ApiClient) -> str:
            key = (job_id or "").strip()
            if not key:
                raise UiError("Pick a job in the history first.")
            job = client.cancel_inference(key)
            return f"Cancelled the job ({escape(job.get('status', ''))})."

        return self.act(request, state, cancel)

    def on_confirm_delete(
        self, key: str, state: PageState, items: list[dict], request: gr.Request
    ) -> Updates:
        updates = super().on_confirm_delete(key, state, items, request)
        if self.table in updates:  # deleted: the table was listed again
            updates.update(self._viewer_cleared())
        return updates

    # -- thumbnails --------------------------------------------------------------------------

    def _page_thumbnails(self, client: ApiClient, jobs: list[dict]) -> list[Any]:
        """One captioned thumbnail per job, fetched in parallel; a grey tile for jobs without
        an image, or whose image cannot be fetched now (the table still lists them)."""
        with ThreadPoolExecutor(max_workers=THUMBNAIL_WORKERS) as pool:
            pictures = list(pool.map(lambda job: self._thumbnail(client, job), jobs))
        return [
            (picture, f"{job.get('status', '')} · {shorten(prompt_of(job), CAPTION_WORDS)}")
            for picture, job in zip(pictures, jobs, strict=True)
        ]

    def _thumbnail(self, client: ApiClient, job: dict) -> Image.Image:
        job_id = str(job.get("id", ""))
        images = _images(job)
        if job.get("status") != INFERENCE_SUCCEEDED or not images:
            return gallery_images.placeholder()
        with self._thumbnails_lock:
            cached = self._thumbnails.get(job_id)
            if cached is not None:
                self._thumbnails.move_to_end(job_id)
                return cached
        try:
            picture = gallery_images.thumbnail(client.download_image(images[0]["url"]))
        except ApiError:
            return gallery_images.placeholder()
        with self._thumbnails_lock:
            self._thumbnails[job_id] = picture
            while len(self._thumbnails) > THUMBNAIL_CACHE:
                self._thumbnails.popitem(last=False)
        return picture


def _images(job: dict) -> list[dict]:
    images = job.get("images")
    return (
        [i for i in images if isinstance(i, dict) and i.get("url")]
        if isinstance(images, list)
        else []
    )


def job_details(job: dict) -> str:
    """The picked job in a line: status (with the error), endpoint, model, when, how long."""
    status = str(job.get("status", ""))
    parts = [f"<b>{escape(status)}</b>"]
    if job.get("error"):
        parts.append(escape(job["error"]))
    if job.get("endpoint"):
        parts.append(f"on {escape(job['endpoint'])}")
    models = job.get("models") if isinstance(job.get("models"), dict) else {}
    checkpoint = models.get("Stable-diffusion")
    if isinstance(checkpoint, dict) and checkpoint.get("name"):
        parts.append(f"model {escape(checkpoint['name'])}")
    parts.append(f"created {escape(when(job.get('created_at')))}")
    took = seconds_between(job.get("started_at"), job.get("finished_at"))
    if took is not None:
        parts.append(f"ran {took:.1f} s")
    text = " — ".join(parts)
    if status == INFERENCE_FAILED:
        return f'<span class="sagemaker-error">{text}</span>'
    return success(text) if status == INFERENCE_SUCCEEDED else notice(text)


def seconds_between(start: object, end: object) -> float | None:
    """Seconds from one ISO 8601 timestamp to another; None when either is missing."""
    if not (isinstance(start, str) and isinstance(end, str)):
        return None
    try:
        first = datetime.fromisoformat(start.replace("Z", "+00:00"))
        last = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    if (first.tzinfo is None) != (last.tzinfo is None):
        return None
    return max(0.0, (last - first).total_seconds())
