"""What the tests of jobs and of the txt2img script share on top of a generating stack
(`generation_support.generating_stack`): a small job, and users of their own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aws_extension.client.api import ApiClient
from tests.client.conftest import OPTIONS, Login, Server
from tests.client.generation_support import Generating, generating_stack

#: The role the stack creates at its first start; the endpoint is open to it only.
ADMIN_ROLE = "admin"
#: A job the tiny model finishes at once: two 64x64 images.
SMALL = {
    "prompt": "a red fox",
    "negative_prompt": "blurry",
    "sampler_name": "Euler a",
    "scheduler": "Automatic",
    "steps": 2,
    "cfg_scale": 7.0,
    "width": 64,
    "height": 64,
    "seed": 1234,
    "batch_size": 2,
    "n_iter": 1,
}


@dataclass(frozen=True)
class Studio:
    """A generating stack whose endpoint only the role `admin` may use, and its users."""

    generating: Generating

    @property
    def stack(self):
        return self.generating.stack

    @property
    def model(self) -> dict:
        return self.generating.model

    @property
    def endpoint(self) -> str:
        return self.generating.endpoint

    def add_user(self, prefix: str, roles: list[str]) -> Login:
        return self._admin_side().add_user(prefix, roles)

    def add_role(self, prefix: str, permissions: list[str]) -> str:
        return self._admin_side().add_role(prefix, permissions)

    def client(self, login: Login) -> ApiClient:
        """A client signed in as `login` (closed by the caller)."""
        client = ApiClient(self.stack.url, self.stack.api_token, options=OPTIONS)
        client.login(login.username, login.password)
        return client

    def _admin_side(self) -> Server:
        stack = self.stack
        return Server(stack, self.generating.admin, stack.username, stack.password)


@contextmanager
def studio(folder: Path) -> Iterator[Studio]:
    with generating_stack(folder, allowed_roles=[ADMIN_ROLE]) as generating:
        yield Studio(generating)
