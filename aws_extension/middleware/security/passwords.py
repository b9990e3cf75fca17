"""Password hashing with scrypt from the standard library.

The stored form names its parameters (`scrypt$n=16384,r=8,p=1$<salt>$<hash>`), so the
cost can be raised later: old hashes still verify with the parameters they were made with,
and `needs_rehash` tells sign-in to upgrade them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "scrypt"
_SALT_BYTES = 16
_HASH_BYTES = 32


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost. The default takes about 50 ms and 16 MiB on a current CPU core."""

    n: int = 2**14
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if self.n < 2 or self.n & (self.n - 1) or self.r < 1 or self.p < 1:
            raise ValueError("scrypt needs n a power of two >= 2, r >= 1 and p >= 1")

    def encode(self) -> str:
        return f"n={self.n},r={self.r},p={self.p}"

    @classmethod
    def decode(cls, text: str) -> ScryptParams:
        values = dict(part.split("=", 1) for part in text.split(","))
        return cls(n=int(values["n"]), r=int(values["r"]), p=int(values["p"]))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=params.n,
        r=params.r,
        p=params.p,
        # OpenSSL refuses to use more than 32 MiB unless told; allow what the params need.
        maxmem=256 * params.n * params.r * params.p + 2**20,
        dklen=_HASH_BYTES,
    )


class PasswordHasher:
    def __init__(self, params: ScryptParams | None = None) -> None:
        self.params = params or ScryptParams()
        # Verified against when the username does not exist, so that answer costs the same
        # scrypt work as a wrong password and timing cannot tell the two apart.
        self._dummy = self.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        salt = secrets.token_bytes(_SALT_BYTES)
        digest = _scrypt(password, salt, self.params)
        return f"{PREFIX}${self.params.encode()}${_b64(salt)}${_b64(digest)}"

    def verify(self, password: str, encoded: str | None) -> bool:
        """Whether `password` matches `encoded`; with None, does the same work and says no."""
        if encoded is None:
            self.verify(password, self._dummy)
            return False
        try:
            prefix, params_text, salt_text, digest_text = encoded.split("$")
            if prefix != PREFIX:
                return False
            params = ScryptParams.decode(params_text)
            salt, expected = _unb64(salt_text), _unb64(digest_text)
        except (ValueError, KeyError):
            return False
        return hmac.compare_digest(_scrypt(password, salt, params), expected)

    def needs_rehash(self, encoded: str) -> bool:
        """True when `encoded` was made with other parameters than the current ones."""
        parts = encoded.split("$")
        return len(parts) != 4 or parts[0] != PREFIX or parts[1] != self.params.encode()
