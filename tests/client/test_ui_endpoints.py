"""The Inference Endpoint Management sub-tab, against the real middleware (`server`).

Everyone signed in sees the endpoints the server shows them; only endpoint managers
(`sagemaker_endpoint:all`) get the deploy form and the two-step delete. The session's stack
offers the instance type `local` only; its endpoints are runtime processes, deleted after
each test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from aws_extension.client.errors import NotFound
from aws_extension.ui.paging import PageState
from tests.client.conftest import Server, unique
from tests.client.tab_support import REQUEST, cells, connect, names, visible


def _delete_endpoints(server: Server) -> None:
    for endpoint in server.admin.list_endpoints(limit=200).items:
        with contextlib.suppress(NotFound):
            server.admin.delete_endpoint(endpoint["name"])


@pytest.fixture
def endpoints_server(server: Server) -> Iterator[Server]:
    """`server`, with every endpoint deleted before and after the test."""
    _delete_endpoints(server)
    try:
        yield server
    finally:
        _delete_endpoints(server)


def _deploy(tab, name: str = "", **fields) -> dict:
    """Click Deploy endpoint with the form's defaults, or `fields` instead of them."""
    form = {
        "name": name,
        "endpoint_type": "async",
        "engine": "diffusers",
        "instance_type": "local",
        "count": 1,
        "concurrency": 1,
        "autoscaling": False,
        "min_count": 0,
        "max_count": 1,
        "roles": [],
        "roles_text": "",
        "webui_url": "",
        "webui_models_dir": "",
        **fields,
    }
    return tab.endpoints.on_deploy(**form, state=PageState(), request=REQUEST)


def test_a_manager_gets_the_form_with_the_instance_types_offered(endpoints_server, tab):
    updates = connect(tab, endpoints_server)

    e = tab.endpoints
    assert visible(updates[e.panel]) is True
    assert visible(updates[e.editor]) is True
    assert visible(updates[tab.endpoints_hint.hint]) is False
    assert updates[e.instance_type]["choices"] == ["local"]
    assert updates[e.instance_type]["value"] == "local"
    assert visible(updates[e.roles]) is True
    assert "admin" in updates[e.roles]["choices"]
    assert cells(updates[e.table]) == []


def test_deploy_lists_the_endpoint_and_empties_the_name(endpoints_server, tab):
    connect(tab, endpoints_server)
    name = unique("ui-ep")

    updates = _deploy(tab, f" {name} ", concurrency=2.0)

    e = tab.endpoints
    assert f"Deploying endpoint <b>{name}</b>" in updates[e.status]
    assert updates[e.new_name] == ""
    (row,) = cells(updates[e.table])
    assert row[:4] == [name, "async", "local", "diffusers"]
    assert row[6:9] == ["off", "everyone", endpoints_server.username]
    assert row[9].endswith(" UTC")
    endpoint = endpoints_server.admin.get_endpoint(name)
    assert endpoint["concurrency_per_instance"] == 2
    assert endpoint["created_by"] == endpoints_server.username


def test_without_a_name_the_server_makes_one_up(endpoints_server, tab):
    connect(tab, endpoints_server)

    updates = _deploy(tab, endpoint_type="realtime")

    (name,) = names(updates[tab.endpoints.table])
    assert name.startswith("sd-realtime-")
    assert endpoints_server.admin.get_endpoint(name)["type"] == "realtime"


def test_allowed_roles_limit_who_sees_the_endpoint(endpoints_server, tab, ui_context):
    artists = endpoints_server.add_role("artists", ["inference:all"])
    painters = endpoints_server.add_role("painters", ["inference:all"])
    ann = endpoints_server.add_user("ann", [artists])
    connect(tab, endpoints_server)
    ours, theirs = unique("ours"), unique("theirs")
    _deploy(tab, ours, roles=[artists])
    listed = _deploy(tab, theirs, roles=[painters])
    assert sorted(names(listed[tab.endpoints.table])) == sorted([ours, theirs])

    updates = connect(tab, endpoints_server, username=ann.username, password=ann.password)

    e = tab.endpoints
    assert visible(updates[e.panel]) is True
    assert visible(updates[e.editor]) is False
    assert names(updates[e.table]) == [ours]
    assert cells(updates[e.table])[0][7] == artists


def test_picking_a_row_then_delete_asks_first(endpoints_server, tab):
    connect(tab, endpoints_server)
    name = unique("ui-ep")
    listed = _deploy(tab, name)
    e = tab.endpoints

    picked = e.on_select(listed[e.items], SimpleNamespace(index=[0, 1]))
    assert picked == {e.name: name}
    asked = e.on_delete(name, listed[e.items])
    assert visible(asked[e.confirm_row]) is True
    assert f"Delete endpoint <b>{name} (async, local)</b>?" in asked[e.confirm_text]
    assert endpoints_server.admin.get_endpoint(name)["name"] == name  # nothing deleted yet

    done = e.on_confirm_delete(asked[e.pending], PageState(), listed[e.items], REQUEST)

    assert f"Deleted endpoint {name}" in done[e.status]
    assert visible(done[e.confirm_row]) is False
    with pytest.raises(NotFound):
        endpoints_server.admin.get_endpoint(name)


def test_delete_without_a_pick_says_so(endpoints_server, tab):
    connect(tab, endpoints_server)

    updates = tab.endpoints.on_delete("", [])

    assert "Enter or pick the endpoint to delete." in updates[tab.endpoints.status]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"name": "no spaces allowed"}, "cannot name an endpoint"),
        ({"count": 1.5}, "initial instance count must be a whole number, not 1.5"),
        ({"count": None}, "Enter the initial instance count."),
        ({"instance_type": None}, "Enter the instance type."),
    ],
)
def test_the_form_is_checked_before_calling_the_api(endpoints_server, tab, fields, words):
    connect(tab, endpoints_server)

    updates = _deploy(tab, **fields)

    assert set(updates) == {tab.endpoints.status}
    assert words in updates[tab.endpoints.status]
    assert endpoints_server.admin.list_endpoints().items == []


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"instance_type": "ml.g5.xlarge"}, "pick one of: local"),
        ({"autoscaling": True, "min_count": 1, "max_count": 3}, "initial_instance_count 1"),
    ],
)
def test_refusals_of_the_server_are_said_in_its_words(endpoints_server, tab, fields, words):
    connect(tab, endpoints_server)

    updates = _deploy(tab, unique("ui-ep"), **fields)

    assert set(updates) == {tab.endpoints.status}
    assert words in updates[tab.endpoints.status]
    assert endpoints_server.admin.list_endpoints().items == []


def test_a_taken_name_is_refused(endpoints_server, tab):
    connect(tab, endpoints_server)
    name = unique("ui-ep")
    _deploy(tab, name)

    updates = _deploy(tab, name)

    assert set(updates) == {tab.endpoints.status}
    assert "Error:" in updates[tab.endpoints.status]
    assert name in updates[tab.endpoints.status]


def test_signed_out_the_sub_tab_says_where_to_sign_in(endpoints_server, tab):
    connect(tab, endpoints_server)
    _deploy(tab, unique("ui-ep"))

    updates = tab.connection.on_sign_out(REQUEST)

    assert visible(updates[tab.endpoints_hint.hint]) is True
    assert visible(updates[tab.endpoints.panel]) is False
    assert cells(updates[tab.endpoints.table]) == []
    assert updates[tab.endpoints.instance_type]["choices"] == []
