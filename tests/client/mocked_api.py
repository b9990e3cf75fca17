"""What the tests of ApiClient against a mocked server (`responses`) share: the API's
address and credentials, and a stand-in for time.sleep, so retries are counted instead of
waited for."""

from __future__ import annotations

API = "https://api.example.test/prod"
API_TOKEN = "tok-QX7-apikey-5521"
ACCESS = "acc-BQ93-bearer"
REFRESH = "ref-PL09-refresh"


class Sleeps(list):
    """Stands in for time.sleep: records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
