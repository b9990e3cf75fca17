"""The shim and `aws_extension.webui` against a faked A1111: tab, settings, failure safety."""

from __future__ import annotations

import logging
import sys

import gradio as gr

from aws_extension.webui import hooks


def _elem_ids(blocks: gr.Blocks) -> set[str]:
    return {b.elem_id for b in blocks.blocks.values() if getattr(b, "elem_id", None)}


def test_shim_registers_one_tab_and_one_settings_callback(a1111):
    a1111.load_shim()

    callbacks = a1111.script_callbacks.callback_map
    assert [c.callback for c in callbacks["callbacks_ui_tabs"]] == [hooks.ui_tabs]
    assert [c.callback for c in callbacks["callbacks_ui_settings"]] == [hooks.ui_settings]


def test_reload_ui_registers_again_after_a1111_cleared_the_callbacks(a1111):
    a1111.load_shim()
    a1111.script_callbacks.clear_callbacks()
    a1111.load_shim()

    assert len(a1111.script_callbacks.callback_map["callbacks_ui_tabs"]) == 1


def test_the_tab_builds_into_blocks_with_the_settings_and_models_subtabs(a1111):
    a1111.load_shim()

    tabs = a1111.script_callbacks.ui_tabs_callback()

    assert len(tabs) == 1
    blocks, title, elem_id = tabs[0]
    assert isinstance(blocks, gr.Blocks)
    assert (title, elem_id) == ("Amazon SageMaker", "sagemaker_interface")
    ids = _elem_ids(blocks)
    assert {
        "sagemaker_interface",
        "sagemaker_settings_tab",
        "sagemaker_api_url",
        "sagemaker_api_token",
        "sagemaker_username",
        "sagemaker_password",
        "sagemaker_connect",
        "sagemaker_connection_status",
        "sagemaker_signout",
        "sagemaker_roles_table",
        "sagemaker_role_name",
        "sagemaker_role_permissions",
        "sagemaker_role_create",
        "sagemaker_role_update",
        "sagemaker_role_delete",
        "sagemaker_role_delete_confirm",
        "sagemaker_roles_previous",
        "sagemaker_roles_next",
        "sagemaker_users_table",
        "sagemaker_user_name",
        "sagemaker_user_password",
        "sagemaker_user_roles",
        "sagemaker_user_create",
        "sagemaker_user_update_roles",
        "sagemaker_user_set_password",
        "sagemaker_user_delete",
        "sagemaker_user_delete_confirm",
        "sagemaker_own_password_current",
        "sagemaker_own_password_change",
        "sagemaker_models_tab",
        "sagemaker_models_folder_files",
        "sagemaker_models_computer_files",
        "sagemaker_models_urls",
        "sagemaker_models_table",
        "sagemaker_models_delete_confirm",
    } <= ids


def test_the_token_field_is_a_password_field_and_starts_empty(a1111):
    a1111.load_shim()
    blocks = a1111.script_callbacks.ui_tabs_callback()[0][0]

    token = next(b for b in blocks.blocks.values() if b.elem_id == "sagemaker_api_token")

    assert token.type == "password"
    assert not token.value


def test_the_settings_section_registers_its_options_with_defaults(a1111):
    a1111.load_shim()

    a1111.script_callbacks.ui_settings_callback()

    opts = a1111.shared.opts
    labels = opts.data_labels
    expected = {
        "sagemaker_request_timeout": 30.0,
        "sagemaker_connect_timeout": 5.0,
        "sagemaker_retries": 3,
        "sagemaker_poll_interval": 2.0,
    }
    for key, default in expected.items():
        assert labels[key].section == ("sagemaker", "Amazon SageMaker")
        assert labels[key].component is gr.Slider
        assert (
            labels[key].component_args["minimum"]
            <= default
            <= labels[key].component_args["maximum"]
        )
        assert getattr(opts, key) == default
    # Secrets never become WebUI options (those are served by /sdapi/v1/options).
    assert not any("token" in key or "password" in key for key in labels)


def test_a_failing_registration_is_logged_and_the_webui_goes_on(a1111, monkeypatch, caplog):
    # As if the WebUI had no script_callbacks (an unknown fork): importing it fails.
    monkeypatch.setitem(sys.modules, "modules.script_callbacks", None)
    monkeypatch.delattr(sys.modules["modules"], "script_callbacks")

    with caplog.at_level(logging.ERROR, logger="sd_webui_sagemaker"):
        a1111.load_shim()  # must not raise

    assert "could not register its tab" in caplog.text
    assert "ModuleNotFoundError" in caplog.text or "ImportError" in caplog.text


def test_a_tab_that_fails_to_build_is_left_out_and_logged(a1111, monkeypatch, caplog):
    import aws_extension.ui.tab

    def broken(context):
        raise RuntimeError("boom")

    monkeypatch.setattr(aws_extension.ui.tab, "build_tab", broken)
    a1111.load_shim()

    with caplog.at_level(logging.ERROR, logger="sd_webui_sagemaker"):
        tabs = a1111.script_callbacks.ui_tabs_callback()

    assert tabs == []
    assert "could not be built" in caplog.text
    assert "boom" in caplog.text


def test_settings_that_fail_are_logged_not_raised(a1111, monkeypatch, caplog):
    monkeypatch.setattr(a1111.shared, "opts", None)
    a1111.load_shim()

    with caplog.at_level(logging.ERROR, logger="sd_webui_sagemaker"):
        a1111.script_callbacks.ui_settings_callback()

    assert "settings could not be registered" in caplog.text


def test_fake_a1111_is_gone_after_the_fixture():
    assert not any(name == "modules" or name.startswith("modules.") for name in sys.modules)
