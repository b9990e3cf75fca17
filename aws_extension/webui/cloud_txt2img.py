"""What the script's `run(p)` does: `p` as a job on SageMaker, A1111's progress bar and
Interrupt button following it, and the images back as A1111's `Processed`.

A1111 v1.10 calls the selected script's `run(p)` inside its own job (`state.begin`/`end`),
also when no local checkpoint could be loaded, and only needs a `Processed` back: the gallery
shows `images`, the info box `info`, and "PNG Info" / "Send to" read each picture's
`parameters` text and `Processed.js()` (per-image `infotexts` and seeds). So:

- the WebUI user is `p.user` (A1111 sets it from the gradio request; None without logins
  and for `/sdapi/v1/txt2img` callers, who act as the WebUI user "");
- progress goes to `shared.state` (one job; `textinfo` shows status and seconds), and
  `state.interrupted` (the Interrupt button, `/sdapi/v1/interrupt`) cancels the cloud job;
- pictures carry the endpoint's infotext, are saved to the outputs folder like A1111's own
  (`opts.samples_save`, `p.do_not_save_samples`), and `p.sd_model_name`/`hash` name the
  cloud checkpoint, so the info box and saved files say which model made them;
- an expected failure (not signed in, no endpoint, a model not in the cloud, the job failed)
  comes back as a `Processed` without images whose info is the sentence to act on, so the
  WebUI shows it under the gallery instead of a traceback.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

from aws_extension.client import errors
from aws_extension.client.cloud_models import (
    CHECKPOINT,
    LORA,
    VAE,
    UnknownModel,
    active_models,
    find_model,
    lora_choices,
    stem,
    tagged_loras,
)
from aws_extension.client.jobs import JobCancelled, JobProgress, JobResult, Txt2ImgJob, run_txt2img
from aws_extension.ui.feedback import UiError
from aws_extension.webui.script_sessions import ScriptSessions
from aws_extension.webui.txt2img_body import UnsupportedSetting, txt2img_body

log = logging.getLogger("sd_webui_sagemaker")

#: The choice that lets the server decide (endpoint) or keeps the checkpoint's own (VAE).
AUTOMATIC = "Automatic"
_UNSET = (None, "", AUTOMATIC, "None")


@dataclass(frozen=True)
class ScriptChoices:
    """The script's controls, as `run` receives them (names, not ids)."""

    checkpoint: str | None = None
    vae: str | None = AUTOMATIC
    loras: tuple[str, ...] = ()
    lora_weight: float = 1.0
    endpoint: str | None = AUTOMATIC


def generate(p: Any, choices: ScriptChoices, sessions: ScriptSessions) -> Any:
    """Run `p` on SageMaker and return A1111's `Processed` (images, or the reason for none)."""
    from modules import processing, shared

    user = getattr(p, "user", None) or ""
    progress = _StateProgress(getattr(shared, "state", None))
    try:
        client = sessions.client(user)
        if callable(getattr(p, "setup_prompts", None)):
            p.setup_prompts()  # applies the prompt styles, as process_images would
        body = txt2img_body(p, clip_skip=getattr(shared.opts, "CLIP_stop_at_last_layers", None))
        job, missing = _job(client, body, choices)
        if missing:
            p.comment(
                f"No cloud LoRA is named {', '.join(missing)}, so the prompt's tags for them had "
                "no effect: upload them in Amazon SageMaker > Cloud Models Management."
            )
        result = run_txt2img(
            client, job, on_progress=progress.update, should_stop=progress.interrupted
        )
        pictures = _pictures(result)
    except (errors.ApiError, UiError, UnsupportedSetting) as exc:
        if isinstance(exc, JobCancelled) and progress.interrupted():
            return processing.Processed(p, [], p.seed, f"Interrupted: {exc}")
        sessions.note_failure(user, exc)
        log.warning("Generate on Amazon SageMaker: %s", exc)
        return processing.Processed(p, [], p.seed, f"Amazon SageMaker: {exc}")
    finally:
        progress.done()
    _name_models(p, result.job)
    p.comment(_where(result.job))
    _save(p, pictures, result)
    return _processed(processing, p, pictures, result)


def _job(client: Any, body: dict[str, Any], choices: ScriptChoices) -> tuple[Txt2ImgJob, list[str]]:
    """The job with the chosen models resolved to ids, and the prompt's unknown LoRA tags."""
    checkpoint = _checkpoint(client, choices.checkpoint)
    vae = None if choices.vae in _UNSET else find_model(client, VAE, str(choices.vae))
    loras: tuple = ()
    missing: list[str] = []
    chosen = [name for name in choices.loras if name]
    if chosen or tagged_loras(body["prompt"]):
        loras, missing = lora_choices(
            active_models(client, LORA), chosen, body["prompt"], float(choices.lora_weight)
        )
    job = Txt2ImgJob(
        payload=body,
        checkpoint_id=checkpoint["id"],
        vae_id=vae["id"] if vae else None,
        loras=loras,
        endpoint=None if choices.endpoint in _UNSET else str(choices.endpoint),
    )
    return job, missing


def _checkpoint(client: Any, name: str | None) -> dict:
    """The named checkpoint; without a name the only one the user has, if there is one."""
    if name not in _UNSET:
        return find_model(client, CHECKPOINT, str(name))
    models = active_models(client, CHECKPOINT)
    if len(models) == 1:
        return models[0]
    if not models:
        raise UnknownModel(
            "No checkpoint is ready in the cloud for you: upload one in Amazon SageMaker > "
            "Cloud Models Management."
        )
    raise UnknownModel(
        f"Choose a cloud checkpoint in the script's options (you may use {len(models)}; "
        "click the refresh button to list them)."
    )


class _StateProgress:
    """A1111's progress bar and Interrupt button for one cloud job."""

    def __init__(self, state: Any) -> None:
        self._state = state
        if state is not None:
            state.job_count = max(state.job_count, 1)
            state.textinfo = "Amazon SageMaker: submitting the job"

    def update(self, progress: JobProgress) -> None:
        if self._state is None:
            return
        endpoint = progress.job.get("endpoint")
        where = f" on {endpoint}" if endpoint else ""
        self._state.textinfo = (
            f"Amazon SageMaker: {progress.status}{where}, {progress.elapsed:.0f} s"
        )

    def interrupted(self) -> bool:
        return bool(self._state is not None and self._state.interrupted)

    def done(self) -> None:
        if self._state is not None:
            self._state.textinfo = None
            self._state.nextjob()


def _pictures(result: JobResult) -> list[Any]:
    """PIL images with their infotext as the `parameters` text, as A1111's own carry it."""
    from PIL import Image, UnidentifiedImageError

    pictures = []
    for data, infotext in zip(result.images, result.infotexts, strict=True):
        try:
            picture = Image.open(io.BytesIO(data))
            picture.load()
        except (UnidentifiedImageError, OSError, ValueError):
            raise errors.ApiError(
                f"Job {result.job_id} returned an image that cannot be read: it may have been "
                "damaged on the way. Generate again."
            ) from None
        if infotext:
            picture.info["parameters"] = infotext
        pictures.append(picture)
    return pictures


def _name_models(p: Any, job: dict[str, Any]) -> None:
    """Name the cloud models on `p` the way A1111 names its loaded ones (stem, short hash)."""
    models = job.get("models") if isinstance(job.get("models"), dict) else {}
    checkpoint = models.get(CHECKPOINT)
    if isinstance(checkpoint, dict) and checkpoint.get("name"):
        p.sd_model_name = stem(checkpoint["name"])
        p.sd_model_hash = str(checkpoint.get("sha256") or "")[:10] or None
    vae = models.get(VAE)
    if isinstance(vae, dict) and vae.get("name"):
        p.sd_vae_name = vae["name"]
        p.sd_vae_hash = str(vae.get("sha256") or "")[:10] or None


def _where(job: dict[str, Any]) -> str:
    endpoint = f" on endpoint {job['endpoint']}" if job.get("endpoint") else ""
    return f"Generated on Amazon SageMaker{endpoint} (job {job.get('id')})."


def _save(p: Any, pictures: list[Any], result: JobResult) -> None:
    """Save like `process_images` would, into A1111's outputs folder; a failure is noted
    under the gallery, and the images are still shown."""
    from modules import images, shared

    save_samples = getattr(p, "save_samples", None)
    wanted = (
        save_samples()
        if callable(save_samples)
        else getattr(shared.opts, "samples_save", False) and not p.do_not_save_samples
    )
    if not wanted or not getattr(p, "outpath_samples", None):
        return
    prompts = _per_image(result.info.get("all_prompts"), len(pictures), _main_prompt(p))
    rows = zip(pictures, result.seeds, prompts, result.infotexts, strict=True)
    for picture, seed, prompt, infotext in rows:
        try:
            images.save_image(
                picture,
                p.outpath_samples,
                "",
                seed,
                prompt,
                shared.opts.samples_format,
                info=infotext,
                p=p,
            )
        except Exception as exc:
            log.warning("Could not save an image of job %s: %s", result.job_id, exc)
            p.comment(f"An image could not be saved to {p.outpath_samples}: {exc}")
            return


def _processed(processing: Any, p: Any, pictures: list[Any], result: JobResult) -> Any:
    count = len(pictures)
    info = result.info
    seeds = _per_image(info.get("all_seeds"), count, None) or result.seeds
    subseed = info.get("subseed") if isinstance(info.get("subseed"), int) else p.subseed
    return processing.Processed(
        p,
        pictures,
        seed=seeds[0] if seeds else p.seed,
        info=result.infotexts[0] if result.infotexts else "",
        subseed=subseed,
        all_prompts=_per_image(info.get("all_prompts"), count, _main_prompt(p)),
        all_negative_prompts=_per_image(
            info.get("all_negative_prompts"), count, _main_prompt(p, negative=True)
        ),
        all_seeds=seeds,
        all_subseeds=_per_image(info.get("all_subseeds"), count, subseed),
        index_of_first_image=0,
        infotexts=result.infotexts,
    )


def _per_image(values: Any, count: int, fallback: Any) -> list:
    """One value per image: the server's list when it has one per image, else `fallback`s."""
    if isinstance(values, list) and len(values) == count:
        return values
    return [] if fallback is None else [fallback] * count


def _main_prompt(p: Any, *, negative: bool = False) -> str:
    """The prompt with its styles (A1111's `main_prompt`), or as typed on older WebUIs."""
    if negative:
        return getattr(p, "main_negative_prompt", None) or p.negative_prompt
    return getattr(p, "main_prompt", None) or p.prompt
