"""A bounded HTTP load generator for servers on this machine (stdlib only): fixed request count, fixed
concurrency, a deadline, keep-alive connections. Stops by itself; refuses any host but loopback.
Used by the HTTP benchmark and the load and soak tests."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def percentiles(samples_seconds: list[float]) -> dict[str, float]:
    """p50/p95/p99/mean in milliseconds."""
    ordered = sorted(samples_seconds)
    n = len(ordered)
    if n == 0:
        return {"n": 0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0}

    def at(q: float) -> float:
        return ordered[min(n - 1, int(q * n))] * 1000

    return {"n": n, "p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "mean_ms": 1000 * sum(ordered) / n}


ALLOWED_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies: list[float] = field(repr=False)
    statuses: dict[int, int]
    bodies_checked: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors, "seconds": self.seconds, "rps": self.rps,
                "statuses": self.statuses, **percentiles(self.latencies)}  # fmt: skip


def run_load(
    host: str,
    port: int,
    path: str,
    body: bytes,
    headers: dict[str, str],
    requests: int,
    concurrency: int,
    deadline_s: float = 120.0,
    check: Callable[[int, bytes], bool] | None = None,
) -> LoadResult:
    if host not in ALLOWED_HOSTS:
        raise ValueError(f"load tests only target this machine, not {host}")
    per_worker = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    statuses: list[dict[int, int]] = [{} for _ in range(concurrency)]
    stop_at = time.monotonic() + deadline_s

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        for _ in range(per_worker[index]):
            if time.monotonic() > stop_at:
                break
            started = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=30)
                continue
            latencies[index].append(time.perf_counter() - started)
            statuses[index][status] = statuses[index].get(status, 0) + 1
            if status != 200 or (check is not None and not check(status, payload)):
                errors[index] += 1
        connection.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=deadline_s + 30)
    elapsed = time.perf_counter() - started
    merged: dict[int, int] = {}
    for per in statuses:
        for code, count in per.items():
            merged[code] = merged.get(code, 0) + count
    done = [x for per in latencies for x in per]
    return LoadResult(len(done), sum(errors), elapsed, done, merged)
