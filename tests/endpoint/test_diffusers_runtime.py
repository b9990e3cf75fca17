"""The runtime with the diffusers engine, over HTTP, on the tiny demo model."""

from __future__ import annotations

import base64
import io
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from aws_extension.endpoint import architectures
from tests.endpoint.file_server import FileServer
from tests.endpoint.support import Endpoint, model_entry
from tests.endpoint.tiny_extras import write_tiny_lora, write_tiny_vae
from tests.endpoint.tiny_sdxl import write_tiny_sdxl, write_tiny_sdxl_config

PROMPT = "a lighthouse at dusk"


def body(checkpoint: dict, **payload: Any) -> dict:
    models: dict[str, Any] = {"Stable-diffusion": checkpoint}
    for kind in ("Lora", "VAE"):
        if kind in payload:
            models[kind] = payload.pop(kind)
    fields = {"prompt": PROMPT, "steps": 2, "width": 64, "height": 64, "seed": 123}
    return {"task": "txt2img", "models": models, "payload": {**fields, **payload}}


def images_of(reply: dict) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(image))) for image in reply["images"]]


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def generate(endpoint: Endpoint, request: dict) -> dict:
    response = endpoint.invoke(request)
    assert response.status_code == 200, response.text
    return response.json()


def test_ping_is_ready_after_start(endpoint: Endpoint) -> None:
    assert endpoint.ping().status_code == 200
    assert endpoint.ping().json() == {"status": "ready"}


def test_txt2img_returns_a_png_of_the_requested_size(endpoint: Endpoint, tiny: dict) -> None:
    reply = generate(endpoint, body(tiny, width=64, height=96, cfg_scale=7))
    (image,) = images_of(reply)
    assert image.format == "PNG"
    assert image.size == (64, 96)
    info = json.loads(reply["info"])
    infotext = info["infotexts"][0]
    assert infotext.startswith(f"{PROMPT}\nSteps: 2, Sampler: Euler, Schedule type: Automatic, ")
    assert "CFG scale: 7, Seed: 123, Size: 64x96, " in infotext
    assert f"Model hash: {tiny['sha256'][:10]}, " in infotext
    assert 'Model: "tiny-random-sd15 (demo, random weights)", ' in infotext  # quoted: a comma
    assert "Version: sd-webui-sagemaker " in infotext
    assert image.info["parameters"] == infotext  # PNG info, as A1111 embeds it
    assert info["seed"] == 123 and info["all_seeds"] == [123]
    assert info["sd_model_hash"] == tiny["sha256"][:10]
    assert reply["parameters"]["prompt"] == PROMPT
    assert set(reply["timings"]) == {"fetch_s", "load_s", "generate_s"}


def test_the_same_seed_gives_the_same_image_and_another_seed_another(
    endpoint: Endpoint, tiny: dict
) -> None:
    first = generate(endpoint, body(tiny, seed=7, sampler_name="Euler a"))
    again = generate(endpoint, body(tiny, seed=7, sampler_name="Euler a"))
    other = generate(endpoint, body(tiny, seed=8, sampler_name="Euler a"))
    assert first["images"] == again["images"]
    assert first["images"] != other["images"]
    assert "Sampler: Euler a, Schedule type: Automatic" in json.loads(first["info"])["infotexts"][0]


def test_random_seed_is_reported(endpoint: Endpoint, tiny: dict) -> None:
    reply = generate(endpoint, body(tiny, seed=-1))
    info = json.loads(reply["info"])
    assert 0 <= info["seed"] < 2**32
    assert f"Seed: {info['seed']}," in info["infotexts"][0]
    assert reply["parameters"]["seed"] == -1  # like A1111: parameters echo the request


def test_batches_get_consecutive_seeds_like_a1111(endpoint: Endpoint, tiny: dict) -> None:
    reply = generate(endpoint, body(tiny, seed=500, batch_size=2, n_iter=2))
    info = json.loads(reply["info"])
    assert len(reply["images"]) == 4
    assert info["all_seeds"] == [500, 501, 502, 503]
    assert [text.count("Seed: 50") for text in info["infotexts"]] == [1, 1, 1, 1]
    assert "Seed: 502," in info["infotexts"][2]
    # an image depends on its seed only, not on the batch it was made in
    single = generate(endpoint, body(tiny, seed=501))
    diff = np.abs(pixels(images_of(reply)[1]) - pixels(images_of(single)[0]))
    assert diff.max() <= 2


def test_negative_prompt_clip_skip_and_schedule_in_infotext(endpoint: Endpoint, tiny: dict) -> None:
    reply = generate(
        endpoint,
        body(
            tiny,
            negative_prompt="blurry, dark",
            sampler_name="DPM++ 2M",
            scheduler="Automatic",
            override_settings={"CLIP_stop_at_last_layers": 2},
        ),
    )
    text = json.loads(reply["info"])["infotexts"][0]
    assert "\nNegative prompt: blurry, dark\n" in text
    plain = body(tiny, negative_prompt="blurry, dark", sampler_name="DPM++ 2M")
    no_skip = generate(endpoint, plain)
    assert no_skip["images"] != reply["images"]
    assert "Sampler: DPM++ 2M, Schedule type: Karras" in text  # A1111's default for it
    assert "Clip skip: 2" in text


@pytest.mark.parametrize(
    ("sampler", "schedule"),
    [("DPM++ 2M Karras", None), ("UniPC", "SGM Uniform"), ("DDIM", None), ("LMS", "Karras")],
)
def test_other_samplers_run(endpoint: Endpoint, tiny: dict, sampler: str, schedule: str) -> None:
    reply = generate(endpoint, body(tiny, sampler_name=sampler, scheduler=schedule))
    assert len(reply["images"]) == 1


def test_lora_changes_the_image_and_is_tagged(
    endpoint: Endpoint, tiny: dict, files: FileServer, tmp_path: Path
) -> None:
    lora = model_entry(files, write_tiny_lora(tmp_path / "detail.safetensors"), weight=0.8)
    plain = generate(endpoint, body(tiny, seed=9))
    with_lora = generate(endpoint, body(tiny, seed=9, Lora=[lora]))
    assert plain["images"] != with_lora["images"]
    text = json.loads(with_lora["info"])["infotexts"][0]
    assert text.startswith(f"{PROMPT} <lora:detail:0.8>\n")
    assert f'Lora hashes: "detail: {lora["sha256"][:12]}"' in text
    # weight 0 is the plain image again; and a later job without the LoRA is unaffected
    zero = generate(endpoint, body(tiny, seed=9, Lora=[{**lora, "weight": 0.0}]))
    assert np.abs(pixels(images_of(zero)[0]) - pixels(images_of(plain)[0])).max() <= 2
    assert generate(endpoint, body(tiny, seed=9))["images"] == plain["images"]


def test_vae_file_replaces_the_checkpoints_vae(
    endpoint: Endpoint, tiny: dict, files: FileServer, tmp_path: Path
) -> None:
    vae = model_entry(files, write_tiny_vae(tmp_path / "other-vae.safetensors"))
    plain = generate(endpoint, body(tiny, seed=3))
    with_vae = generate(endpoint, body(tiny, seed=3, VAE=vae))
    assert plain["images"] != with_vae["images"]
    text = json.loads(with_vae["info"])["infotexts"][0]
    assert f"VAE hash: {vae['sha256'][:10]}, VAE: other-vae.safetensors" in text
    assert generate(endpoint, body(tiny, seed=3))["images"] == plain["images"]


def test_ping_answers_while_a_job_runs(endpoint: Endpoint, tiny: dict) -> None:
    results: list[int] = []
    job = threading.Thread(
        target=lambda: results.append(endpoint.invoke(body(tiny, steps=25)).status_code)
    )
    job.start()
    pings = [endpoint.ping().status_code for _ in range(3)]
    job.join(120)
    assert pings == [200, 200, 200]
    assert results == [200]


def problem(endpoint: Endpoint, request: Any) -> tuple[int, dict]:
    response = endpoint.invoke(request)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("change", "status", "fragment"),
    [
        ({"sampler_name": "Bogus"}, 400, "Unknown sampler 'Bogus'"),
        ({"sampler_name": "DPM adaptive"}, 400, "no diffusers equivalent"),
        ({"scheduler": "Sometimes"}, 400, "Unknown schedule type"),
        ({"sampler_name": "Euler a", "scheduler": "Karras"}, 400, "cannot be used with"),
        ({"width": 100}, 400, "width must be a multiple of 8"),
        ({"height": 4096}, 400, "height must be between 64 and 2048"),
        ({"steps": "many"}, 400, "steps must be an integer"),
        ({"enable_hr": True}, 400, "hires fix"),
        ({"batch_size": 9}, 400, "batch_size must be between 1 and 8"),
    ],
)
def test_bad_payload_is_a_400_with_a_clear_detail(
    endpoint: Endpoint, tiny: dict, change: dict, status: int, fragment: str
) -> None:
    code, reply = problem(endpoint, body(tiny, **change))
    assert code == status
    assert reply["status"] == status and reply["code"] == "invalid"
    assert fragment in reply["detail"]


def test_bad_envelopes_are_400s(endpoint: Endpoint, tiny: dict) -> None:
    assert problem(endpoint, {**body(tiny), "task": "img2img"})[1]["detail"].startswith(
        "Unknown task 'img2img'"
    )
    code, reply = problem(endpoint, {"task": "txt2img", "models": {}, "payload": {}})
    assert (code, reply["code"]) == (400, "invalid")
    assert "models.Stable-diffusion is missing" in reply["detail"]
    code, reply = problem(endpoint, body({**tiny, "sha256": "abc"}))
    assert code == 400 and "sha256 must be 64 hex digits" in reply["detail"]
    response = requests.post(f"{endpoint.url}/invocations", data=b"{not json", timeout=10)
    assert response.status_code == 400 and "not valid JSON" in response.json()["detail"]


def test_a_ckpt_checkpoint_is_refused_before_download(
    endpoint: Endpoint, tiny: dict, files: FileServer
) -> None:
    ckpt = {**tiny, "name": "old.ckpt", "url": files.url("/old.ckpt")}
    code, reply = problem(endpoint, body(ckpt))
    assert code == 400 and ".safetensors files only" in reply["detail"]
    assert files.requests["/old.ckpt"] == 0


def test_a_checksum_mismatch_is_a_400_and_caches_nothing(
    endpoint: Endpoint, tiny: dict, files: FileServer, tmp_path: Path
) -> None:
    wrong = {**tiny, "sha256": "0" * 64, "name": "wrong.safetensors"}
    code, reply = problem(endpoint, body(wrong))
    assert (code, reply["code"]) == (400, "checksum_mismatch")
    assert "SHA-256" in reply["detail"] and tiny["url"] not in reply["detail"]
    assert not list(endpoint.runtime.cache.root.glob("0000*"))


def test_a_file_that_is_no_checkpoint_is_a_400(
    endpoint: Endpoint, tiny: dict, files: FileServer, tmp_path: Path
) -> None:
    lora = model_entry(files, write_tiny_lora(tmp_path / "not-a-model.safetensors"))
    code, reply = problem(endpoint, body(lora))
    assert code == 400
    assert "holds no Stable Diffusion UNet" in reply["detail"]


def test_an_expired_url_is_a_400_and_a_storage_failure_a_502(
    endpoint: Endpoint, tiny: dict, files: FileServer
) -> None:
    files.statuses["/expired.safetensors"] = 403
    files.statuses["/broken.safetensors"] = 503
    expired = {**tiny, "sha256": "1" * 64, "url": files.url("/expired.safetensors")}
    broken = {**tiny, "sha256": "2" * 64, "url": files.url("/broken.safetensors")}
    code, reply = problem(endpoint, body(expired))
    assert (code, reply["code"]) == (400, "fetch_failed") and "answered 403" in reply["detail"]
    code, reply = problem(endpoint, body(broken))
    assert (code, reply["code"]) == (502, "fetch_failed")


def test_unknown_routes_are_404_and_wrong_methods_405(endpoint: Endpoint) -> None:
    assert requests.get(f"{endpoint.url}/invocations", timeout=5).status_code == 405
    assert requests.post(f"{endpoint.url}/ping", json={}, timeout=5).status_code == 405
    assert requests.get(f"{endpoint.url}/nope", timeout=5).status_code == 404
    assert requests.post(f"{endpoint.url}/nope", json={}, timeout=5).json()["code"] == "not_found"


def test_an_sdxl_checkpoint_loads_offline(
    endpoint: Endpoint, files: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SDXL's path (two text encoders, OpenCLIP layout, size conditioning) on a tiny SDXL."""
    configs = tmp_path / "configs"
    shutil.copytree(architectures.CONFIG_ROOT, configs)
    checkpoint = write_tiny_sdxl(tmp_path / "xl.safetensors", write_tiny_sdxl_config(configs))
    monkeypatch.setattr(architectures, "CONFIG_ROOT", configs)
    architectures.architectures.cache_clear()
    try:
        reply = generate(endpoint, body(model_entry(files, checkpoint), width=64, height=128))
    finally:
        architectures.architectures.cache_clear()
    (image,) = images_of(reply)
    assert image.size == (64, 128)
    assert "Model: xl," in json.loads(reply["info"])["infotexts"][0]
