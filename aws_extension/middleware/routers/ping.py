from __future__ import annotations

from fastapi import APIRouter

from aws_extension.contract import API_VERSION
from aws_extension.middleware.schemas.auth import Pong
from aws_extension.middleware.schemas.common import problems

router = APIRouter(tags=["meta"])


@router.get("/ping", response_model=Pong, responses=problems(403))
def ping() -> Pong:
    """Whether the API URL and API token are right, and which API version answers."""
    return Pong(api_version=API_VERSION)
