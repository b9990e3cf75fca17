"""The local stack's stand-in for S3's presigned URLs: the routes `FolderBlobs` signs URLs for.

They take no API key or token: like S3, the signature in the URL is the credential. Errors
are problem details with a `code` (`invalid_signature`, `url_expired`, `not_found`,
`too_large`), answered here so the router works in any app.

Served with `folder_part_protocol.part_put_protocol(blobs)` as uvicorn's protocol (as the
local stack does), ordinary part PUTs never reach the PUT route here: worker threads receive
them much more cheaply. The route stays for the PUTs that protocol leaves alone (chunked
bodies, `Expect`, HTTP/1.0) and for servers run without it; both answer alike.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from aws_extension.middleware.blobs.base import MIB
from aws_extension.middleware.blobs.folder import FolderBlobs, PartWriter
from aws_extension.middleware.errors import DomainError, domain_error_response

#: Bytes gathered from the request before one write in a worker thread: few thread hops,
#: little memory.
_WRITE_BATCH = MIB


async def _receive_part(request: Request, writer: PartWriter) -> str:
    """Stream the body to the writer in batches; never holds more than a batch in memory."""
    batch = bytearray()
    async for chunk in request.stream():
        batch += chunk
        if len(batch) >= _WRITE_BATCH:
            await run_in_threadpool(writer.write, batch)
            batch = bytearray()
    if batch:
        await run_in_threadpool(writer.write, batch)
    return await run_in_threadpool(writer.commit)


def _announced_length(request: Request) -> int | None:
    """The body's length if the request says it up front (a Content-Length, not chunked)."""
    if "transfer-encoding" in request.headers:
        return None
    length = request.headers.get("content-length", "")
    return int(length) if length.isascii() and length.isdigit() else None


def make_blob_router(blobs: FolderBlobs) -> APIRouter:
    """`PUT /blobs/parts/{upload_id}/{part_number}` and `GET /blobs/objects`, for `blobs`.

    Mount it at the root of the app whose address `blobs` was given as `base_url`.
    """
    router = APIRouter(include_in_schema=False)

    @router.put("/blobs/parts/{upload_id}/{part_number}")
    async def put_part(
        request: Request,
        upload_id: str,
        part_number: str,
        key: str = "",
        expires: str = "",
        sig: str = "",
    ) -> Response:
        try:
            number = blobs.verify_part_url(key, upload_id, part_number, expires=expires, sig=sig)
            writer = await run_in_threadpool(
                blobs.open_part_writer, key, upload_id, number, size=_announced_length(request)
            )
        except DomainError as error:
            # uvicorn reads and drops the unread body, so the client gets to read this.
            return domain_error_response(error)
        try:
            etag = await _receive_part(request, writer)
        except DomainError as error:
            await run_in_threadpool(writer.discard)
            return domain_error_response(error)
        except ClientDisconnect:
            # Nobody is left to answer; an interrupted part is routine, not a server error.
            await run_in_threadpool(writer.discard)
            return Response(status_code=499)
        except BaseException:
            await run_in_threadpool(writer.discard)
            raise
        return Response(status_code=200, headers={"ETag": etag})

    @router.get("/blobs/objects")
    def get_object(key: str = "", expires: str = "", sig: str = "") -> Response:
        try:
            blobs.verify_download_url(key, expires=expires, sig=sig)
            path = blobs.object_file(key)
        except DomainError as error:
            return domain_error_response(error)
        # FileResponse streams the file and answers Range requests with 206.
        return FileResponse(path, media_type="application/octet-stream")

    return router
