"""The folders A1111 reads each model type from, with its command-line overrides."""

from __future__ import annotations

import textwrap
from pathlib import Path

from aws_extension.ui.model_files import local_files
from aws_extension.webui import hooks
from aws_extension.webui.model_dirs import model_dirs

CONTROLNET_PRELOAD = textwrap.dedent(
    """
    def preload(parser):
        parser.add_argument("--controlnet-dir", type=str, default=None)
        parser.add_argument("--controlnet-annotator-models-path", type=str, default=None)
    """
)


def test_by_default_every_type_is_in_a1111_s_own_folders(a1111):
    data = a1111.data_dir
    models = data / "models"

    assert model_dirs() == {
        "Stable-diffusion": [models / "Stable-diffusion"],
        "Lora": [models / "Lora", models / "LyCORIS"],
        "VAE": [models / "VAE"],
        "ControlNet": [models / "ControlNet"],
        "embeddings": [data / "embeddings"],
        "hypernetworks": [models / "hypernetworks"],
    }


def test_command_line_overrides_are_honoured(a1111_launcher, tmp_path):
    m, c, v, lo, ly, e, h = (tmp_path / n for n in ("m", "ck", "v", "lo", "ly", "e", "h"))
    a1111_launcher.start(
        *("--models-dir", str(m), "--ckpt-dir", str(c), "--vae-dir", str(v)),
        *("--lora-dir", str(lo), "--lyco-dir-backcompat", str(ly)),
        *("--embeddings-dir", str(e), "--hypernetwork-dir", str(h)),
    )

    assert model_dirs() == {
        # A1111 lists --ckpt-dir and <models>/Stable-diffusion, <models>/VAE and --vae-dir.
        "Stable-diffusion": [c, m / "Stable-diffusion"],
        "Lora": [lo, ly],
        "VAE": [m / "VAE", v],
        "ControlNet": [m / "ControlNet"],
        "embeddings": [e],
        "hypernetworks": [h],
    }


def test_models_dir_moves_the_defaults_but_not_the_embeddings(a1111_launcher, tmp_path):
    a1111 = a1111_launcher.start("--models-dir", str(tmp_path / "m"))

    dirs = model_dirs()

    assert dirs["Lora"] == [tmp_path / "m" / "Lora", tmp_path / "m" / "LyCORIS"]
    assert dirs["hypernetworks"] == [tmp_path / "m" / "hypernetworks"]
    assert dirs["embeddings"] == [a1111.data_dir / "embeddings"]


def test_the_controlnet_extension_s_folders_count_when_it_is_installed(a1111_launcher, tmp_path):
    extension = a1111_launcher.data_dir / "extensions" / "sd-webui-controlnet"
    extension.mkdir(parents=True)
    (extension / "preload.py").write_text(CONTROLNET_PRELOAD)
    a1111 = a1111_launcher.start("--controlnet-dir", str(tmp_path / "cn"))
    a1111.shared.opts.data["control_net_models_path"] = str(tmp_path / "extra")

    assert model_dirs()["ControlNet"] == [
        a1111.data_dir / "models" / "ControlNet",
        tmp_path / "cn",
        tmp_path / "extra",
    ]


def test_without_the_controlnet_extension_its_option_means_nothing(a1111_launcher, tmp_path):
    a1111 = a1111_launcher.start("--controlnet-dir", str(tmp_path / "cn"))

    assert not hasattr(a1111.shared.cmd_opts, "controlnet_dir")
    assert model_dirs()["ControlNet"] == [a1111.data_dir / "models" / "ControlNet"]


def test_the_same_folder_given_twice_is_listed_once(a1111_launcher):
    models = a1111_launcher.data_dir / "models"
    a1111_launcher.start("--ckpt-dir", str(models / "Stable-diffusion"))

    assert model_dirs()["Stable-diffusion"] == [models / "Stable-diffusion"]


def test_the_tab_lists_the_files_a1111_would(a1111, monkeypatch):
    lora = a1111.data_dir / "models" / "Lora" / "styles" / "ink.safetensors"
    lora.parent.mkdir(parents=True)
    lora.write_bytes(b"x")
    built = []
    monkeypatch.setattr("aws_extension.ui.tab.build_tab", built.append)
    a1111.load_shim()

    hooks.ui_tabs()

    files = local_files(built[0].model_dirs, "Lora").files
    assert files == {"Lora/styles/ink.safetensors": Path(lora)}
