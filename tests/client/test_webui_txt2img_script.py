"""The selectable script "Generate on Amazon SageMaker" in a faked A1111 v1.10.1.

The extension is installed the way a user installs it (a folder in `<data>/extensions`), A1111's
`load_scripts` finds the shim, a txt2img `ScriptRunner` builds the script's controls and
runs it with `p` as the txt2img tab makes it, inside a job (`state.begin`/`end`). The
sign-in is the tab's own (`UserSessions.connect`, which writes the settings file the script
reads). The jobs run on a real local stack whose local endpoint has the demo model.

The test that interrupts a long job comes last: the runtime finishes a cancelled job anyway.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from PIL import Image

from aws_extension import contract
from aws_extension.client.api import ClientOptions
from aws_extension.client.settings_store import SettingsStore
from aws_extension.ui.context import UiContext
from aws_extension.ui.sessions import UserSessions
from aws_extension.webui.script_refresh import ChoicesRefresh
from tests.client.conftest import FAKE_A1111, ROOT
from tests.client.job_support import ADMIN_ROLE, SMALL, Studio, studio

SHIM = ROOT / "scripts" / "sagemaker_txt2img.py"
TITLE = "Generate on Amazon SageMaker"
STYLES = 'name,prompt,negative_prompt\nInk,"{prompt}, ink drawing","photo"\n'


@pytest.fixture(scope="module")
def generation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    with studio(Path(tmp_path_factory.mktemp("script"))) as made:
        yield made


@pytest.fixture
def webui(a1111_launcher, monkeypatch) -> SimpleNamespace:
    """A1111 with this extension installed, its scripts loaded and the txt2img UI built."""
    # Each test starts A1111's `modules` afresh; the script's class must derive from this
    # start's `Script`, as it does in a WebUI, which imports `modules` once.
    monkeypatch.delitem(sys.modules, "aws_extension.webui.txt2img_script", raising=False)
    extensions = a1111_launcher.data_dir / "extensions"
    extensions.mkdir()
    (extensions / "sd-webui-sagemaker").symlink_to(ROOT, target_is_directory=True)
    (a1111_launcher.data_dir / "styles.csv").write_text(STYLES)
    a1111 = a1111_launcher.start()
    from modules import processing, scripts, shared

    scripts.load_scripts()
    runner = scripts.ScriptRunner()
    runner.initialize_scripts(is_img2img=False)
    (script,) = [s for s in runner.selectable_scripts if s.title() == TITLE]
    with gr.Blocks():
        runner.create_script_ui(script)
    store = SettingsStore(a1111.data_dir / "sagemaker" / "settings.json")
    context = UiContext(store=store, client_options=lambda: ClientOptions(timeout=10, retries=0))
    return SimpleNamespace(
        a1111=a1111,
        scripts=scripts,
        processing=processing,
        shared=shared,
        runner=runner,
        script=script,
        index=runner.selectable_scripts.index(script) + 1,
        tab_sessions=UserSessions(context),
        outputs=a1111.data_dir / "outputs" / "txt2img-images",
    )


def tab_p(webui: SimpleNamespace, user: str | None, **payload) -> object:
    """`p` as A1111's txt2img tab builds it for the WebUI user `user`, after the always-on
    Seed and Sampler scripts' setup."""
    fields = {**SMALL, **payload}
    p = webui.processing.StableDiffusionProcessingTxt2Img(
        outpath_samples=str(webui.outputs),
        prompt=fields["prompt"],
        negative_prompt=fields["negative_prompt"],
        styles=fields.get("styles", []),
        batch_size=fields["batch_size"],
        n_iter=fields["n_iter"],
        cfg_scale=fields["cfg_scale"],
        width=fields["width"],
        height=fields["height"],
    )
    p.seed, p.subseed, p.subseed_strength = fields["seed"], -1, 0
    p.seed_resize_from_w = p.seed_resize_from_h = 0
    p.steps, p.sampler_name, p.scheduler = fields["steps"], "Euler a", "Automatic"
    p.user = user
    return p


def generate(webui: SimpleNamespace, p: object, *values: object) -> object:
    """What A1111's txt2img does with the script selected: run it inside a job."""
    script = webui.script
    args: list[object] = [None] * script.args_to
    args[0] = webui.index
    args[script.args_from : script.args_from + len(values)] = values
    state = webui.shared.state
    state.begin(job="task(test)")
    try:
        return webui.runner.run(p, *args[: script.args_from + len(values)])
    finally:
        state.end()


def sign_in(webui: SimpleNamespace, generation: Studio, user: str, roles: list[str]):
    """The WebUI user `user` signs in on the tab as a new middleware user with `roles`."""
    login = generation.add_user("artist", roles)
    stack = generation.stack
    webui.tab_sessions.connect(user, stack.url, stack.api_token, login.username, login.password)
    return login


# -- loading and the UI --------------------------------------------------------------------


def test_the_shim_adds_one_script_which_only_the_txt2img_tab_offers(webui):
    scripts = webui.scripts
    ours = [d for d in scripts.scripts_data if Path(d.path).resolve() == SHIM]
    assert [d.script_class.__name__ for d in ours] == ["SageMakerTxt2Img"]

    img2img = scripts.ScriptRunner()
    img2img.initialize_scripts(is_img2img=True)
    assert TITLE not in [s.title() for s in img2img.selectable_scripts]
    assert webui.script.is_txt2img


def test_loading_the_shim_imports_no_heavy_library():
    probe = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(FAKE_A1111)!r})
        from modules import script_loading, scripts  # the WebUI's own, loaded before us
        before = set(sys.modules)
        module = script_loading.load_module({str(SHIM)!r})
        loaded = set(sys.modules) - before
        print(json.dumps({{
            "heavy": sorted(m for m in ("gradio", "requests", "PIL", "numpy", "pydantic")
                            if m in loaded),
            "script": module.SageMakerTxt2Img.__name__,
        }}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "heavy": [],
        "script": "SageMakerTxt2Img",
    }


def test_without_a1111s_modules_the_shim_logs_and_offers_nothing():
    probe = textwrap.dedent(
        f"""
        import importlib.util, logging
        logging.basicConfig()
        spec = importlib.util.spec_from_file_location("shim", {str(SHIM)!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(module.SageMakerTxt2Img)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout.strip() == "None"
    assert "could not load its txt2img script" in done.stderr


def test_the_ui_gives_the_controls_run_receives_in_order(webui):
    script = webui.script

    controls = script.controls
    assert script.args_to - script.args_from == len(controls) == 5
    assert [c.label for c in controls] == [
        "Cloud checkpoint",
        "Cloud VAE",
        "Cloud LoRAs (or <lora:name:weight> in the prompt)",
        "LoRA weight",
        "Endpoint",
    ]
    assert [c.elem_id for c in controls] == [
        "script_generate_on_amazon_sagemaker_checkpoint",
        "script_generate_on_amazon_sagemaker_vae",
        "script_generate_on_amazon_sagemaker_loras",
        "script_generate_on_amazon_sagemaker_lora_weight",
        "script_generate_on_amazon_sagemaker_endpoint",
    ]
    assert [arg.get("value") for arg in script.api_info.args] == [
        None,
        "Automatic",
        [],
        1.0,
        "Automatic",
    ]
    assert [key for _, key in webui.runner.infotext_fields] == ["Model", "VAE"]


def test_a_user_who_is_not_signed_in_is_told_how_to_sign_in(webui):
    processed = generate(webui, tab_p(webui, "nobody"), "tiny.safetensors")

    assert processed.images == []
    assert processed.info.startswith("Amazon SageMaker: Not signed in")
    assert "Test Connection & Update Setting" in processed.info
    assert json.loads(processed.js())["infotexts"] == []


def test_refreshing_while_signed_out_says_so(webui):
    refresh = ChoicesRefresh(webui.script._script_sessions)

    *lists, status = refresh.on_refresh(None, "Automatic", [], "Automatic", _request("nobody"))

    assert "Not signed in" in status
    assert all(update == gr.update() for update in lists)


# -- generating ----------------------------------------------------------------------------


def test_generate_brings_the_cloud_images_into_the_gallery(webui, generation):
    sign_in(webui, generation, "alice", [ADMIN_ROLE])
    p = tab_p(webui, "alice")

    processed = generate(webui, p, None, "Automatic", [], 1.0, generation.endpoint)

    pictures = processed.images
    assert [picture.size for picture in pictures] == [(64, 64), (64, 64)]
    info = json.loads(processed.js())
    assert info["all_seeds"] == [1234, 1235]
    assert info["infotexts"][0].startswith("a red fox\nNegative prompt: blurry\n")
    assert "Seed: 1235" in info["infotexts"][1]
    assert [picture.info["parameters"] for picture in pictures] == info["infotexts"]
    assert processed.info == info["infotexts"][0]
    model = generation.model
    assert (info["sd_model_name"], info["sd_model_hash"]) == (
        Path(model["name"]).stem,
        model["sha256"][:10],
    )
    assert f"on endpoint {generation.endpoint}" in processed.comments
    saved = sorted(webui.outputs.glob("*.png"))
    assert [path.name for path in saved] == ["00000-1234.png", "00001-1235.png"]
    assert Image.open(saved[1]).info["parameters"] == info["infotexts"][1]
    state = webui.shared.state
    assert (state.job_no, state.textinfo) == (1, None)


def test_styles_and_clip_skip_of_this_webui_shape_the_cloud_job(webui, generation):
    sign_in(webui, generation, "alice", [ADMIN_ROLE])
    webui.shared.opts.CLIP_stop_at_last_layers = 2
    p = tab_p(webui, "alice", styles=["Ink"], batch_size=1)

    processed = generate(webui, p, None)

    infotext = processed.infotexts[0]
    assert infotext.startswith("a red fox, ink drawing\nNegative prompt: blurry, photo\n")
    assert "Clip skip: 2" in infotext


def test_an_api_caller_acts_as_the_webui_user_of_a_webui_without_logins(webui, generation):
    sign_in(webui, generation, "", [ADMIN_ROLE])
    p = tab_p(webui, None, batch_size=1)  # /sdapi/v1/txt2img leaves p.user unset

    processed = generate(webui, p, generation.model["name"])

    assert len(processed.images) == 1


def test_one_webui_users_sign_in_is_not_anothers(webui, generation):
    sign_in(webui, generation, "alice", [ADMIN_ROLE])

    processed = generate(webui, tab_p(webui, "bob"), None)

    assert processed.images == []
    assert processed.info.startswith("Amazon SageMaker: Not signed in")


def test_signing_in_again_in_the_tab_changes_who_generates(webui, generation):
    sign_in(webui, generation, "alice", [ADMIN_ROLE])
    assert len(generate(webui, tab_p(webui, "alice", batch_size=1), None).images) == 1
    outsider = generation.add_role("outsider", [contract.PERMISSION_INFERENCE])

    sign_in(webui, generation, "alice", [outsider])
    processed = generate(webui, tab_p(webui, "alice", batch_size=1), None)

    assert processed.images == []
    assert "deploy one" in processed.info


def test_refresh_lists_the_users_models_and_endpoints(webui, generation):
    sign_in(webui, generation, "alice", [ADMIN_ROLE])
    refresh = ChoicesRefresh(webui.script._script_sessions)

    checkpoint, vae, loras, endpoint, status = refresh.on_refresh(
        None, "Automatic", [], "Automatic", _request("alice")
    )

    name = generation.model["name"]
    assert (checkpoint["choices"], checkpoint["value"]) == ([name], name)
    assert vae["choices"] == ["Automatic"]
    assert loras["choices"] == []
    assert endpoint["choices"] == ["Automatic", generation.endpoint]
    assert "1 checkpoint, 0 LoRAs, 0 VAEs, 1 endpoint (1 in service)" in status


def test_models_not_in_the_cloud_are_named(webui, generation):
    sign_in(webui, generation, "alice", [ADMIN_ROLE])

    unknown = generate(webui, tab_p(webui, "alice"), "v1-5-pruned-emaonly.safetensors")
    tagged = generate(
        webui, tab_p(webui, "alice", prompt="a red fox <lora:ink_style:0.6>", batch_size=1), None
    )

    assert unknown.images == []
    assert "No checkpoint named 'v1-5-pruned-emaonly.safetensors'" in unknown.info
    assert len(tagged.images) == 1
    assert "No cloud LoRA is named ink_style" in tagged.comments


def test_a_pasted_infotext_model_name_selects_the_cloud_checkpoint(webui, generation):
    sign_in(webui, generation, "alice", [ADMIN_ROLE])
    model = generation.model
    pasted = f"{Path(model['name']).stem} [{model['sha256'][:10]}]"

    processed = generate(webui, tab_p(webui, "alice", batch_size=1), pasted)

    assert len(processed.images) == 1


def test_interrupt_cancels_the_cloud_job(webui, generation):
    login = sign_in(webui, generation, "alice", [ADMIN_ROLE])
    state = webui.shared.state
    p = tab_p(webui, "alice", steps=60, batch_size=1, width=128, height=128)
    clicked = threading.Timer(1.0, state.interrupt)  # the Interrupt button, a second in

    clicked.start()
    try:
        processed = generate(webui, p, None)
    finally:
        clicked.cancel()

    assert processed.images == []
    assert processed.info.startswith("Interrupted: Job ")
    with generation.client(login) as alice:
        (job,) = alice.list_inferences().items
    assert job["status"] == contract.INFERENCE_CANCELLED


def _request(username: str) -> SimpleNamespace:
    return SimpleNamespace(username=username or None)
