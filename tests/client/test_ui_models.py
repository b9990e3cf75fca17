"""The Cloud Models table and its form, against the real middleware (`server`).

Everyone signed in sees the models the server shows them; only model managers
(`checkpoint:all`) get the upload forms and the form that renames, restricts and deletes.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from aws_extension.client.errors import NotFound
from aws_extension.ui.models_panel import ALL_TYPES, ANY_STATUS
from aws_extension.ui.paging import PageState
from tests.client.tab_support import REQUEST, cells, connect, names, visible


def _row(updates: dict, tab, name: str) -> list[str]:
    return next(row for row in cells(updates[tab.models.table]) if row[0] == name)


def test_a_model_manager_sees_the_models_the_forms_and_the_upload(server, tab, tmp_path):
    model = server.add_model(tmp_path, "night.safetensors", "Lora")

    updates = connect(tab, server)

    m = tab.models
    assert visible(updates[m.panel]) is True
    assert visible(updates[m.editor]) is True
    assert visible(updates[tab.uploads.panel]) is True
    assert visible(updates[tab.hint.hint]) is False
    assert m.headers == [
        "Name",
        "Type",
        "Size",
        "Hash",
        "Status",
        "Allowed roles",
        "Created by",
        "Created at",
    ]
    row = _row(updates, tab, "night.safetensors")
    assert row[:7] == [
        "night.safetensors",
        "Lora",
        f"{model['size'] / 1024:.1f} KiB",
        model["sha256"][:10],
        "Active",
        "everyone",
        server.stack.username,
    ]
    assert row[7].endswith(" UTC")


def test_a_user_without_checkpoint_all_sees_the_table_but_changes_nothing(server, tab, tmp_path):
    artists = server.add_role("artists", ["inference:all"])
    painters = server.add_role("painters", ["inference:all"])
    ann = server.add_user("ann", [artists])
    server.add_model(tmp_path, "shared.safetensors", "Stable-diffusion")
    server.add_model(tmp_path, "ours.safetensors", "Lora", allowed_roles=[artists])
    server.add_model(tmp_path, "theirs.safetensors", "Lora", allowed_roles=[painters])

    updates = connect(tab, server, username=ann.username, password=ann.password)

    assert visible(updates[tab.models.panel]) is True
    assert sorted(names(updates[tab.models.table])) == ["ours.safetensors", "shared.safetensors"]
    assert visible(updates[tab.models.editor]) is False
    assert visible(updates[tab.uploads.panel]) is False


def test_signed_out_the_sub_tab_says_where_to_sign_in(server, tab, tmp_path):
    server.add_model(tmp_path, "night.safetensors")
    connect(tab, server)

    updates = tab.connection.on_sign_out(REQUEST)

    assert visible(updates[tab.hint.hint]) is True
    assert visible(updates[tab.models.panel]) is False
    assert visible(updates[tab.uploads.panel]) is False
    assert cells(updates[tab.models.table]) == []


def test_filters_narrow_the_list_and_stay_while_refreshing(server, tab, tmp_path):
    server.add_model(tmp_path, "night-lora.safetensors", "Lora")
    server.add_model(tmp_path, "day-lora.safetensors", "Lora")
    server.add_model(tmp_path, "night-vae.pt", "VAE")
    connect(tab, server)
    m = tab.models

    by_type = m.on_filter("Lora", ANY_STATUS, "", REQUEST)
    assert sorted(names(by_type[m.table])) == ["day-lora.safetensors", "night-lora.safetensors"]

    by_both = m.on_filter("Lora", ANY_STATUS, " NIGHT ", REQUEST)
    assert names(by_both[m.table]) == ["night-lora.safetensors"]
    refreshed = m.on_refresh(by_both[m.state], REQUEST)
    assert names(refreshed[m.table]) == ["night-lora.safetensors"]

    by_status = m.on_filter(ALL_TYPES, "Failed", "", REQUEST)
    assert names(by_status[m.table]) == []
    everything = m.on_filter(ALL_TYPES, ANY_STATUS, "", REQUEST)
    assert len(names(everything[m.table])) == 3


def test_picking_a_row_fills_the_form(server, tab, tmp_path):
    artists = server.add_role("artists", ["inference:all"])
    model = server.add_model(tmp_path, "night.safetensors", allowed_roles=[artists])
    listed = connect(tab, server)

    updates = tab.models.on_select(listed[tab.models.items], SimpleNamespace(index=[0, 2]))

    assert updates == {
        tab.models.model_id: model["id"],
        tab.models.name: "night.safetensors",
        tab.models.roles: [artists],
        tab.models.roles_text: artists,
    }


def test_rename_changes_the_name_in_the_table_and_on_the_server(server, tab, tmp_path):
    model = server.add_model(tmp_path, "night.safetensors")
    connect(tab, server)

    updates = tab.models.on_rename(model["id"], "evening.safetensors", PageState(), REQUEST)

    assert "Renamed model" in updates[tab.models.status]
    assert "evening.safetensors" in updates[tab.models.status]
    assert names(updates[tab.models.table]) == ["evening.safetensors"]
    assert server.model(model["id"])["name"] == "evening.safetensors"


def test_a_name_that_cannot_be_a_file_name_is_refused_in_words(server, tab, tmp_path):
    model = server.add_model(tmp_path, "night.safetensors")
    connect(tab, server)

    updates = tab.models.on_rename(model["id"], "sub/night.safetensors", PageState(), REQUEST)

    assert set(updates) == {tab.models.status}
    assert "cannot name a model" in updates[tab.models.status]
    assert "a model name is a file name" in updates[tab.models.status]
    assert server.model(model["id"])["name"] == "night.safetensors"


def test_a_taken_name_is_refused_in_the_server_s_words(server, tab, tmp_path):
    server.add_model(tmp_path, "night.safetensors")
    other = server.add_model(tmp_path, "day.safetensors")
    connect(tab, server)

    updates = tab.models.on_rename(other["id"], "NIGHT.safetensors", PageState(), REQUEST)

    assert set(updates) == {tab.models.status}
    # The model holding the name, as it is spelled: names are unique ignoring case.
    assert "&#x27;night.safetensors&#x27; already exists" in updates[tab.models.status]
    assert server.model(other["id"])["name"] == "day.safetensors"


def test_nothing_picked_is_said_before_calling_the_api(server, tab):
    connect(tab, server)

    updates = tab.models.on_rename("", "x.safetensors", PageState(), REQUEST)

    assert "Pick a model in the table first." in updates[tab.models.status]


def test_allowed_roles_are_picked_by_those_who_may_list_roles(server, tab, tmp_path):
    artists = server.add_role("artists", ["inference:all"])
    model = server.add_model(tmp_path, "night.safetensors")
    shown = connect(tab, server)
    assert visible(shown[tab.models.roles]) is True
    assert sorted(shown[tab.models.roles]["choices"]) == sorted(["admin", artists])
    assert visible(shown[tab.models.roles_text]) is False

    updates = tab.models.on_update_roles(model["id"], [artists], "", PageState(), REQUEST)

    assert f"may now be used by: {artists}" in updates[tab.models.status]
    assert _row(updates, tab, "night.safetensors")[5] == artists
    assert server.model(model["id"])["allowed_roles"] == [artists]

    back = tab.models.on_update_roles(model["id"], [], "", PageState(), REQUEST)
    assert _row(back, tab, "night.safetensors")[5] == "everyone"


def test_a_manager_who_may_not_list_roles_types_them(server, tab, tmp_path):
    curators = server.add_role("curators", ["checkpoint:all"])
    artists = server.add_role("artists", ["inference:all"])
    painters = server.add_role("painters", ["inference:all"])
    cleo = server.add_user("cleo", [curators])
    model = server.add_model(tmp_path, "night.safetensors")
    shown = connect(tab, server, username=cleo.username, password=cleo.password)
    assert visible(shown[tab.models.editor]) is True
    assert visible(shown[tab.models.roles]) is False
    assert visible(shown[tab.models.roles_text]) is True

    typed = f" {artists},{painters}  "
    updates = tab.models.on_update_roles(model["id"], [], typed, PageState(), REQUEST)

    assert server.model(model["id"])["allowed_roles"] == [artists, painters]
    assert _row(updates, tab, "night.safetensors")[5] == f"{artists}, {painters}"

    unknown = tab.models.on_update_roles(model["id"], [], "nobody-has-it", PageState(), REQUEST)
    assert "Error:" in unknown[tab.models.status]
    assert "nobody-has-it" in unknown[tab.models.status]


def test_delete_asks_with_the_model_s_name_and_cancel_keeps_it(server, tab, tmp_path):
    model = server.add_model(tmp_path, "night.safetensors", "VAE")
    listed = connect(tab, server)

    asked = tab.models.on_delete(model["id"], listed[tab.models.items])

    assert visible(asked[tab.models.confirm_row]) is True
    assert asked[tab.models.pending] == model["id"]
    assert "Delete model <b>night.safetensors (VAE)</b>?" in asked[tab.models.confirm_text]
    cancelled = tab.models.on_cancel()
    assert visible(cancelled[tab.models.confirm_row]) is False
    assert server.model_names() == ["night.safetensors"]


def test_confirmed_delete_removes_the_model(server, tab, tmp_path):
    model = server.add_model(tmp_path, "night.safetensors")
    kept = server.add_model(tmp_path, "day.safetensors")
    listed = connect(tab, server)

    updates = tab.models.on_confirm_delete(
        model["id"], PageState(), listed[tab.models.items], REQUEST
    )

    assert "Deleted model night.safetensors (Lora)." in updates[tab.models.status]
    assert visible(updates[tab.models.confirm_row]) is False
    assert names(updates[tab.models.table]) == [kept["name"]]
    with pytest.raises(NotFound):
        server.model(model["id"])


def test_filters_and_form_are_reset_for_the_next_sign_in(server, tab, tmp_path):
    server.add_model(tmp_path, "night.safetensors")
    connect(tab, server)
    tab.models.on_filter("VAE", ANY_STATUS, "x", REQUEST)

    again = connect(tab, server)

    assert again[tab.models.type_filter] == ALL_TYPES
    assert again[tab.models.name_filter] == ""
    assert names(again[tab.models.table]) == ["night.safetensors"]
    assert again[tab.models.state] == PageState(next_cursor=None)
    assert again[tab.models.roles]["value"] == []
