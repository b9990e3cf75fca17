"""Per-username sign-in throttle, kept in the records so every Lambda instance sees it.

Policy (docs/architecture.md): the first `free_failures` failures of a username cost
nothing; the n-th failure after them locks the username for 2^(n - free_failures) seconds,
at most `max_lock`. While locked, every attempt gets 429 without the password being looked
at, whether or not the username exists. A success resets the count. Keys are lower-cased so
"Admin" and "admin" share one counter.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

from aws_extension.middleware.errors import NotFound, TooManyAttempts
from aws_extension.middleware.records import AlreadyExists, Records, VersionConflict

KIND = "login_throttle"
#: Optimistic writes retried this often before a burst of concurrent failures is simply
#: answered with "too many attempts".
_WRITE_ATTEMPTS = 5


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int = 3
    max_lock: int = 300

    def lock_seconds(self, failures: int) -> int:
        extra = failures - self.free_failures
        if extra <= 0:
            return 0
        return min(2 ** min(extra, 32), self.max_lock)


class LoginThrottle:
    def __init__(
        self, records: Records, policy: ThrottlePolicy, clock: Callable[[], float]
    ) -> None:
        self._records = records
        self._policy = policy
        self._clock = clock

    def check(self, username: str) -> None:
        """Raise `TooManyAttempts` while `username` is locked."""
        item = self._records.get(KIND, username.lower())
        if item is None:
            return
        remaining = item.doc["locked_until"] - self._clock()
        if remaining > 0:
            raise _locked(math.ceil(remaining))

    def record_failure(self, username: str) -> None:
        key = username.lower()
        for _ in range(_WRITE_ATTEMPTS):
            item = self._records.get(KIND, key)
            failures = (item.doc["failures"] if item else 0) + 1
            doc = {
                "failures": failures,
                "locked_until": self._clock() + self._policy.lock_seconds(failures),
            }
            try:
                if item is None:
                    self._records.create(KIND, key, doc)
                else:
                    self._records.update(KIND, key, doc, expected_version=item.version)
                return
            except (AlreadyExists, VersionConflict, NotFound):
                continue
        raise _locked(1)

    def reset(self, username: str) -> None:
        key = username.lower()
        item = self._records.get(KIND, key)
        if item is None:
            return
        # If a concurrent attempt wrote in between, its outcome stands.
        with contextlib.suppress(VersionConflict, NotFound):
            self._records.delete(KIND, key, expected_version=item.version)


def _locked(seconds: int) -> TooManyAttempts:
    # The wait is in Retry-After, not in the sentence: clients word it themselves.
    return TooManyAttempts("Too many failed sign-ins for this username.", retry_after=seconds)
