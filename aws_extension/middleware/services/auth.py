"""Sign-in, tokens and the caller's own account.

Sign-in gives the same answer after the same work whether the username is unknown or the
password wrong (a dummy hash is verified for unknown names), and counts failures per
username in the records (see `security.throttle`). Every token carries the user's token
epoch; sign-out and password changes replace it, and deleting the user removes it, which
revokes all of that user's tokens at once on every instance.
"""

from __future__ import annotations

from aws_extension.middleware.errors import Invalid, InvalidToken, WrongCredentials
from aws_extension.middleware.records import Item, Records, VersionConflict
from aws_extension.middleware.security.passwords import PasswordHasher
from aws_extension.middleware.security.throttle import LoginThrottle
from aws_extension.middleware.security.tokens import TokenKind, TokenSigner
from aws_extension.middleware.services.access import Access
from aws_extension.middleware.services.entities import USER, Principal, Session, User
from aws_extension.middleware.services.users import UserService, new_epoch

REVOKED = "The token has been revoked; sign in again."


class AuthService:
    def __init__(
        self,
        records: Records,
        access: Access,
        users: UserService,
        hasher: PasswordHasher,
        signer: TokenSigner,
        throttle: LoginThrottle,
    ) -> None:
        self._records = records
        self._access = access
        self._users = users
        self._hasher = hasher
        self._signer = signer
        self._throttle = throttle

    def login(self, username: str, password: str) -> Session:
        self._throttle.check(username)
        item = self._records.get(USER, username)
        stored = item.doc["password_hash"] if item is not None else None
        # Verify before looking at `item`: an unknown name must cost the same scrypt work.
        verified = self._hasher.verify(password, stored)
        if item is None or not verified:
            self._throttle.record_failure(username)
            raise WrongCredentials("Wrong username or password.")
        self._throttle.reset(username)
        item = self._upgrade_hash(item, password)
        return self._session(item, self._signer.issue(item.key, "refresh", _epoch(item)))

    def refresh(self, refresh_token: str) -> Session:
        item = self._holder(refresh_token, "refresh")
        # The refresh token stays the same: it is bound to the epoch, not to one use.
        return self._session(item, refresh_token)

    def authenticate(self, access_token: str) -> Principal:
        return self._access.principal(self._holder(access_token, "access"))

    def me(self, caller: Principal) -> User:
        return self._users.get(caller.username)

    def logout(self, caller: Principal) -> None:
        item = self._users.item(caller.username)
        self._records.update(
            USER, item.key, {**item.doc, "token_epoch": new_epoch()}, expected_version=item.version
        )

    def change_password(self, caller: Principal, current: str, new: str) -> Session:
        """Needs the current password even with a valid token: a stolen token alone must
        not be enough to take the account over. Wrong guesses count like failed sign-ins."""
        self._throttle.check(caller.username)
        item = self._users.item(caller.username)
        if not self._hasher.verify(current, item.doc["password_hash"]):
            self._throttle.record_failure(caller.username)
            raise Invalid("The current password is wrong.")
        self._throttle.reset(caller.username)
        doc = {
            **item.doc,
            "password_hash": self._hasher.hash(new),
            "token_epoch": new_epoch(),
        }
        item = self._records.update(USER, item.key, doc, expected_version=item.version)
        return self._session(item, self._signer.issue(item.key, "refresh", _epoch(item)))

    def _holder(self, token: str, kind: TokenKind) -> Item:
        """The user record a genuine, unrevoked token of `kind` belongs to."""
        claims = self._signer.verify(token, kind)
        item = self._records.get(USER, claims.subject)
        if item is None or item.doc["token_epoch"] != claims.epoch:
            raise InvalidToken(REVOKED)
        return item

    def _session(self, item: Item, refresh_token: str) -> Session:
        return Session(
            access_token=self._signer.issue(item.key, "access", _epoch(item)),
            refresh_token=refresh_token,
            expires_in=self._signer.ttl("access"),
            user=self._users.view(item),
        )

    def _upgrade_hash(self, item: Item, password: str) -> Item:
        """Re-hash with the current scrypt cost after the deployment raised it."""
        if not self._hasher.needs_rehash(item.doc["password_hash"]):
            return item
        doc = {**item.doc, "password_hash": self._hasher.hash(password)}
        try:
            return self._records.update(USER, item.key, doc, expected_version=item.version)
        except VersionConflict:
            return item  # someone changed the user meanwhile; upgrade on a later sign-in


def _epoch(item: Item) -> str:
    return str(item.doc["token_epoch"])
