"""Upload models: from the WebUI's model folders, from the user's computer, or by URL.

Files go through the resumable uploader (`client.uploader`), one after the other, parts in
parallel; gradio's progress bar follows each file and a list says what became of each
(Active, skipped as a duplicate, or failed and why). URLs are handed to the server, which
downloads them itself; the table then shows them `Importing` with their progress. Shown only
to model managers (`checkpoint:all`).

A file from the user's computer reaches the WebUI first (gradio stores it in its temporary
folder) and is uploaded to the cloud from there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from aws_extension.client.api import ApiClient
from aws_extension.client.errors import ApiError
from aws_extension.client.uploader import SKIPPED, Uploader, UploadResult
from aws_extension.contract import MODEL_TYPES, PERMISSION_CHECKPOINT
from aws_extension.ui import upload_report
from aws_extension.ui.context import UiContext
from aws_extension.ui.feedback import UiError, escape, failure, notice
from aws_extension.ui.model_files import MAX_FILES, MODEL_SUFFIXES, LocalFiles, local_files
from aws_extension.ui.sessions import UserSessions, session_ended
from aws_extension.ui.tables import short_hash, size_words
from aws_extension.ui.upload_report import FileProgress, Outcome, outcome_list
from aws_extension.ui.views import Updates

#: (path, model name) of each file to upload.
Files = list[tuple[Path, str]]


def uploaded_paths(value: Any) -> list[Path]:
    """The paths of what gr.File(file_count="multiple") hands over, in both gradios.

    gradio 4 gives paths; 3.41 gives temporary-file objects whose `name` is the path. Either
    way the file keeps the name it had on the user's computer, less what gradio drops from
    it (characters other than letters, digits and `._- `); the model is named so.
    """
    if not value:
        return []
    items = value if isinstance(value, list) else [value]
    return [Path(getattr(item, "name", item)) for item in items]


class ModelUploads:
    """The upload part of the Cloud Models Management sub-tab."""

    def __init__(self, context: UiContext, sessions: UserSessions) -> None:
        self._context = context
        self._sessions = sessions

    def build(self) -> None:
        type_choice = {"choices": list(MODEL_TYPES), "value": MODEL_TYPES[0], "label": "Type"}
        with gr.Column(visible=False, elem_id="sagemaker_models_upload_panel") as self.panel:
            gr.Markdown("### Upload models")
            self.skip_duplicates = gr.Checkbox(
                value=True,
                label="Skip files already in the cloud (each file is read once more, to hash "
                "it, before anything is sent)",
                elem_id="sagemaker_models_skip_duplicates",
            )
            with gr.Tabs(elem_id="sagemaker_models_upload_tabs"):
                with gr.Tab(
                    "From the WebUI's model folders", elem_id="sagemaker_models_folder_tab"
                ):
                    with gr.Row(elem_classes="sagemaker-pager"):
                        self.folder_type = gr.Dropdown(
                            **type_choice, elem_id="sagemaker_models_folder_type"
                        )
                        self.folder_refresh = gr.Button(
                            "Refresh list",
                            size="sm",
                            scale=0,
                            min_width=130,
                            elem_id="sagemaker_models_folder_refresh",
                        )
                    self.folder_files = gr.Dropdown(
                        choices=[],
                        value=[],
                        multiselect=True,
                        label="Files (sub-folders included)",
                        elem_id="sagemaker_models_folder_files",
                    )
                    self.folder_where = gr.HTML(elem_id="sagemaker_models_folder_where")
                    self.folder_upload = gr.Button(
                        "Upload selected files",
                        variant="primary",
                        elem_id="sagemaker_models_folder_upload",
                    )
                with gr.Tab("From this computer", elem_id="sagemaker_models_computer_tab"):
                    self.computer_type = gr.Dropdown(
                        **type_choice, elem_id="sagemaker_models_computer_type"
                    )
                    self.computer_files = gr.File(
                        file_count="multiple",
                        file_types=list(MODEL_SUFFIXES),
                        label="Model files",
                        elem_id="sagemaker_models_computer_files",
                    )
                    self.computer_upload = gr.Button(
                        "Upload files",
                        variant="primary",
                        elem_id="sagemaker_models_computer_upload",
                    )
                with gr.Tab("By URL", elem_id="sagemaker_models_url_tab"):
                    self.url_type = gr.Dropdown(**type_choice, elem_id="sagemaker_models_url_type")
                    self.urls = gr.Textbox(
                        lines=4,
                        label="URLs, one per line (http or https; the server downloads them)",
                        placeholder="https://example.com/models/model.safetensors",
                        elem_id="sagemaker_models_urls",
                    )
                    self.url_import = gr.Button(
                        "Import", variant="primary", elem_id="sagemaker_models_url_import"
                    )
            self.results = gr.HTML(elem_id="sagemaker_models_upload_results")
        self._wire()

    def _wire(self) -> None:
        folder_list = [self.folder_files, self.folder_where]
        self.folder_type.input(self.on_folder_type, inputs=[self.folder_type], outputs=folder_list)
        self.folder_refresh.click(
            self.on_folder_refresh,
            inputs=[self.folder_type, self.folder_files],
            outputs=folder_list,
        )
        self.changes = [
            self.folder_upload.click(
                self.on_upload_folder_files,
                inputs=[self.folder_type, self.folder_files, self.skip_duplicates],
                outputs=[self.results],
            ),
            self.computer_upload.click(
                self.on_upload_computer_files,
                inputs=[self.computer_type, self.computer_files, self.skip_duplicates],
                outputs=[self.results, self.computer_files],
            ),
            self.url_import.click(
                self.on_import, inputs=[self.url_type, self.urls], outputs=[self.results, self.urls]
            ),
        ]

    # -- the session view --------------------------------------------------------------------

    @property
    def view_outputs(self) -> list[Any]:
        return [
            self.panel,
            self.folder_type,
            self.folder_files,
            self.folder_where,
            self.computer_files,
            self.urls,
            self.results,
        ]

    def show(self, client: ApiClient) -> Updates:
        if PERMISSION_CHECKPOINT not in client.permissions:
            return self.hide()
        return {
            self.panel: gr.update(visible=True),
            self.folder_type: MODEL_TYPES[0],
            **self._folder_choices(MODEL_TYPES[0], ()),
            self.results: "",
        }

    def hide(self) -> Updates:
        return {
            self.panel: gr.update(visible=False),
            self.folder_files: gr.update(choices=[], value=[]),
            self.folder_where: "",
            self.computer_files: None,
            self.urls: "",
            self.results: "",
        }

    # -- the folders' file list --------------------------------------------------------------

    def on_folder_type(self, model_type: str) -> Updates:
        return self._folder_choices(model_type, ())

    def on_folder_refresh(self, model_type: str, chosen: list[str]) -> Updates:
        """List again (files were added or removed), keeping the picks that still exist."""
        return self._folder_choices(model_type, chosen or ())

    def _folder_choices(self, model_type: str, keep: Sequence[str]) -> Updates:
        listing = local_files(self._context.model_dirs, model_type)
        labels = list(listing.files)
        return {
            self.folder_files: gr.update(
                choices=labels, value=[label for label in keep if label in listing.files]
            ),
            self.folder_where: _where(model_type, listing),
        }

    # -- uploads -----------------------------------------------------------------------------

    def on_upload_folder_files(
        self,
        model_type: str,
        chosen: list[str],
        skip_duplicates: bool,
        request: gr.Request,
        progress: Any = gr.Progress(),  # noqa: B008 - gradio's marker for "report progress"
    ) -> Updates:
        """Upload the picked files, found by listing the folders again: only what the list
        holds can be sent, whatever the page sends."""
        listing = local_files(self._context.model_dirs, model_type)
        gone = [
            Outcome(label, upload_report.FAILED, "no longer in the folder: click Refresh list")
            for label in chosen or ()
            if label not in listing.files
        ]
        files = [
            (listing.files[label], Path(label).name)
            for label in chosen or ()
            if label in listing.files
        ]
        if not files and not gone:
            return {self.results: failure(UiError("Pick the files to upload first."))}
        outcomes = gone + self._upload(request, model_type, files, skip_duplicates, progress)
        return {self.results: outcome_list(outcomes)}

    def on_upload_computer_files(
        self,
        model_type: str,
        uploaded: Any,
        skip_duplicates: bool,
        request: gr.Request,
        progress: Any = gr.Progress(),  # noqa: B008 - gradio's marker for "report progress"
    ) -> Updates:
        """Upload what the user dropped in; the field is emptied when all of it went well,
        and kept after a failure, so trying again resumes."""
        files = [(path, path.name) for path in uploaded_paths(uploaded)]
        if not files:
            return {
                self.results: failure(
                    UiError(
                        "No file has reached the WebUI yet: choose the files, wait until each "
                        "shows its size, then click Upload files."
                    )
                )
            }
        outcomes = self._upload(request, model_type, files, skip_duplicates, progress)
        updates: Updates = {self.results: outcome_list(outcomes)}
        if all(o.kind != upload_report.FAILED for o in outcomes):
            updates[self.computer_files] = None
        return updates

    def _upload(
        self,
        request: gr.Request,
        model_type: str,
        files: Files,
        skip_duplicates: bool,
        progress: Callable[..., Any],
    ) -> list[Outcome]:
        """Upload `files` one after the other; what became of each, failures in words."""
        user = self._context.webui_user(request)
        try:
            client = self._sessions.client(user)
        except (ApiError, UiError) as exc:
            self._sessions.note_failure(user, exc)
            return [Outcome(name, upload_report.FAILED, str(exc)) for _, name in files]
        outcomes: list[Outcome] = []
        with Uploader(
            client, self._context.upload_state_dir, hash_first=bool(skip_duplicates)
        ) as uploader:
            for index, (path, name) in enumerate(files, 1):
                report = FileProgress(progress, index, len(files))
                try:
                    result = uploader.upload(path, model_type, name=name, on_progress=report)
                except ApiError as exc:
                    self._sessions.note_failure(user, exc)
                    outcomes.append(Outcome(name, upload_report.FAILED, str(exc)))
                    if session_ended(exc):
                        outcomes += [
                            Outcome(rest, upload_report.FAILED, "not sent: sign in again first")
                            for _, rest in files[index:]
                        ]
                        break
                else:
                    outcomes.append(_outcome(client, result))
        return outcomes

    # -- imports -----------------------------------------------------------------------------

    def on_import(self, model_type: str, text: str, request: gr.Request) -> Updates:
        """Start a server-side download per URL; the refused URLs stay in the field, to fix."""
        urls = [line.strip() for line in (text or "").splitlines() if line.strip()]
        if not urls:
            return {self.results: failure(UiError("Enter the URLs to import, one per line."))}
        user = self._context.webui_user(request)
        try:
            client = self._sessions.client(user)
        except (ApiError, UiError) as exc:
            self._sessions.note_failure(user, exc)
            return {self.results: failure(exc)}
        outcomes: list[Outcome] = []
        refused: list[str] = []
        for url in urls:
            try:
                model = client.import_checkpoint(url, model_type)
            except ApiError as exc:
                self._sessions.note_failure(user, exc)
                outcomes.append(Outcome(url, upload_report.FAILED, str(exc)))
                refused.append(url)
            else:
                outcomes.append(
                    Outcome(
                        str(model.get("name", url)),
                        upload_report.IMPORTING,
                        "the server downloads it; click Refresh below the table to follow it",
                    )
                )
        return {self.results: outcome_list(outcomes), self.urls: "\n".join(refused)}


def _outcome(client: ApiClient, result: UploadResult) -> Outcome:
    if result.outcome == SKIPPED:
        return Outcome(
            result.name,
            upload_report.SKIPPED,
            f"the same file is in the cloud already, as {_model_name(client, result)}",
        )
    words = f"hash {short_hash(result.sha256)}, {size_words(result.size)} in {result.seconds:.1f} s"
    if result.reused_parts:
        words += f", resumed ({result.reused_parts} parts were sent by an earlier try)"
    return Outcome(result.name, upload_report.ACTIVE, words)


def _model_name(client: ApiClient, result: UploadResult) -> str:
    """The name of the model a skipped file duplicates (its id if it cannot be read)."""
    existing = result.checkpoint_id or "another model"
    if result.checkpoint_id is None:
        return existing
    try:
        model = client.get_checkpoint(result.checkpoint_id)
    except ApiError:
        return existing
    return f"{model.get('name', existing)} ({model.get('type', result.type)})"


def _where(model_type: str, listing: LocalFiles) -> str:
    """Which folders were searched, so a missing file can be explained."""
    if not listing.folders:
        return notice(
            f"No folder is known for {escape(model_type)} models here (the standalone app "
            "takes them from --models-dir)."
        )
    folders = ", ".join(
        escape(str(folder)) + ("" if folder.is_dir() else " (missing)")
        for folder in listing.folders
    )
    count = len(listing.files)
    more = f" (only the first {MAX_FILES} are listed)" if listing.truncated else ""
    files = "1 model file" if count == 1 else f"{count} model files"
    return f'<span class="sagemaker-hint">{files} in {folders}{more}.</span>'
