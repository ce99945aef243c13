"""`fraudops batch-check OUTPUT`: every row of a batch-score run sent to /predict, one request per row,
through the API's Lambda handler (API Gateway proxy event -> Mangum -> FastAPI), in worker processes;
the probability must be equal to the last bit, the decision and the model version the same.

Why the handler and not HTTP: a million requests over HTTP to one local uvicorn take most of an hour
on two cores; the handler is the route itself without the socket (the e2e tests do go over HTTP).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from fraudops.core.config import Settings
from fraudops.core.schema import RAW_FEATURE_COLUMNS
from fraudops_dev.batch_local import init_handler_worker, results_rows
from fraudops_dev.emulation import REPO_ROOT, LambdaContext, _stack_environment

CHUNK = 5_000
_state: dict[str, Any] = {}


def worker_environment(environment: dict[str, str | None], key: str) -> dict[str, str | None]:
    """The API handler's environment for checking: capture off (FRAUDOPS_CAPTURE), so tooling never
    feeds the monitor's drift, flagged rate or realized performance as if it were live traffic."""
    return {**environment, "FRAUDOPS_API_KEYS": key, "FRAUDOPS_CAPTURE": "false",
            "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true"}  # fmt: skip


def _init(environment: dict[str, str | None], key: str) -> None:
    init_handler_worker(worker_environment(environment, key), "api")
    import api_function

    sample = json.loads((REPO_ROOT / "tests" / "events" / "apiGatewayProxyEvent.json").read_text())
    sample["headers"] = {**sample["headers"], "x-api-key": key}
    sample["multiValueHeaders"] = {k: [v] for k, v in sample["headers"].items()}
    _state.update(handler=api_function.handler, event=sample, context=LambdaContext("batch-check"))


def _check(rows: list[dict[str, Any]]) -> dict[str, Any]:
    handler, template, context = _state["handler"], _state["event"], _state["context"]
    mismatches: list[dict[str, Any]] = []
    count = 0
    for row in rows:
        body = {name: row[name] for name in RAW_FEATURE_COLUMNS}
        body = {k: (v if k == "type" else (int(v) if k == "step" else float(v))) for k, v in body.items()}
        response = handler({**template, "body": json.dumps(body)}, context)
        answer = json.loads(response["body"])
        same = (
            response["statusCode"] == 200
            and answer["probability"] == float(row["probability"])
            and int(answer["prediction"]) == int(row["decision"])
            and answer["model_version"] == str(row["model_version"])
        )
        if not same:
            count += 1
            if len(mismatches) < 10:
                mismatches.append({"line": row["line"], "batch": row, "predict": answer})
    return {"rows": len(rows), "mismatches": mismatches, "mismatch_count": count}


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(itertools.islice(rows, CHUNK)):
        yield chunk


def check_against_predict(
    settings: Settings, output: str, workers: int | None = None, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    environment = _stack_environment(settings)
    processes = workers or os.cpu_count() or 1
    checked, mismatched = 0, 0
    examples: list[dict[str, Any]] = []
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(processes, context, _init, (environment, "batch-check")) as pool:
        for result in pool.map(_check, _chunks(results_rows(output))):
            checked += result["rows"]
            mismatched += result["mismatch_count"]
            examples += result["mismatches"][: max(0, 10 - len(examples))]
            if checked % 100_000 < CHUNK:
                progress(
                    f"  {checked:,} rows checked against /predict ({checked / (time.perf_counter() - started):,.0f}/s)"
                )
    return {"rows_checked": checked, "mismatches": mismatched, "examples": examples,
            "seconds": time.perf_counter() - started}  # fmt: skip
