"""The extension's `javascript/*.js` in the standalone app's page, as A1111 puts them in its own.

A1111 adds a `<script>` tag for every `javascript/*.js` of every extension to the head of the
HTML page it serves. The standalone app gets the same from `PageScripts`, an ASGI middleware
handed to gradio's `launch(app_kwargs={"middleware": [...]})` (gradio 3.41 and 4.x pass
`app_kwargs` to FastAPI), so nothing of gradio is patched. It serves the files under `ROUTE`
and inserts their tags before `</head>` of the page at `/`; every other request passes
through untouched. The files are read at each request, so an edited script shows on reload.

The same rewrite drops what gradio's page would fetch from outside: the iframe-resizer script
from cdnjs (for pages embedded in Hugging Face Spaces) and the preconnects to Google Fonts
(the theme uses local fonts). The standalone app needs neither, and nothing leaves the machine.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse, Response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The extension's folder of scripts (next to style.css).
JAVASCRIPT_DIR = Path(__file__).resolve().parents[2] / "javascript"
#: Where the page finds them; no gradio route starts like this.
ROUTE = "/sagemaker-extension/javascript/"
#: Tags of gradio's page that reach outside the machine (scripts and links to http(s) URLs).
EXTERNAL_TAGS = re.compile(
    rb'<script\b[^>]*\bsrc="https?://[^"]*"[^>]*>\s*</script>\s*'
    rb'|<link\b[^>]*\bhref="https?://[^"]*"[^>]*>\s*',
    re.IGNORECASE,
)


def middleware(folder: Path = JAVASCRIPT_DIR) -> Middleware:
    """The entry for `app_kwargs["middleware"]`."""
    return Middleware(PageScripts, folder=folder)


class PageScripts:
    """ASGI middleware: serves `folder`'s scripts and adds their tags to the page at `/`."""

    def __init__(self, app: ASGIApp, folder: Path = JAVASCRIPT_DIR) -> None:
        self.app = app
        self.folder = folder

    def scripts(self) -> dict[str, Path]:
        """The scripts by file name, in the order A1111 loads them (sorted by name)."""
        if not self.folder.is_dir():
            return {}
        return {path.name: path for path in sorted(self.folder.glob("*.js")) if path.is_file()}

    def tags(self) -> str:
        """The `<script>` tags; relative URLs, so a proxy's path prefix is kept."""
        return "".join(
            f'<script type="text/javascript" src="{ROUTE[1:]}{quote(name)}'
            f'?{path.stat().st_mtime_ns}"></script>\n'
            for name, path in self.scripts().items()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
        elif scope["path"].startswith(ROUTE):
            await self._script(scope["path"][len(ROUTE) :])(scope, receive, send)
        elif scope["path"] == "/" and scope["method"] == "GET":
            await self.app(scope, receive, _PageRewriter(send, self.tags()))
        else:
            await self.app(scope, receive, send)

    def _script(self, name: str) -> Response:
        path = self.scripts().get(name)  # only a listed name: no way out of the folder
        if path is None:
            return PlainTextResponse("Not Found", status_code=404)
        return Response(
            path.read_bytes(),
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache"},
        )


class _PageRewriter:
    """A `send` that puts `tags` before `</head>` of an HTML reply and drops the tags that
    reach outside; other replies pass unchanged."""

    def __init__(self, send: Send, tags: str) -> None:
        self._send = send
        self._tags = tags.encode()
        self._start: Message | None = None
        self._body: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(raw=list(message.get("headers", [])))
            html = headers.get("content-type", "").startswith("text/html")
            if html and "content-encoding" not in headers:
                self._start = {**message, "headers": headers.raw}
                return
        elif message["type"] == "http.response.body" and self._start is not None:
            self._body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await self._send_page(b"".join(self._body))
            return
        await self._send(message)

    async def _send_page(self, page: bytes) -> None:
        assert self._start is not None
        page = EXTERNAL_TAGS.sub(b"", page)
        at = page.lower().rfind(b"</head>")
        if at >= 0:
            page = page[:at] + self._tags + page[at:]
        headers = MutableHeaders(raw=self._start["headers"])
        headers["content-length"] = str(len(page))
        await self._send({**self._start, "headers": headers.raw})
        await self._send({"type": "http.response.body", "body": page, "more_body": False})
