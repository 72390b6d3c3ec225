"""Zero downtime: a client hammering the front door through 10 deploys and rollbacks."""

from __future__ import annotations

import threading
from collections import Counter

import httpx

from tests.support.app_repo import AppRepo


def test_no_failed_request_during_deploys_and_rollbacks(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("v2", {"VERSION": "2.0.0\n"})

    stop = threading.Event()
    seen: Counter[str] = Counter()
    failures: list[str] = []

    def hammer(keepalive: bool) -> None:
        limits = httpx.Limits(max_keepalive_connections=1 if keepalive else 0)
        with httpx.Client(timeout=10, limits=limits) as client:
            while not stop.is_set():
                try:
                    response = client.get(app_repo.url("dev", "/api/version"))
                    if response.status_code != 200:
                        failures.append(f"HTTP {response.status_code}: {response.text[:100]}")
                    else:
                        seen[response.json()["version"]] += 1
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    clients = [threading.Thread(target=hammer, args=(k,)) for k in (True, False)]
    for thread in clients:
        thread.start()
    try:
        for _ in range(5):
            # The same commit each time: rolled back, brought back on purpose.
            deploy = app_repo.shiplane("deploy", "dev", "--include-rolled-back")
            assert deploy.code == 0, deploy.stdout
            rollback = app_repo.shiplane("rollback", "dev")
            assert rollback.code == 0, rollback.stdout
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=30)

    assert failures == []
    assert set(seen) == {"1.0.0", "2.0.0"}  # only old or new answers, and both were seen
    assert sum(seen.values()) > 100
