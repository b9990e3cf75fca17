"""The diffusers engine: single-file SD 1.x / SDXL checkpoints, fully offline.

Loading: the checkpoint's tensor shapes pick a shipped config folder (`architectures.py`),
and `from_single_file(path, config=<that folder>, local_files_only=True)` builds the
pipeline without asking the hub. The tokenizer is then checked (49408 tokens, 77 positions),
because diffusers silently makes a 2-token tokenizer when a config folder lacks one.

The last checkpoint stays loaded (switching costs a full load); the VAE and LoRAs are swapped
on it per job. One job runs at a time: a GPU gains nothing from two, and the lock keeps the
pipeline's scheduler, VAE and adapters consistent for the job using them.

Seeds follow A1111: seed -1 draws one, image i of the job gets seed + i, and each image's
noise comes from its own CPU generator, so an image depends on its seed alone (not on the
batch it was made in, nor on the device).
"""

from __future__ import annotations

import gc
import inspect
import io
import logging
import secrets
import threading
import time
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from aws_extension.endpoint.architectures import (
    CLIP_VOCAB_SIZE,
    Architecture,
    detect,
    materialize,
    read_tensor_shapes,
)
from aws_extension.endpoint.engines.a1111_info import ImageSet
from aws_extension.endpoint.engines.base import EngineResult
from aws_extension.endpoint.engines.txt2img_params import DEFAULTS, Txt2ImgParams, parse_params
from aws_extension.endpoint.errors import EngineFailed, InvalidRequest, NotReady
from aws_extension.endpoint.invocation import Invocation, ModelRef
from aws_extension.endpoint.lora_tags import effective_weights, strip_tags, with_lora_tags

logger = logging.getLogger(__name__)

MAX_TOKENS = 77
#: Tensor names a VAE single file has, bare (A1111's VAE files) or inside a checkpoint.
VAE_KEYS = ("encoder.conv_in.weight", "first_stage_model.encoder.conv_in.weight")


class DiffusersEngine:
    name = "diffusers"

    def __init__(
        self,
        config_root: Path,
        *,
        device: str | None = None,
        cpu_threads: int | None = None,
    ) -> None:
        """`config_root`: where config folders are written; `device`: auto when None.

        `cpu_threads` caps torch's CPU threads: on a small shared CPU (the local stack, CI)
        one thread avoids OpenMP oversubscription, which makes small models 10x slower.
        """
        self._config_root = Path(config_root)
        self._device_wanted = device
        self._cpu_threads = cpu_threads
        self.device = "cpu"
        self.dtype: Any = None
        self.version = "sd-webui-sagemaker"
        self._lock = threading.Lock()
        self._ready = False
        self._pipe: Any = None
        self._pipe_key: str | None = None
        self._architecture: Architecture | None = None
        self._config_dir: Path | None = None
        self._base_vae: Any = None
        self._vae_key: str | None = None
        self._adapters: dict[str, str] = {}  # adapter name -> LoRA sha256

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        import diffusers
        import torch

        if self._cpu_threads:
            torch.set_num_threads(self._cpu_threads)
        if self._device_wanted:
            self.device = self._device_wanted
        else:
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        self.version = (
            f"sd-webui-sagemaker {package_version('sd-webui-sagemaker')} "
            f"(diffusers {diffusers.__version__})"
        )
        self._ready = True
        logger.info("diffusers engine ready on %s (%s)", self.device, self.dtype)

    def ready(self) -> bool:
        return self._ready

    def close(self) -> None:
        with self._lock:
            self._unload()
            self._ready = False

    # -- checks before anything is fetched ---------------------------------------------------

    def check(self, invocation: Invocation) -> None:
        if not self._ready:
            raise NotReady("The diffusers engine is still starting.")
        for model in invocation.models():
            if model.suffix != ".safetensors":
                raise InvalidRequest(
                    f"{model.name}: the diffusers engine loads .safetensors files only "
                    "(.ckpt files are pickles, which it does not unpickle); convert it, or "
                    "use an endpoint with the webui engine."
                )
        params = parse_params(invocation.payload)
        self._scheduler_class(params)

    def _scheduler_class(self, params: Txt2ImgParams) -> Any:
        import diffusers

        choice = params.scheduler
        scheduler_class = getattr(diffusers, choice.scheduler_class)
        accepted = inspect.signature(scheduler_class.__init__).parameters
        missing = [key for key in choice.settings if key not in accepted]
        if missing:
            raise InvalidRequest(
                f"Schedule type {choice.schedule_label!r} cannot be used with sampler "
                f"{choice.sampler!r} in the diffusers engine; try Automatic."
            )
        return scheduler_class

    # -- the job ------------------------------------------------------------------------------

    def txt2img(self, invocation: Invocation, paths: dict[ModelRef, Path]) -> EngineResult:
        params = parse_params(invocation.payload)
        with self._lock:
            started = time.monotonic()
            pipe = self._load(invocation, paths)
            load_s = time.monotonic() - started
            started = time.monotonic()
            try:
                images, image_set = self._generate(pipe, invocation, params)
            except InvalidRequest:
                raise
            except Exception as error:
                logger.exception("generation failed")
                raise EngineFailed(f"Generation failed: {type(error).__name__}: {error}") from None
            generate_s = time.monotonic() - started
        parameters = {**DEFAULTS, **invocation.payload}
        return EngineResult(images, parameters, image_set.info(), load_s, generate_s)

    def _load(self, invocation: Invocation, paths: dict[ModelRef, Path]) -> Any:
        checkpoint = invocation.checkpoint
        if self._pipe_key != checkpoint.sha256:
            self._unload()
            self._load_checkpoint(checkpoint, paths[checkpoint])
        self._apply_vae(invocation.vae, paths)
        self._apply_loras(invocation, paths)
        return self._pipe

    def _unload(self) -> None:
        if self._pipe is None:
            return
        self._pipe = self._base_vae = self._pipe_key = self._vae_key = None
        self._adapters.clear()
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _load_checkpoint(self, checkpoint: ModelRef, path: Path) -> None:
        import diffusers

        architecture = detect(read_tensor_shapes(path), checkpoint.name)
        config_dir = materialize(architecture, self._config_root)
        pipeline_class = getattr(diffusers, architecture.pipeline_class)
        # A1111 marks no images; diffusers would add an invisible watermark to SDXL's.
        extra = {"add_watermarker": False} if architecture.is_sdxl else {}
        try:
            pipe = pipeline_class.from_single_file(
                str(path),
                config=str(config_dir),
                local_files_only=True,
                torch_dtype=self.dtype,
                **extra,
            )
        except (ValueError, KeyError, RuntimeError) as error:
            raise InvalidRequest(
                f"{checkpoint.name} could not be loaded as {architecture.name}: "
                f"{type(error).__name__}: {str(error)[:300]}"
            ) from None
        # diffusers leaves tensors a checkpoint lacks as empty placeholders that fail later
        missing = [
            f"{name}.{key}"
            for name in ("unet", "vae", "text_encoder", "text_encoder_2")
            if getattr(pipe, name, None) is not None
            for key, tensor in getattr(pipe, name).state_dict().items()
            if tensor.is_meta
        ]
        if missing:
            raise InvalidRequest(
                f"{checkpoint.name} lacks {len(missing)} tensors of {architecture.name} "
                f"(e.g. {missing[0]}): it is incomplete or of another architecture."
            )
        for name in ("tokenizer", "tokenizer_2"):
            tokenizer = getattr(pipe, name, None)
            if tokenizer is not None and (
                len(tokenizer) != CLIP_VOCAB_SIZE or tokenizer.model_max_length != MAX_TOKENS
            ):
                raise EngineFailed(
                    f"The {name} of config {config_dir.name} has {len(tokenizer)} tokens and "
                    f"{tokenizer.model_max_length} positions instead of {CLIP_VOCAB_SIZE} and "
                    f"{MAX_TOKENS}: its vocab.json/merges.txt are missing or wrong."
                )
        pipe.set_progress_bar_config(disable=True)
        self._pipe = pipe.to(self.device)
        self._pipe_key = checkpoint.sha256
        self._architecture = architecture
        self._config_dir = config_dir
        self._base_vae = pipe.vae
        logger.info("loaded %s as %s", checkpoint.name, architecture.name)

    def _apply_vae(self, vae: ModelRef | None, paths: dict[ModelRef, Path]) -> None:
        key = vae.sha256 if vae else None
        if key == self._vae_key:
            return
        if vae is None:
            self._pipe.vae = self._base_vae
        else:
            from diffusers import AutoencoderKL

            path = paths[vae]
            if not any(key in read_tensor_shapes(path) for key in VAE_KEYS):
                raise InvalidRequest(f"{vae.name} is not a VAE (no encoder.conv_in tensor).")
            try:
                loaded = AutoencoderKL.from_single_file(
                    str(path),
                    config=str(self._config_dir),
                    subfolder="vae",
                    local_files_only=True,
                    torch_dtype=self.dtype,
                )
            except (ValueError, KeyError, RuntimeError) as error:
                raise InvalidRequest(
                    f"VAE {vae.name} does not fit checkpoint architecture "
                    f"{self._architecture.name}: {type(error).__name__}: {str(error)[:300]}"
                ) from None
            self._pipe.vae = loaded.to(self.device)
        self._vae_key = key

    def _apply_loras(self, invocation: Invocation, paths: dict[ModelRef, Path]) -> None:
        wanted = {f"lora_{lora.sha256[:16]}": lora for lora in invocation.loras}
        stale = [name for name in self._adapters if name not in wanted]
        if stale:
            self._pipe.delete_adapters(stale)
            for name in stale:
                del self._adapters[name]
        for name, lora in wanted.items():
            if name in self._adapters:
                continue
            try:
                self._pipe.load_lora_weights(str(paths[lora]), adapter_name=name)
            except (ValueError, KeyError, RuntimeError) as error:
                self._unload()  # a half-injected adapter must not leak into the next job
                raise InvalidRequest(
                    f"LoRA {lora.name} does not fit checkpoint {invocation.checkpoint.name}: "
                    f"{type(error).__name__}: {str(error)[:300]}"
                ) from None
            self._adapters[name] = lora.sha256
        if wanted:
            weights = effective_weights(invocation.payload.get("prompt") or "", invocation.loras)
            self._pipe.set_adapters(
                list(wanted), adapter_weights=[weights[lora.stem] for lora in wanted.values()]
            )

    def _generate(
        self, pipe: Any, invocation: Invocation, params: Txt2ImgParams
    ) -> tuple[list[bytes], ImageSet]:
        import torch
        from PIL import PngImagePlugin

        choice = params.scheduler
        pipe.scheduler = self._scheduler_class(params).from_config(
            pipe.scheduler.config, **choice.settings
        )
        count = params.batch_size * params.n_iter
        seed = params.seed if params.seed != -1 else secrets.randbelow(4294967294)
        subseed = params.subseed if params.subseed != -1 else secrets.randbelow(4294967294)
        image_set = ImageSet(
            params=params,
            prompt=with_lora_tags(params.prompt, invocation.loras),
            all_seeds=[seed + index for index in range(count)],
            all_subseeds=[subseed + index for index in range(count)],
            checkpoint=invocation.checkpoint,
            vae=invocation.vae,
            loras=invocation.loras,
            version=self.version,
        )
        prompt, negative = strip_tags(params.prompt), strip_tags(params.negative_prompt)
        images: list[bytes] = []
        for batch in range(params.n_iter):
            seeds = image_set.all_seeds[batch * params.batch_size : (batch + 1) * params.batch_size]
            generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
            with torch.inference_mode():
                output = pipe(
                    **self._prompts(pipe, prompt, negative, len(seeds), params.clip_skip),
                    num_inference_steps=params.steps,
                    guidance_scale=float(params.cfg_scale),
                    width=params.width,
                    height=params.height,
                    generator=generators,
                )
            for image in output.images:
                png_info = PngImagePlugin.PngInfo()
                png_info.add_text("parameters", image_set.infotext(len(images)))
                buffer = io.BytesIO()
                image.save(buffer, format="PNG", pnginfo=png_info)
                images.append(buffer.getvalue())
        return images, image_set

    def _prompts(
        self, pipe: Any, prompt: str, negative: str, count: int, clip_skip: int
    ) -> dict[str, Any]:
        """The pipeline's prompt arguments; A1111's clip skip n is diffusers' n - 1.

        For SD 1.x with clip skip the embeddings are computed here: diffusers 0.42 reaches
        for `text_encoder.text_model`, which transformers 5 no longer has. The computation is
        the same: the hidden state `clip_skip` layers from the end, then the final norm.
        """
        if clip_skip <= 1 or self._architecture is None or self._architecture.is_sdxl:
            return {
                "prompt": [prompt] * count,
                "negative_prompt": [negative] * count,
                "clip_skip": clip_skip - 1 or None,
            }
        text_model = getattr(pipe.text_encoder, "text_model", pipe.text_encoder)

        def embed(text: str) -> Any:
            tokens = pipe.tokenizer(
                text,
                padding="max_length",
                max_length=pipe.tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids.to(self.device)
            hidden = pipe.text_encoder(tokens, output_hidden_states=True).hidden_states
            return text_model.final_layer_norm(hidden[-clip_skip]).repeat(count, 1, 1)

        return {"prompt_embeds": embed(prompt), "negative_prompt_embeds": embed(negative)}
