"""Users: CRUD, paging, concurrency, and what a change does to their tokens."""

from __future__ import annotations

import threading

from tests.server.conftest import PASSWORD, Api

OTHER_PASSWORD = "other pass 3!"


def test_create_get_update_delete_a_user(api: Api, admin: str) -> None:
    api.create_role(admin, "artist", ["inference:all"])
    created = api.post(
        "/users", token=admin, json={"username": "ann", "password": PASSWORD, "roles": ["artist"]}
    )
    assert created.status_code == 201
    user = created.json()
    assert user["username"] == "ann"
    assert user["roles"] == ["artist"]
    assert user["permissions"] == ["inference:all"]
    assert user["created_by"] == "admin"
    assert set(user) == {
        "username",
        "roles",
        "permissions",
        "created_by",
        "created_at",
        "updated_at",
    }
    assert api.get("/users/ann", token=admin).json() == user

    updated = api.put("/users/ann", token=admin, json={"roles": ["admin", "artist"]})
    assert updated.status_code == 200
    assert updated.json()["roles"] == ["admin", "artist"]
    assert len(updated.json()["permissions"]) == 6

    assert api.delete("/users/ann", token=admin).status_code == 204
    assert api.get("/users/ann", token=admin).status_code == 404
    assert api.put("/users/ann", token=admin, json={}).status_code == 404
    assert api.delete("/users/ann", token=admin).status_code == 404


def test_a_duplicate_user_is_409(api: Api, admin: str) -> None:
    api.create_user(admin, "ann", [])
    body = {"username": "ann", "password": OTHER_PASSWORD, "roles": []}
    response = api.post("/users", token=admin, json=body)
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    api.login("ann", PASSWORD)


def test_unknown_roles_are_rejected_with_their_names(api: Api, admin: str) -> None:
    body = {"username": "ann", "password": PASSWORD, "roles": ["admin", "ghost", "phantom"]}
    response = api.post("/users", token=admin, json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "'ghost', 'phantom'" in response.json()["detail"]
    assert api.get("/users/ann", token=admin).status_code == 404
    api.create_user(admin, "ann", [])
    response = api.put("/users/ann", token=admin, json={"roles": ["ghost"]})
    assert response.status_code == 400
    assert "'ghost'" in response.json()["detail"]


def test_concurrent_creates_of_one_user_have_one_winner(api: Api, admin: str) -> None:
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def create(i: int) -> None:
        barrier.wait(timeout=10)
        body = {"username": "contested", "password": f"password {i}!", "roles": []}
        statuses.append(api.post("/users", token=admin, json=body).status_code)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [201] + [409] * 7


def test_users_are_listed_in_name_order_over_several_pages(api: Api, admin: str) -> None:
    names = [f"user{i}" for i in range(7)]
    for name in reversed(names):
        api.create_user(admin, name, [])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = api.get("/users", token=admin, params=params).json()
        seen += [user["username"] for user in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 4
    assert seen == ["admin", *names]


def test_a_roles_cursor_does_not_page_users(api: Api, admin: str) -> None:
    for name in ("r1", "r2"):
        api.create_role(admin, name, [])
    cursor = api.get("/roles", token=admin, params={"limit": 1}).json()["next_cursor"]
    response = api.get("/users", token=admin, params={"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_a_password_reset_revokes_the_users_tokens(api: Api, admin: str) -> None:
    api.create_user(admin, "ann", [])
    session = api.login("ann", PASSWORD)
    assert api.put("/users/ann", token=admin, json={"password": OTHER_PASSWORD}).status_code == 200
    assert api.get("/me", token=session["access_token"]).status_code == 401
    refused = api.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refused.status_code == 401
    old = api.post("/auth/login", json={"username": "ann", "password": PASSWORD})
    assert old.status_code == 401
    api.login("ann", OTHER_PASSWORD)


def test_a_role_change_keeps_the_users_tokens(api: Api, admin: str) -> None:
    api.create_user(admin, "ann", [])
    token = api.token("ann", PASSWORD)
    assert api.put("/users/ann", token=admin, json={"roles": ["admin"]}).status_code == 200
    assert api.get("/users", token=token).status_code == 200


def test_deleting_a_user_kills_its_tokens_even_if_the_name_returns(api: Api, admin: str) -> None:
    api.create_user(admin, "ann", ["admin"])
    session = api.login("ann", PASSWORD)
    assert api.delete("/users/ann", token=admin).status_code == 204
    assert api.get("/me", token=session["access_token"]).status_code == 401
    assert (
        api.post("/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code
        == 401
    )
    # A new user of the same name must not inherit the old one's tokens.
    api.create_user(admin, "ann", ["admin"])
    assert api.get("/me", token=session["access_token"]).status_code == 401
    assert api.get("/me", token=api.token("ann", PASSWORD)).status_code == 200


def test_a_role_change_takes_effect_on_the_next_request(api: Api, admin: str) -> None:
    api.create_role(admin, "usermgr", ["user:all"])
    api.create_user(admin, "uma", ["usermgr"])
    token = api.token("uma", PASSWORD)
    assert api.get("/users", token=token).status_code == 200
    assert api.put("/roles/usermgr", token=admin, json={"permissions": []}).status_code == 200
    assert api.get("/users", token=token).status_code == 403
    assert api.get("/me", token=token).json()["permissions"] == []
    restored = api.put("/roles/usermgr", token=admin, json={"permissions": ["user:all"]})
    assert restored.status_code == 200
    assert api.get("/users", token=token).status_code == 200
