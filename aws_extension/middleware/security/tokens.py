"""Access and refresh tokens: HS256 JWTs signed with the deployment's secret.

Claims: `sub` (username), `typ` (access | refresh), `ep` (the user's token epoch at issue
time), `iat`, `exp`, `iss`. A token is only as good as its `ep`: the services compare it with
the user record on every use, so replacing the record's epoch revokes every token at once.
Expiry is checked against the injected clock rather than PyJWT's wall clock, so tests can
move time instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import jwt

from aws_extension.middleware.errors import InvalidToken

TokenKind = Literal["access", "refresh"]
_ALGORITHM = "HS256"
_REQUIRED = ["sub", "typ", "ep", "iat", "exp", "iss"]


@dataclass(frozen=True)
class Claims:
    subject: str
    kind: TokenKind
    epoch: str
    issued_at: int
    expires_at: int


class TokenSigner:
    def __init__(
        self,
        secret: str,
        *,
        issuer: str,
        access_ttl: int,
        refresh_ttl: int,
        clock: Callable[[], float],
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        self._ttl: dict[TokenKind, int] = {"access": access_ttl, "refresh": refresh_ttl}
        self._clock = clock

    def ttl(self, kind: TokenKind) -> int:
        return self._ttl[kind]

    def issue(self, subject: str, kind: TokenKind, epoch: str) -> str:
        now = int(self._clock())
        claims = {
            "sub": subject,
            "typ": kind,
            "ep": epoch,
            "iat": now,
            "exp": now + self._ttl[kind],
            "iss": self._issuer,
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def verify(self, token: str, kind: TokenKind) -> Claims:
        """The claims of a genuine, unexpired token of `kind`; otherwise `InvalidToken`.

        The detail never says which check failed beyond what the holder can see anyway.
        """
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                issuer=self._issuer,
                # exp/iat are checked below against our clock, not PyJWT's.
                options={"require": _REQUIRED, "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise InvalidToken("The token is not valid; sign in again.") from None
        if claims["typ"] != kind:
            raise InvalidToken(f"Wrong kind of token: this route takes the {kind} token.")
        if not (
            isinstance(claims["sub"], str)
            and isinstance(claims["ep"], str)
            and isinstance(claims["exp"], int)
            and isinstance(claims["iat"], int)
        ):
            raise InvalidToken("The token is not valid; sign in again.")
        if self._clock() >= claims["exp"]:
            raise InvalidToken(f"The {kind} token has expired; sign in again.")
        return Claims(claims["sub"], kind, claims["ep"], claims["iat"], claims["exp"])
