"""SettingsStore: private file, atomic replacement, per-user sessions, damaged files survived."""

from __future__ import annotations

import inspect
import json
import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from aws_extension.client import settings_store
from aws_extension.client.settings_store import Connection, SettingsStore, UserSession

API = "https://api.example.test/prod"
API_TOKEN = "tok-STORE-4471"
REFRESH_A = "ref-ALICE-1230"
REFRESH_B = "ref-BOB-9981"

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "sagemaker" / "settings.json"


@pytest.fixture
def store(path: Path) -> SettingsStore:
    return SettingsStore(path)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_empty_store_has_nothing_and_creates_nothing(store: SettingsStore, path: Path) -> None:
    assert store.connection() is None
    assert store.user_session("") is None
    assert not path.parent.exists()


def test_round_trip_and_file_layout(store: SettingsStore, path: Path) -> None:
    store.save_connection(API, API_TOKEN)
    store.save_user_session("", "admin", REFRESH_A)
    assert store.connection() == Connection(api_url=API, api_token=API_TOKEN)
    assert store.user_session("") == UserSession(username="admin", refresh_token=REFRESH_A)
    assert json.loads(path.read_text()) == {
        "version": 1,
        "api_url": API,
        "api_token": API_TOKEN,
        "users": {"": {"username": "admin", "refresh_token": REFRESH_A}},
    }
    # A fresh store (a restarted WebUI) reads the same.
    assert SettingsStore(path).user_session("") == UserSession("admin", REFRESH_A)


def test_sessions_are_kept_per_webui_user(store: SettingsStore) -> None:
    store.save_connection(API, API_TOKEN)
    store.save_user_session("alice", "alice-mw", REFRESH_A)
    store.save_user_session("bob", "bob-mw", REFRESH_B)
    assert store.user_session("alice") == UserSession("alice-mw", REFRESH_A)
    assert store.user_session("bob") == UserSession("bob-mw", REFRESH_B)
    assert store.user_session("") is None
    store.clear_user_session("alice")
    assert store.user_session("alice") is None
    assert store.user_session("bob") == UserSession("bob-mw", REFRESH_B)
    assert store.connection() == Connection(API, API_TOKEN)


def test_new_token_for_same_url_keeps_sessions(store: SettingsStore) -> None:
    store.save_connection(API, API_TOKEN)
    store.save_user_session("alice", "alice-mw", REFRESH_A)
    store.save_connection(API, "tok-ROTATED-1")
    assert store.user_session("alice") == UserSession("alice-mw", REFRESH_A)
    assert store.connection() == Connection(API, "tok-ROTATED-1")


def test_another_url_drops_sessions_of_the_old_server(store: SettingsStore) -> None:
    store.save_connection(API, API_TOKEN)
    store.save_user_session("alice", "alice-mw", REFRESH_A)
    store.save_connection("http://127.0.0.1:8080", API_TOKEN)
    assert store.user_session("alice") is None


def test_clear_all_removes_the_file(store: SettingsStore, path: Path) -> None:
    store.save_connection(API, API_TOKEN)
    store.clear_all()
    assert not path.exists()
    assert store.connection() is None
    store.clear_all()  # nothing left: no error


def test_clear_missing_user_does_not_write(store: SettingsStore, path: Path) -> None:
    store.clear_user_session("nobody")
    assert not path.exists()


@posix_only
def test_file_is_private_even_with_a_permissive_umask(store: SettingsStore, path: Path) -> None:
    old = os.umask(0)
    try:
        store.save_connection(API, API_TOKEN)
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


@posix_only
def test_wide_mode_of_an_existing_file_is_narrowed(
    store: SettingsStore, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.save_connection(API, API_TOKEN)
    path.chmod(0o644)
    assert store.connection() == Connection(API, API_TOKEN)
    assert mode(path) == 0o600
    assert "readable by others" in caplog.text
    assert API_TOKEN not in caplog.text


def test_write_replaces_atomically_through_a_temp_file(
    store: SettingsStore, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save_connection(API, API_TOKEN)
    replaced: list[tuple[Path, Path, int]] = []
    real_replace = os.replace

    def spy(src: str | Path, dst: str | Path) -> None:
        src, dst = Path(src), Path(dst)
        # At the moment of the swap the new content is complete and private.
        replaced.append((src, dst, stat.S_IMODE(src.stat().st_mode)))
        assert json.loads(src.read_text())["api_token"] == "tok-NEW-2"
        real_replace(src, dst)

    monkeypatch.setattr(settings_store.os, "replace", spy)
    store.save_connection(API, "tok-NEW-2")
    [(src, dst, src_mode)] = replaced
    assert dst == path
    assert src.parent == path.parent  # same folder: the rename is atomic
    if os.name == "posix":
        assert src_mode == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.json"]


def test_failed_write_keeps_the_old_file_and_no_temp(
    store: SettingsStore, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save_connection(API, API_TOKEN)
    before = path.read_bytes()

    def no_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(settings_store.os, "fsync", no_fsync)
    with pytest.raises(OSError, match="No space"):
        store.save_connection(API, "tok-NEW-2")
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.json"]


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'{"version": 99, "api_url": "x"}',
        b"",
    ],
)
def test_corrupt_file_is_kept_aside_and_treated_as_empty(
    store: SettingsStore, path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    caplog.set_level(logging.WARNING)
    assert store.connection() is None
    corrupt = path.with_name("settings.json.corrupt")
    assert corrupt.read_bytes() == content
    assert not path.exists()
    assert "settings.json.corrupt" in caplog.text
    # The WebUI goes on: saving works and does not touch the kept copy.
    store.save_connection(API, API_TOKEN)
    assert store.connection() == Connection(API, API_TOKEN)
    assert corrupt.read_bytes() == content


def test_corrupt_file_warning_holds_no_secret(
    store: SettingsStore, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path.parent.mkdir(parents=True)
    path.write_text('{"version": 1, "api_token": "' + API_TOKEN + '", ')  # truncated
    assert store.user_session("") is None
    assert caplog.records
    assert API_TOKEN not in caplog.text


def test_unreadable_file_does_not_crash(
    store: SettingsStore,
    path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.save_connection(API, API_TOKEN)
    real_read_bytes = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_read_bytes(self)

    # Simulated rather than chmod 0: the tests may run as root, who reads anything.
    monkeypatch.setattr(Path, "read_bytes", denied)
    assert store.connection() is None
    assert "cannot be read (PermissionError)" in caplog.text
    kept = path.with_name("settings.json.corrupt")
    assert json.loads(kept.read_text())["api_token"] == API_TOKEN


def test_directory_in_place_of_the_file_does_not_crash(store: SettingsStore, path: Path) -> None:
    path.mkdir(parents=True)
    assert store.connection() is None
    store.save_connection(API, API_TOKEN)
    assert store.connection() == Connection(API, API_TOKEN)


@pytest.mark.parametrize(
    "users",
    [
        {"": "not a dict"},
        {"": {"username": "admin"}},
        {"": {"username": "", "refresh_token": REFRESH_A}},
        {"": {"username": "admin", "refresh_token": 5}},
    ],
)
def test_malformed_entries_read_as_absent(store: SettingsStore, path: Path, users: dict) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 1, "api_url": API, "users": users}))
    assert store.user_session("") is None
    assert store.connection() is None  # no token
    assert path.exists()  # well-formed file: nothing moved aside


def test_concurrent_writers_lose_no_update(store: SettingsStore) -> None:
    store.save_connection(API, API_TOKEN)
    names = [f"user{i}" for i in range(16)]
    threads = [
        threading.Thread(target=store.save_user_session, args=(name, name, f"ref-{name}"))
        for name in names
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in names:
        assert store.user_session(name) == UserSession(name, f"ref-{name}")


def test_reprs_hide_secrets(store: SettingsStore) -> None:
    text = repr(Connection(API, API_TOKEN)) + repr(UserSession("admin", REFRESH_A)) + repr(store)
    assert API in text
    assert "admin" in text
    assert API_TOKEN not in text
    assert REFRESH_A not in text


def test_there_is_no_way_to_store_a_password() -> None:
    for name, member in inspect.getmembers(SettingsStore, inspect.isfunction):
        params = inspect.signature(member).parameters
        assert not any("password" in p for p in params), name
