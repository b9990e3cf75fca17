"""The settings file lands in the WebUI's data folder."""

from __future__ import annotations

from aws_extension.webui import paths


def test_the_settings_file_is_in_the_data_dir_given_to_the_webui(a1111):
    assert paths.settings_path() == a1111.data_dir / "sagemaker" / "settings.json"


def test_without_paths_internal_data_path_cmd_opts_data_dir_is_used(a1111, monkeypatch, tmp_path):
    monkeypatch.delattr(a1111.paths_internal, "data_path")
    monkeypatch.setattr(a1111.shared.cmd_opts, "data_dir", str(tmp_path / "other"))

    assert paths.settings_path() == tmp_path / "other" / "sagemaker" / "settings.json"


def test_without_any_webui_the_extension_folder_is_used():
    assert paths.settings_path() == paths.EXTENSION_ROOT / "sagemaker" / "settings.json"
