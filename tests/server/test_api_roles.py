"""Roles: CRUD, paging, and who may see or change them."""

from __future__ import annotations

from aws_extension.contract import PERMISSIONS
from tests.server.conftest import PASSWORD, Api, FakeClock


def test_create_get_update_delete_a_role(api: Api, admin: str, clock: FakeClock) -> None:
    body = {"name": "artist", "permissions": ["train:all", "inference:all", "inference:all"]}
    created = api.post("/roles", token=admin, json=body)
    assert created.status_code == 201
    role = created.json()
    # Stored without duplicates, in the contract's order.
    assert role["permissions"] == ["inference:all", "train:all"]
    assert role["name"] == "artist"
    assert role["created_by"] == "admin"
    assert role["created_at"] == role["updated_at"]
    assert api.get("/roles/artist", token=admin).json() == role

    clock.advance(60)
    updated = api.put("/roles/artist", token=admin, json={"permissions": ["checkpoint:all"]})
    assert updated.status_code == 200
    assert updated.json()["permissions"] == ["checkpoint:all"]
    assert updated.json()["created_at"] == role["created_at"]
    assert updated.json()["updated_at"] > role["updated_at"]

    assert api.delete("/roles/artist", token=admin).status_code == 204
    missing = api.get("/roles/artist", token=admin)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert missing.json()["detail"] == "No role named 'artist'."


def test_a_duplicate_role_is_409(api: Api, admin: str) -> None:
    api.create_role(admin, "artist", [])
    response = api.post("/roles", token=admin, json={"name": "artist", "permissions": []})
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


def test_update_and_delete_of_a_missing_role_are_404(api: Api, admin: str) -> None:
    assert api.put("/roles/ghost", token=admin, json={"permissions": []}).status_code == 404
    assert api.delete("/roles/ghost", token=admin).status_code == 404


def test_a_role_in_use_cannot_be_deleted(api: Api, admin: str) -> None:
    api.create_role(admin, "artist", ["inference:all"])
    api.create_user(admin, "ann", ["artist"])
    response = api.delete("/roles/artist", token=admin)
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert "'ann'" in response.json()["detail"]
    assert api.put("/users/ann", token=admin, json={"roles": []}).status_code == 200
    assert api.delete("/roles/artist", token=admin).status_code == 204


def test_roles_are_listed_in_name_order_over_several_pages(api: Api, admin: str) -> None:
    names = ["zeta", "Beta", "alpha", "gamma", "delta", "eps", "b-2"]
    for name in names:
        api.create_role(admin, name, [])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3} if cursor is None else {"limit": 3, "cursor": cursor}
        response = api.get("/roles", token=admin, params=params)
        assert response.status_code == 200
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= 3
        seen += [role["name"] for role in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted([*names, "admin"])


def test_user_managers_may_read_roles_but_not_change_them(api: Api, admin: str) -> None:
    api.create_role(admin, "usermgr", ["user:all"])
    api.create_user(admin, "uma", ["usermgr"])
    token = api.token("uma", PASSWORD)
    assert api.get("/roles", token=token).status_code == 200
    assert api.get("/roles/usermgr", token=token).status_code == 200
    for method, path, body in [
        ("POST", "/roles", {"name": "x", "permissions": []}),
        ("PUT", "/roles/usermgr", {"permissions": []}),
        ("DELETE", "/roles/usermgr", None),
    ]:
        response = api.request(method, path, token=token, json=body)
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert "'role:all'" in response.json()["detail"]


def test_a_user_without_permissions_cannot_see_roles_or_users(api: Api, admin: str) -> None:
    api.create_user(admin, "plain", [])
    token = api.token("plain", PASSWORD)
    for path in ("/roles", "/roles/admin", "/users", "/users/admin"):
        response = api.get(path, token=token)
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"


def test_the_super_admin_role_holds_every_permission(api: Api, admin: str) -> None:
    assert api.get("/roles/admin", token=admin).json()["permissions"] == list(PERMISSIONS)
