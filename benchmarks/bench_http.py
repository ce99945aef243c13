"""3. HTTP under load: the API under uvicorn on 127.0.0.1, a bounded load generator at concurrency
1, 8 and 32: requests/s, p99 and errors (must be 0). Baseline in the same run: the smallest JSON POST
endpoint on the same uvicorn + Starlette stack."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from fraudops_dev.loadtest import run_load

from benchmarks.common import ROOT, local_store, print_table, write_result

LEVELS = (1, 8, 32)
REQUESTS = 3_000


@contextlib.contextmanager
def server(command: list[str], env: dict[str, str], port: int, health: str) -> Iterator[None]:
    from fraudops_dev.local import wait_for_http

    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"http://127.0.0.1:{port}{health}", timeout=60, accept=(200, 405))
        yield
    finally:
        process.terminate()
        process.wait(timeout=20)


def main() -> dict[str, Any]:
    from fraudops_dev.local import free_port

    from fraudops.api.schemas import EXAMPLE_TRANSACTION

    body = json.dumps(EXAMPLE_TRANSACTION).encode()
    headers = {"content-type": "application/json", "x-api-key": "bench-key"}
    results: dict[str, Any] = {"requests_per_level": REQUESTS, "levels": {}}
    with local_store() as store:
        env = {**os.environ, **store.env}
        api_port, hello_port = free_port(), free_port()
        api_cmd = [sys.executable, "-m", "fraudops_dev.cli", "serve", "--port", str(api_port)]
        hello_cmd = [sys.executable, "-m", "uvicorn", "benchmarks._hello_app:app", "--port", str(hello_port),
                     "--log-level", "warning"]  # fmt: skip

        def valid(status: int, payload: bytes) -> bool:
            return status == 200 and json.loads(payload).get("model_version") == "1"

        with server(api_cmd, env, api_port, "/health"):
            api = {
                c: run_load("127.0.0.1", api_port, "/predict", body, headers, REQUESTS, c, check=valid) for c in LEVELS
            }
        with server(hello_cmd, env, hello_port, "/predict"):
            hello = {c: run_load("127.0.0.1", hello_port, "/predict", body, headers, REQUESTS, c) for c in LEVELS}

    rows = []
    for level in LEVELS:
        a, h = api[level], hello[level]
        rows.append([level, a.rps, a.summary()["p99_ms"], a.errors, h.rps, h.summary()["p99_ms"], a.rps / h.rps])
        results["levels"][str(level)] = {"api": a.summary(), "baseline": h.summary(), "rps_ratio": a.rps / h.rps}
    print_table(
        f"HTTP /predict under uvicorn on 127.0.0.1 ({REQUESTS:,} requests per level, 1 worker)",
        ["concurrency", "rps", "p99 ms", "errors", "baseline rps", "baseline p99", "rps ratio"],
        rows,
    )
    results["errors_total"] = sum(api[c].errors for c in LEVELS)
    results["targets"] = {"zero_errors": results["errors_total"] == 0}
    write_result("http", results)
    return results


if __name__ == "__main__":
    main()
