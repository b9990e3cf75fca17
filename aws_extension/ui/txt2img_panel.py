"""The txt2img sub-tab's generator: a prompt and A1111's main settings, run on a cloud
endpoint with cloud models, the images in a gallery with their infotext and seed.

The WebUI needs no checkpoint and no GPU: the job goes to the middleware, which runs it on an
endpoint (the one picked, or the first in service the user may use), and the images come
back. `client.jobs.run_txt2img` does the work shared with the WebUI's own txt2img script:
submit once, long-poll, download. Its progress reports feed the status line (queued or
running, where, seconds so far), and Cancel sets the stop flag it watches, so the job is
cancelled on the server and the Generate event ends at once.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from aws_extension.client.api import ApiClient
from aws_extension.client.errors import ApiError
from aws_extension.client.jobs import (
    JobCancelled,
    JobProgress,
    JobResult,
    LoraChoice,
    Txt2ImgJob,
    run_txt2img,
)
from aws_extension.contract import PERMISSION_INFERENCE, PERMISSION_LABELS
from aws_extension.ui import gallery_images, model_choices, samplers
from aws_extension.ui.context import UiContext
from aws_extension.ui.feedback import UiError, escape, failure, notice, success
from aws_extension.ui.form_values import whole_number
from aws_extension.ui.job_images import JobImages
from aws_extension.ui.model_choices import AUTOMATIC_ENDPOINT, CHECKPOINT, LORA, NO_VAE, VAE
from aws_extension.ui.sessions import UserSessions
from aws_extension.ui.views import Updates

SIGN_IN = "Sign in on the API and User Settings tab to generate images in the cloud."
NOT_ALLOWED = (
    f"Your roles do not include {PERMISSION_INFERENCE} "
    f"({PERMISSION_LABELS[PERMISSION_INFERENCE]}): ask an admin for it."
)
BUSY = "A job of this page is running: wait for it, or cancel it."
NO_CHECKPOINT = (
    "Pick a cloud checkpoint. Only Active Stable-diffusion models you may use are listed: "
    "upload one in Cloud Models Management, then click Refresh lists."
)
#: The fields of A1111's txt2img tab that the panel offers, with A1111's ranges.
MAX_SIDE = 2048
MAX_STEPS = 150
MAX_BATCH_SIZE = 8
MAX_BATCH_COUNT = 16
LORA_WEIGHT_RANGE = 2.0


def progress_words(report: JobProgress) -> str:
    """`Job 0123456789ab… queued on sd-async-1a2b3c — 12 s`, for the status line."""
    where = report.job.get("endpoint")
    on = f" on {where}" if where else ""
    return f"Job {report.job_id[:12]}… {report.status}{on} — {report.elapsed:.0f} s"


def result_words(result: JobResult, seconds: float) -> str:
    count = len(result.images)
    images = "1 image" if count == 1 else f"{count} images"
    seeds = ", ".join(str(seed) for seed in result.seeds)
    where = result.job.get("endpoint")
    on = f" on {escape(where)}" if where else ""
    return success(f"{images} in {seconds:.1f} s{on} (seeds {escape(seeds)}).")


def cfg_value(cfg: float) -> float | int:
    """CFG as A1111 sends it: a whole number as an int, so the infotext reads `7`."""
    value = float(cfg)
    return int(value) if value.is_integer() else value


class Txt2ImgPanel(JobImages):
    """The generator of the txt2img sub-tab; shown to holders of `inference:all`."""

    def __init__(self, context: UiContext, sessions: UserSessions) -> None:
        self._context = context
        self._sessions = sessions
        # The stop flag of the job each page is running, by (WebUI user, gradio session):
        # Cancel arrives as an event of its own.
        self._running: dict[tuple[str, str], threading.Event] = {}
        self._running_lock = threading.Lock()

    # -- building ----------------------------------------------------------------------------

    def build(self) -> None:
        self.notice = gr.HTML(notice(SIGN_IN), elem_id="sagemaker_txt2img_notice")
        with gr.Column(visible=False, elem_id="sagemaker_txt2img_panel") as self.panel:
            with gr.Row():
                with gr.Column(scale=4):
                    self.prompt = gr.Textbox(
                        label="Prompt", lines=3, elem_id="sagemaker_txt2img_prompt"
                    )
                    self.negative_prompt = gr.Textbox(
                        label="Negative prompt",
                        lines=2,
                        elem_id="sagemaker_txt2img_negative_prompt",
                    )
                with gr.Column(scale=1, min_width=160):
                    self.generate = gr.Button(
                        "Generate", variant="primary", elem_id="sagemaker_txt2img_generate"
                    )
                    self.cancel = gr.Button("Cancel", elem_id="sagemaker_txt2img_cancel")
            with gr.Row():
                with gr.Column():
                    self._build_settings()
                with gr.Column():
                    self.status = gr.HTML(elem_id="sagemaker_txt2img_status")
                    self.build_images("sagemaker_txt2img", "Images", columns=2)
            self.choices = gr.State({})
        self._wire()

    def _build_settings(self) -> None:
        with gr.Row(elem_classes="sagemaker-pager"):
            self.checkpoint = gr.Dropdown(
                choices=[],
                label="Cloud checkpoint",
                scale=4,
                elem_id="sagemaker_txt2img_checkpoint",
            )
            self.refresh = gr.Button(
                "Refresh lists",
                size="sm",
                scale=0,
                min_width=130,
                elem_id="sagemaker_txt2img_refresh",
            )
        with gr.Row():
            self.vae = gr.Dropdown(
                choices=[NO_VAE], value=NO_VAE, label="VAE", elem_id="sagemaker_txt2img_vae"
            )
            self.endpoint = gr.Dropdown(
                choices=[AUTOMATIC_ENDPOINT],
                value=AUTOMATIC_ENDPOINT,
                label="Endpoint (Automatic: the first in service you may use)",
                elem_id="sagemaker_txt2img_endpoint",
            )
        with gr.Row():
            self.loras = gr.Dropdown(
                choices=[],
                value=[],
                multiselect=True,
                label="LoRA",
                elem_id="sagemaker_txt2img_loras",
            )
            self.lora_weight = _slider(
                "lora_weight",
                "LoRA weight (a <lora:name:w> tag in the prompt wins)",
                -LORA_WEIGHT_RANGE,
                LORA_WEIGHT_RANGE,
                1.0,
                0.05,
            )
        with gr.Row():
            self.sampler = gr.Dropdown(
                choices=list(samplers.SAMPLERS),
                value=samplers.DEFAULT_SAMPLER,
                label="Sampling method",
                info=f"diffusers endpoints lack {', '.join(samplers.WEBUI_ONLY_SAMPLERS)}",
                elem_id="sagemaker_txt2img_sampler",
            )
            self.scheduler = gr.Dropdown(
                choices=list(samplers.SCHEDULERS),
                value=samplers.DEFAULT_SCHEDULER,
                label="Schedule type",
                info=f"diffusers endpoints lack {', '.join(samplers.WEBUI_ONLY_SCHEDULERS)}",
                elem_id="sagemaker_txt2img_scheduler",
            )
        self.steps = _slider("steps", "Sampling steps", 1, MAX_STEPS, 20, 1)
        with gr.Row():
            self.width = _slider("width", "Width", 64, MAX_SIDE, 512, 8)
            self.height = _slider("height", "Height", 64, MAX_SIDE, 512, 8)
        with gr.Row():
            self.batch_count = _slider("batch_count", "Batch count", 1, MAX_BATCH_COUNT, 1, 1)
            self.batch_size = _slider("batch_size", "Batch size", 1, MAX_BATCH_SIZE, 1, 1)
        with gr.Row():
            self.cfg_scale = _slider("cfg_scale", "CFG Scale", 1, 30, 7, 0.5)
            self.seed = gr.Number(
                value=-1, precision=0, label="Seed (-1: random)", elem_id="sagemaker_txt2img_seed"
            )

    @property
    def generate_inputs(self) -> list[Any]:
        return [
            self.prompt,
            self.negative_prompt,
            self.sampler,
            self.scheduler,
            self.steps,
            self.cfg_scale,
            self.width,
            self.height,
            self.seed,
            self.batch_size,
            self.batch_count,
            self.checkpoint,
            self.loras,
            self.lora_weight,
            self.vae,
            self.endpoint,
            self.choices,
        ]

    @property
    def list_inputs(self) -> list[Any]:
        """The picks `Refresh lists` keeps when they are still listed."""
        return [self.checkpoint, self.loras, self.vae, self.endpoint]

    @property
    def list_outputs(self) -> list[Any]:
        """What `Refresh lists` changes."""
        return [self.checkpoint, self.loras, self.vae, self.endpoint, self.choices, self.status]

    def _wire(self) -> None:
        # "minimal": the status line stays readable while it follows the job.
        self.generated = self.generate.click(
            self.on_generate,
            inputs=self.generate_inputs,
            outputs=[self.status, self.gallery, self.infotext, self.infotexts],
            show_progress="minimal",
        )
        self.cancel.click(self.on_cancel, inputs=None, outputs=[self.status])
        self.wire_images()
        self.refresh.click(
            self.on_refresh_lists, inputs=self.list_inputs, outputs=self.list_outputs
        )

    # -- the session view --------------------------------------------------------------------

    @property
    def view_outputs(self) -> list[Any]:
        return [
            self.notice,
            self.panel,
            *self.list_outputs,
            self.gallery,
            self.infotext,
            self.infotexts,
        ]

    def show(self, client: ApiClient) -> Updates:
        if PERMISSION_INFERENCE not in client.permissions:
            return {**self.hide(), self.notice: gr.update(value=notice(NOT_ALLOWED), visible=True)}
        updates: Updates = {
            self.notice: gr.update(visible=False),
            self.panel: gr.update(visible=True),
            **self.images_shown([], []),
        }
        updates.update(self._lists(client, None, [], NO_VAE, AUTOMATIC_ENDPOINT))
        return updates

    def hide(self) -> Updates:
        """Hidden and emptied: a signed-out page keeps no images or model names."""
        return {
            self.notice: gr.update(value=notice(SIGN_IN), visible=True),
            self.panel: gr.update(visible=False),
            self.checkpoint: gr.update(choices=[], value=None),
            self.loras: gr.update(choices=[], value=[]),
            self.vae: gr.update(choices=[NO_VAE], value=NO_VAE),
            self.endpoint: gr.update(choices=[AUTOMATIC_ENDPOINT], value=AUTOMATIC_ENDPOINT),
            self.choices: {},
            self.status: "",
            **self.images_shown([], []),
        }

    def _lists(
        self,
        client: ApiClient,
        checkpoint: str | None,
        loras: list[str],
        vae: str | None,
        endpoint: str | None,
    ) -> Updates:
        """The models and endpoints to pick from now, keeping the picks still listed; a
        checkpoint is picked when none was (the first by name)."""
        try:
            choices = model_choices.model_choices(client)
            endpoints = model_choices.endpoint_choices(client)
        except ApiError as exc:
            return {self.status: failure(exc)}
        checkpoints = list(choices[CHECKPOINT])
        vaes = [NO_VAE, *choices[VAE]]
        return {
            self.checkpoint: gr.update(
                choices=checkpoints,
                value=checkpoint
                if checkpoint in checkpoints
                else (checkpoints[0] if checkpoints else None),
            ),
            self.loras: gr.update(
                choices=list(choices[LORA]),
                value=[label for label in loras or [] if label in choices[LORA]],
            ),
            self.vae: gr.update(choices=vaes, value=vae if vae in vaes else NO_VAE),
            self.endpoint: gr.update(
                choices=endpoints,
                value=endpoint if endpoint in endpoints else AUTOMATIC_ENDPOINT,
            ),
            self.choices: choices,
            self.status: "",
        }

    # -- handlers ----------------------------------------------------------------------------

    def on_refresh_lists(
        self,
        checkpoint: str | None,
        loras: list[str],
        vae: str | None,
        endpoint: str | None,
        request: gr.Request,
    ) -> Updates:
        user = self._context.webui_user(request)
        try:
            client = self._sessions.client(user)
        except (ApiError, UiError) as exc:
            return {self.status: self._failure(user, exc)}
        if PERMISSION_INFERENCE not in client.permissions:
            return {}
        return self._lists(client, checkpoint, loras, vae, endpoint)

    def on_models_changed(
        self,
        checkpoint: str | None,
        loras: list[str],
        vae: str | None,
        endpoint: str | None,
        request: gr.Request,
    ) -> Updates:
        """List the models again after Cloud Models Management changed them; the status line
        keeps what it says (the outcome of the last job)."""
        updates = self.on_refresh_lists(checkpoint, loras, vae, endpoint, request)
        updates.pop(self.status, None)
        return updates

    def on_generate(
        self,
        prompt: str,
        negative_prompt: str,
        sampler: str,
        scheduler: str,
        steps: float,
        cfg_scale: float,
        width: float,
        height: float,
        seed: float | None,
        batch_size: float,
        batch_count: float,
        checkpoint: str | None,
        loras: list[str],
        lora_weight: float,
        vae: str | None,
        endpoint: str | None,
        choices: model_choices.Choices,
        request: gr.Request,
    ) -> Iterator[Updates]:
        """Run one job: its status while it runs, then its images, or why there are none.

        A generator, so the status line follows the job (queued, running, seconds so far)
        from the reports of `run_txt2img`, which runs in a thread of its own meanwhile. When
        the page goes away the job goes on and ends in the history.
        """
        user = self._context.webui_user(request)
        page = (user, getattr(request, "session_hash", None) or "")
        try:
            job = Txt2ImgJob(
                payload={
                    "prompt": prompt or "",
                    "negative_prompt": negative_prompt or "",
                    "sampler_name": sampler or samplers.DEFAULT_SAMPLER,
                    "scheduler": scheduler or samplers.DEFAULT_SCHEDULER,
                    "steps": whole_number(steps, "number of sampling steps"),
                    "cfg_scale": cfg_value(cfg_scale),
                    "width": whole_number(width, "width"),
                    "height": whole_number(height, "height"),
                    "seed": whole_number(seed, "seed (-1 for a random one)"),
                    "batch_size": whole_number(batch_size, "batch size"),
                    "n_iter": whole_number(batch_count, "batch count"),
                },
                checkpoint_id=_picked(choices, CHECKPOINT, checkpoint, NO_CHECKPOINT),
                vae_id=None if vae in (None, "", NO_VAE) else _picked(choices, VAE, vae),
                loras=tuple(
                    LoraChoice(_picked(choices, LORA, label), float(lora_weight))
                    for label in loras or []
                ),
                endpoint=None if endpoint in (None, "", AUTOMATIC_ENDPOINT) else endpoint,
            )
            client = self._sessions.client(user)
        except (ApiError, UiError) as exc:
            yield self._shown([], [], self._failure(user, exc))
            return
        stop = threading.Event()
        with self._running_lock:
            busy = page in self._running
            if not busy:
                self._running[page] = stop
        if busy:
            yield {self.status: failure(UiError(BUSY))}
            return
        try:
            yield from self._follow(user, client, job, stop)
        finally:
            with self._running_lock:
                self._running.pop(page, None)

    def _follow(
        self, user: str, client: ApiClient, job: Txt2ImgJob, stop: threading.Event
    ) -> Iterator[Updates]:
        reports: queue.Queue[JobProgress | None] = queue.Queue()
        outcome: list[JobResult | BaseException] = []

        def work() -> None:
            try:
                outcome.append(
                    run_txt2img(client, job, on_progress=reports.put, should_stop=stop.is_set)
                )
            except BaseException as exc:  # handed to the generator, which says it in words
                outcome.append(exc)
            finally:
                reports.put(None)

        started = time.monotonic()
        threading.Thread(target=work, name="sagemaker-txt2img", daemon=True).start()
        yield self._shown([], [], notice("Submitting the job…"))
        while (report := reports.get()) is not None:
            yield {self.status: notice(escape(progress_words(report)))}
        result = outcome[0]
        if isinstance(result, JobCancelled):
            yield {self.status: notice("Cancelled.")}
        elif isinstance(result, (ApiError, UiError)):
            yield {self.status: self._failure(user, result)}
        elif isinstance(result, BaseException):
            raise result
        else:
            items = gallery_images.gallery(result.images, result.infotexts, result.seeds)
            seconds = time.monotonic() - started
            yield self._shown(items, result.infotexts, result_words(result, seconds))

    def on_cancel(self, request: gr.Request) -> Updates:
        """Stop this page's job: the running Generate cancels it on the server and ends."""
        user = self._context.webui_user(request)
        page = (user, getattr(request, "session_hash", None) or "")
        with self._running_lock:
            stop = self._running.get(page)
        if stop is None:
            return {self.status: notice("Nothing is running on this page.")}
        stop.set()
        return {self.status: notice("Cancelling…")}

    def on_endpoints_changed(self, endpoint: str | None, request: gr.Request) -> Updates:
        """List the endpoints again after Inference Endpoint Management changed them."""
        user = self._context.webui_user(request)
        try:
            client = self._sessions.client(user)
            if PERMISSION_INFERENCE not in client.permissions:
                return {}
            endpoints = model_choices.endpoint_choices(client)
        except (ApiError, UiError):
            return {}  # the list stays; Refresh lists says what is wrong
        value = endpoint if endpoint in endpoints else AUTOMATIC_ENDPOINT
        return {self.endpoint: gr.update(choices=endpoints, value=value)}

    # -- plumbing ----------------------------------------------------------------------------

    def _shown(self, items: list[Any], infotexts: list[str], status: str) -> Updates:
        return {self.status: status, **self.images_shown(items, infotexts)}

    def _failure(self, user: str, exc: Exception) -> str:
        self._sessions.note_failure(user, exc)
        return failure(exc)


def _picked(
    choices: model_choices.Choices, kind: str, label: str | None, missing: str | None = None
) -> str:
    """The id of the model picked by its label, or words saying what to do."""
    if not label:
        raise UiError(missing or f"Pick a {kind} model.")
    model_id = (choices or {}).get(kind, {}).get(label)
    if model_id is None:
        raise UiError(
            f"{label} is no longer listed as an Active {kind} model: click Refresh lists."
        )
    return model_id


def _slider(name: str, label: str, low: float, high: float, value: float, step: float) -> Any:
    """One of the panel's number sliders, with its stable elem_id."""
    return gr.Slider(
        minimum=low,
        maximum=high,
        value=value,
        step=step,
        label=label,
        elem_id=f"sagemaker_txt2img_{name}",
    )
