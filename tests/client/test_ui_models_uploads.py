"""Uploads from the Cloud Models Management sub-tab, against the real middleware.

From the WebUI's model folders (a temporary folder laid out like A1111's, sub-folders
included), from the user's computer (what gradio's file field hands over), and by URL (a
file served on 127.0.0.1; the session's stack runs with --allow-private-import). Each file
ends `Active` in the table with the short hash of its bytes, or in the result list with the
reason in words.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from aws_extension.ui.model_files import folder_layout
from aws_extension.ui.paging import PageState
from tests.client.conftest import model_bytes
from tests.client.tab_support import REQUEST, build, cells, connect

WAIT_S = 30.0


class Progress:
    """Stands in for gr.Progress: records every (fraction, description) reported."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, fraction: float, desc: str | None = None) -> None:
        self.calls.append((fraction, desc or ""))


def _write(path: Path, name: str | None = None) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = model_bytes(name or path.name)
    path.write_bytes(data)
    return data


def _short(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:10]


def _kib(data: bytes) -> str:
    return f"{len(data) / 1024:.1f} KiB"


def _table(tab) -> list[list[str]]:
    return cells(tab.models.on_refresh(PageState(), REQUEST)[tab.models.table])


@pytest.fixture
def models_root(tmp_path: Path) -> Path:
    """A models folder like A1111's, with files in sub-folders and files that are no models."""
    root = tmp_path / "models"
    _write(root / "Lora" / "a.safetensors")
    _write(root / "Lora" / "sub" / "deeper" / "b.safetensors")
    _write(root / "Lora" / "notes.txt")
    _write(root / "Lora" / ".cache" / "c.safetensors")
    _write(root / "VAE" / "v.vae.pt")
    return root


@pytest.fixture
def folder_tab(ui_context, models_root: Path):
    return build(dataclasses.replace(ui_context, model_dirs=lambda: folder_layout(models_root)))


def test_the_folder_list_holds_the_type_s_model_files_in_sub_folders_too(
    server, folder_tab, models_root
):
    shown = connect(folder_tab, server)
    u = folder_tab.uploads
    assert shown[u.folder_files]["choices"] == []  # Stable-diffusion, the first type: empty
    assert "0 model files" in shown[u.folder_where]

    listed = u.on_folder_type("Lora")

    assert listed[u.folder_files]["choices"] == ["a.safetensors", "sub/deeper/b.safetensors"]
    assert f"2 model files in {models_root / 'Lora'}." in listed[u.folder_where]
    assert u.on_folder_type("VAE")[u.folder_files]["choices"] == ["v.vae.pt"]


def test_refresh_finds_new_files_and_keeps_the_picks_that_still_exist(
    server, folder_tab, models_root
):
    connect(folder_tab, server)
    u = folder_tab.uploads
    _write(models_root / "Lora" / "new.ckpt")
    (models_root / "Lora" / "a.safetensors").unlink()

    updates = u.on_folder_refresh("Lora", ["a.safetensors", "sub/deeper/b.safetensors"])

    assert updates[u.folder_files]["choices"] == ["new.ckpt", "sub/deeper/b.safetensors"]
    assert updates[u.folder_files]["value"] == ["sub/deeper/b.safetensors"]


def test_a_file_from_a_sub_folder_is_uploaded_and_shown_active(server, folder_tab, models_root):
    data = (models_root / "Lora" / "sub" / "deeper" / "b.safetensors").read_bytes()
    connect(folder_tab, server)
    progress = Progress()

    updates = folder_tab.uploads.on_upload_folder_files(
        "Lora", ["sub/deeper/b.safetensors"], True, REQUEST, progress
    )

    results = updates[folder_tab.uploads.results]
    assert "<b>b.safetensors</b>" in results
    assert '<span class="sagemaker-success">Active</span>' in results
    assert f"hash {_short(data)}" in results
    assert "1 active." in results
    assert progress.calls, "no progress was reported"
    assert all(desc.startswith("File 1 of 1: b.safetensors — ") for _, desc in progress.calls)
    assert progress.calls[-1] == (1.0, progress.calls[-1][1])
    row = _table(folder_tab)[0]
    assert row[:5] == ["b.safetensors", "Lora", _kib(data), _short(data), "Active"]


def test_a_file_already_in_the_cloud_is_skipped_as_a_duplicate(server, folder_tab, models_root):
    connect(folder_tab, server)
    u = folder_tab.uploads
    u.on_upload_folder_files("Lora", ["a.safetensors"], True, REQUEST, Progress())
    (models_root / "Lora" / "copy.safetensors").write_bytes(
        (models_root / "Lora" / "a.safetensors").read_bytes()
    )

    updates = u.on_upload_folder_files("Lora", ["copy.safetensors"], True, REQUEST, Progress())

    results = updates[u.results]
    assert '<span class="sagemaker-notice">Skipped: duplicate</span>' in results
    assert "in the cloud already, as a.safetensors (Lora)" in results
    assert server.model_names() == ["a.safetensors"]


def test_each_file_gets_its_outcome_in_words(server, folder_tab, models_root):
    server.add_model(models_root.parent, "a.safetensors", "Lora")  # other bytes, same name
    connect(folder_tab, server)
    progress = Progress()

    updates = folder_tab.uploads.on_upload_folder_files(
        "Lora",
        ["a.safetensors", "sub/deeper/b.safetensors", "../VAE/v.vae.pt"],
        True,
        REQUEST,
        progress,
    )

    results = updates[folder_tab.uploads.results]
    assert "<b>../VAE/v.vae.pt</b>: " in results
    assert "no longer in the folder: click Refresh list" in results
    assert "<b>a.safetensors</b>: " in results
    assert "A Lora model named &#x27;a.safetensors&#x27; already exists" in results
    assert "<b>b.safetensors</b>: " in results
    assert "1 active, 2 failed." in results
    assert {desc.split(" — ")[0] for _, desc in progress.calls} >= {"File 2 of 2: b.safetensors"}
    assert sorted(server.model_names()) == ["a.safetensors", "b.safetensors"]


def test_nothing_picked_is_said_in_words(server, folder_tab):
    connect(folder_tab, server)

    updates = folder_tab.uploads.on_upload_folder_files("Lora", [], True, REQUEST, Progress())

    assert "Pick the files to upload first." in updates[folder_tab.uploads.results]


def test_files_from_the_computer_are_uploaded_and_the_field_emptied(server, tab, tmp_path):
    first = tmp_path / "upload-a" / "mine.safetensors"
    second = tmp_path / "upload-b" / "yours.ckpt"
    data = _write(first), _write(second)
    connect(tab, server)
    # gradio 3.41 hands over temporary-file objects named by their path, gradio 4 paths.
    given = [SimpleNamespace(name=str(first)), str(second)]

    updates = tab.uploads.on_upload_computer_files("VAE", given, False, REQUEST, Progress())

    assert "2 active." in updates[tab.uploads.results]
    assert updates[tab.uploads.computer_files] is None
    rows = {row[0]: row for row in _table(tab)}
    assert rows["mine.safetensors"][1:5] == ["VAE", _kib(data[0]), _short(data[0]), "Active"]
    assert rows["yours.ckpt"][3] == _short(data[1])


def test_a_failed_file_from_the_computer_stays_in_the_field_to_try_again(server, tab, tmp_path):
    empty = tmp_path / "upload" / "empty.safetensors"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    connect(tab, server)

    updates = tab.uploads.on_upload_computer_files("Lora", [str(empty)], True, REQUEST, Progress())

    assert "empty.safetensors is empty" in updates[tab.uploads.results]
    assert tab.uploads.computer_files not in updates


def test_a_session_ended_elsewhere_stops_the_uploads_and_signs_out_here(
    server, tab, tmp_path, ui_context
):
    paths = [tmp_path / "one.safetensors", tmp_path / "two.safetensors"]
    for path in paths:
        _write(path)
    connect(tab, server)
    server.sign_out_elsewhere(server.login)

    updates = tab.uploads.on_upload_computer_files(
        "Lora", [str(p) for p in paths], True, REQUEST, Progress()
    )

    results = updates[tab.uploads.results]
    assert "<b>one.safetensors</b>: " in results
    assert "sign in again" in results
    assert "<b>two.safetensors</b>: " in results
    assert "not sent: sign in again first" in results
    assert ui_context.store.user_session("") is None
    assert server.model_names() == []


def test_uploads_need_a_session(tab, tmp_path):
    path = tmp_path / "x.safetensors"
    _write(path)

    updates = tab.uploads.on_upload_computer_files("Lora", [str(path)], True, REQUEST, Progress())

    assert "No API is configured yet" in updates[tab.uploads.results]


# -- imports by URL ---------------------------------------------------------------------------


class ModelServer:
    """Serves files on 127.0.0.1; `hold` keeps a download half sent until it is set."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hold = threading.Event()
        self.held = False
        files, hold = self.files, self.hold
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                half = len(body) // 2
                self.wfile.write(body[:half])
                self.wfile.flush()
                if outer.held:
                    hold.wait(WAIT_S)
                self.wfile.write(body[half:])

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    served = ModelServer()
    served.thread.start()
    try:
        yield served
    finally:
        served.hold.set()
        served.httpd.shutdown()
        served.httpd.server_close()


def _wait_for(server, model_id: str, done) -> dict:
    deadline = time.monotonic() + WAIT_S
    while True:
        model = server.model(model_id)
        if done(model):
            return model
        assert time.monotonic() < deadline, f"still {model['status']} after {WAIT_S} s"
        time.sleep(0.1)


def _model_id(server, name: str) -> str:
    return next(m["id"] for m in server.admin.list_checkpoints(name=name).items)


def test_urls_are_imported_and_the_table_follows_their_progress(server, tab, model_server):
    data = model_bytes("far.safetensors")
    model_server.files["models/far.safetensors"] = data
    model_server.held = True
    connect(tab, server)

    updates = tab.uploads.on_import(
        "Lora", f"\n  {model_server.url('models/far.safetensors')}  \n\n", REQUEST
    )

    assert "<b>far.safetensors</b>: " in updates[tab.uploads.results]
    assert '<span class="sagemaker-notice">Importing</span>' in updates[tab.uploads.results]
    assert updates[tab.uploads.urls] == ""
    model_id = _model_id(server, "far.safetensors")
    _wait_for(server, model_id, lambda m: (m["progress"] or {}).get("bytes_total") == len(data))
    assert _table(tab)[0][4] == "Importing 0%"

    model_server.hold.set()
    _wait_for(server, model_id, lambda m: m["status"] != "Importing")
    assert _table(tab)[0][:5] == ["far.safetensors", "Lora", _kib(data), _short(data), "Active"]


def test_refused_urls_stay_in_the_field_with_the_reason(server, tab, model_server):
    model_server.files["ok.safetensors"] = model_bytes("ok.safetensors")
    connect(tab, server)
    text = f"ftp://example.com/x.safetensors\n{model_server.url('ok.safetensors')}"

    updates = tab.uploads.on_import("VAE", text, REQUEST)

    results = updates[tab.uploads.results]
    assert "<b>ftp://example.com/x.safetensors</b>: " in results
    assert '<span class="sagemaker-error">Failed</span>' in results
    assert "Only http and https URLs can be imported" in results
    assert "1 failed, 1 importing." in results
    assert updates[tab.uploads.urls] == "ftp://example.com/x.safetensors"
    _wait_for(server, _model_id(server, "ok.safetensors"), lambda m: m["status"] == "Active")


def test_no_urls_is_said_in_words(server, tab):
    connect(tab, server)

    updates = tab.uploads.on_import("Lora", " \n ", REQUEST)

    assert "Enter the URLs to import, one per line." in updates[tab.uploads.results]
