"""The local stack's state folder, first-start bootstrap and command-line checks."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
from pathlib import Path

import pytest

from aws_extension.local import cli
from aws_extension.local.bootstrap import bootstrap
from aws_extension.local.state import (
    StateError,
    default_state_dir,
    open_state,
    write_private_json,
)
from aws_extension.middleware.records.sqlite import SqliteRecords
from aws_extension.middleware.security.passwords import PasswordHasher
from tests.server.conftest import FAST_SCRYPT, FakeClock


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_default_folder_follows_xdg(tmp_path: Path) -> None:
    assert default_state_dir({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "sd-webui-sagemaker"
    default = default_state_dir({})
    assert default == Path.home() / ".local" / "share" / "sd-webui-sagemaker"


def test_first_open_creates_private_secrets_and_later_opens_keep_them(tmp_path: Path) -> None:
    folder = tmp_path / "nested" / "state"
    state = open_state(folder)
    assert mode(folder) == 0o700
    assert mode(folder / "config.json") == 0o600
    assert mode(state.records_path) == 0o600
    assert len(state.api_token) >= 40
    assert len(state.signing_secret) >= 60
    # Checks on secrets go through booleans, so a failure cannot print them.
    shown = state.api_token in repr(state) or state.signing_secret in repr(state)
    assert not shown
    again = open_state(folder)
    kept = (again.api_token, again.signing_secret) == (state.api_token, state.signing_secret)
    assert kept
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "records.sqlite3"]


@pytest.mark.parametrize("content", ["{not json", "[]", '{"api_token": "x"}', ""])
def test_a_damaged_config_is_a_clear_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(StateError, match=r"config\.json"):
        open_state(tmp_path)


def test_private_json_is_written_whole_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    target.write_text("old")
    target.chmod(0o644)
    write_private_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_bootstrap_makes_the_super_admin_only_once(tmp_path: Path) -> None:
    records = SqliteRecords(tmp_path / "r.sqlite3")
    hasher = PasswordHasher(FAST_SCRYPT)
    password = bootstrap(records, hasher, FakeClock())
    assert password is not None
    assert len(password) >= 16
    user = records.get("user", "admin")
    assert user.doc["roles"] == ["admin"]
    signs_in = hasher.verify(password, user.doc["password_hash"])
    assert signs_in
    assert len(records.get("role", "admin").doc["permissions"]) == 6
    second = bootstrap(records, hasher, FakeClock())
    assert second is None
    still_signs_in = hasher.verify(password, records.get("user", "admin").doc["password_hash"])
    assert still_signs_in


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])  # noqa: S104
def test_a_remote_host_needs_allow_remote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    assert cli.main(["--state-dir", str(tmp_path), "--host", host, "--port", "0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert not (tmp_path / "config.json").exists()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_hosts_are_allowed(host: str) -> None:
    assert cli.is_loopback(host)


def test_a_busy_port_fails_before_any_password_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert cli.main(["--state-dir", str(tmp_path), "--port", str(port)]) == 1
    output = capsys.readouterr()
    assert "--port" in output.err
    assert "Password:" not in output.out
    assert SqliteRecords(tmp_path / "records.sqlite3").get("user", "admin") is None


def test_answers_on_a_kept_alive_connection_are_not_held_back() -> None:
    """uvicorn's asyncio sets TCP_NODELAY on accepted connections only when the listening
    socket says IPPROTO_TCP; without it every answer after the first on a kept-alive
    connection (the client's requests.Session) waited ~40 ms for a delayed ACK."""

    async def nodelay_of_an_accepted_connection() -> int:
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[int] = loop.create_future()

        def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        listening = cli.bind("127.0.0.1", 0)
        async with await asyncio.start_server(on_connect, sock=listening):
            _, writer = await asyncio.open_connection(*listening.getsockname())
            try:
                return await asyncio.wait_for(accepted, timeout=5)
            finally:
                writer.close()

    assert asyncio.run(nodelay_of_an_accepted_connection()) != 0
