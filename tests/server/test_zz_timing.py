import time
from tests.server.conftest import API_TOKEN

def test_timing(start_live, api, admin):
    live = start_live()
    for label, call in [("live ping", lambda: live.api.get("/ping")),
                        ("live me", lambda: live.api.get("/me", token=live.admin)),
                        ("tc ping", lambda: api.get("/ping")),
                        ("tc me", lambda: api.get("/me", token=admin))]:
        call()
        t = time.perf_counter()
        for _ in range(10):
            call()
        print(label, (time.perf_counter() - t) / 10)
