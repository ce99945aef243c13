"""`fraudops batch-score FILE` / `make batch-score FILE=...`: the BatchScoreStateMachine on a laptop.

moto's Step Functions engine runs Distributed Maps but has no ``ItemBatcher`` (and no JSONL reader), so
the definition cannot run there as written. This runs the definition's steps with the same code and the
same events instead, in process: the defaults the template gives the state machine, ``PinModel`` (the
promote handler with ``{"action": "pin"}``), the ``ItemReader`` (CSV with its header row, or JSON Lines),
``ItemSelector`` (``{"index", "row"}``), ``ItemBatcher`` (``rows_per_batch`` items, 240 KiB at most,
``BatchInput``), one call of the batch Lambda's handler per batch, ``MaxConcurrency`` worker processes,
and ``ToleratedFailurePercentage``. The definition itself is checked by the ASL schema (`make lint`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import json
import multiprocessing
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fraudops.batch.score import UNREADABLE
from fraudops.core.config import Settings
from fraudops.core.errors import FraudopsError, InvalidInputError
from fraudops_dev.emulation import (
    REPO_ROOT,
    TEMPLATE_PATH,
    LambdaContext,
    _environment,
    _stack_environment,
    set_environment,
)

ASL_PATH = REPO_ROOT / "infra" / "statemachine" / "batch_score.asl.json"
MAX_BATCH_BYTES = 245_760  # the definition's ItemBatcher.MaxInputBytesPerBatch


class BatchRunFailed(FraudopsError):
    """More rows were in failed batches than the tolerated percentage (the Map run fails)."""


@dataclass(frozen=True)
class RunOptions:
    rows_per_batch: int
    max_concurrency: int
    tolerated_failure_percentage: float


@dataclass
class BatchRun:
    output: str
    model_version: str
    rows: int = 0
    scored: int = 0
    rejected: int = 0
    batches: int = 0
    failed_batches: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_second": self.rows / self.seconds if self.seconds else None}


def template_defaults(template_path: Path = TEMPLATE_PATH) -> RunOptions:
    """The defaults the template hands the definition (its Batch* parameters)."""
    from cfnlint.decode import decode

    template, errors = decode(str(template_path))
    if errors or template is None:
        raise ValueError(f"cannot parse {template_path}: {errors}")
    parameters = template["Parameters"]
    return RunOptions(
        rows_per_batch=int(parameters["BatchRowsPerBatch"]["Default"]),
        max_concurrency=int(parameters["BatchMaxConcurrency"]["Default"]),
        tolerated_failure_percentage=float(parameters["BatchToleratedFailurePercentage"]["Default"]),
    )


def input_format(path: Path, requested: str | None = None) -> str:
    if requested:
        return requested
    return "jsonl" if path.suffix.lower() in {".jsonl", ".ndjson"} else "csv"


def read_items(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    """What the ItemReader and ItemSelector make of each row: ``{"index": i, "row": ...}``, ``i`` counted
    so that ``batch.line_number`` gives the row's line in the file, blank lines included (as
    ``import-csv`` counts)."""
    with path.open(newline="", encoding="utf-8") as handle:
        if fmt == "csv":
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                return
            for fields in reader:
                if not fields:  # a blank line holds no row, but it is a line
                    continue
                row: Any
                if len(fields) > len(header):
                    row = {UNREADABLE: f"{len(fields)} values, the header has {len(header)} columns"}
                else:  # as csv.DictReader: missing trailing values are None
                    row = dict(zip(header, [*fields, *[None] * (len(header) - len(fields))], strict=True))
                yield {"index": reader.line_num - 2, "row": row}
            return
        for index, line in enumerate(handle):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                row = {UNREADABLE: f"not JSON: {error.msg}"}
            yield {"index": index, "row": row}  # valid JSON that is not an object: the batch's bad row


def batches(items: Iterator[dict[str, Any]], rows_per_batch: int) -> Iterator[list[dict[str, Any]]]:
    """ItemBatcher: at most ``rows_per_batch`` items and MaxInputBytesPerBatch bytes per batch."""
    batch: list[dict[str, Any]] = []
    size = 0
    for item in items:
        item_bytes = len(json.dumps(item, separators=(",", ":")))
        if batch and (len(batch) >= rows_per_batch or size + item_bytes > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item_bytes
    if batch:
        yield batch


def init_handler_worker(environment: dict[str, str | None], function: str) -> None:
    """A worker process that runs one function's handler: its environment, its folder on the path, and
    no stdout (CloudWatch's in AWS: log lines and EMF metrics; here it would bury the summary)."""
    set_environment(environment)
    sys.path.insert(0, str(REPO_ROOT / "functions" / function))
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the worker's lifetime)


def _score(event: dict[str, Any]) -> dict[str, Any]:
    """One child execution: the batch Lambda's handler with the event the Map would send."""
    import batch_function

    try:
        return {"ok": batch_function.handler(event, LambdaContext("fraudops-batch-local"))}
    except Exception as error:  # the Map sees a failed child: counted against the tolerated percentage
        return {"error": type(error).__name__, "cause": str(error)[:500], "first_index": event["Items"][0]["index"],
                "rows": len(event["Items"])}  # fmt: skip


def pin(settings: Settings, model_version: str | None) -> dict[str, Any]:
    """The PinModel state: the promote handler, in process, with the definition's payload."""
    sys.path.insert(0, str(REPO_ROOT / "functions" / "promote"))
    quiet = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
    with (
        _environment({**_stack_environment(settings), **quiet}),
        contextlib.redirect_stdout(sys.stderr),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # Powertools: "No application metrics to publish"
        import promote_function  # its Logger binds the stdout of its import: stderr, not the summary's

        from fraudops.core.config import get_settings

        get_settings.cache_clear()
        result = promote_function.handler({"action": "pin", "version": model_version}, LambdaContext("pin"))
        get_settings.cache_clear()
    return dict(result)


def run_batch_locally(
    settings: Settings,
    path: Path,
    output: str | None = None,
    model_version: str | None = None,
    fmt: str | None = None,
    options: RunOptions | None = None,
    workers: int | None = None,
    progress: Callable[[str], None] = print,
) -> BatchRun:
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder; give one CSV or JSON Lines file (one run per file)")
    if not path.is_file():
        raise InvalidInputError(f"no such file: {path}")
    fmt = input_format(path, fmt)
    if fmt not in {"csv", "jsonl"}:
        raise InvalidInputError(f"format must be csv or jsonl, not {fmt!r}")
    options = options or template_defaults()
    run_id = f"local-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    output = output or str((settings.state_dir / "batch" / "results" / run_id).resolve())
    started = time.perf_counter()
    pinned = pin(settings, model_version)
    model = pinned["model"]
    run = BatchRun(output=output, model_version=str(model["version"]))
    progress(f"batch-score: {path} ({fmt}) with model version {run.model_version} -> {output}")
    processes = max(1, min(options.max_concurrency, workers or os.cpu_count() or 1))
    environment = {**_stack_environment(settings), "FRAUDOPS_BATCH_BOOSTER_THREADS": "1" if processes > 1 else "0",
                   "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true",
                   "POWERTOOLS_LOG_LEVEL": "WARNING"}  # fmt: skip
    batch_input = {"model": model, "policy": pinned["policy"], "format": fmt, "output": output}
    events = (
        {"Items": items, "BatchInput": batch_input} for items in batches(read_items(path, fmt), options.rows_per_batch)
    )
    context = multiprocessing.get_context("spawn")  # no fork after XGBoost's OpenMP threads started
    with concurrent.futures.ProcessPoolExecutor(
        processes, context, init_handler_worker, (environment, "batch")
    ) as pool:
        pending: set[concurrent.futures.Future[dict[str, Any]]] = set()
        last_report = time.monotonic()
        for event in events:
            pending.add(pool.submit(_score, event))
            if len(pending) >= processes * 4:
                done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                _collect(run, done)
                if time.monotonic() - last_report > 5:
                    last_report = time.monotonic()
                    rate = run.rows / (time.perf_counter() - started)
                    progress(f"  {run.rows:,} rows scored or rejected ({rate:,.0f} rows/s)")
        _collect(run, concurrent.futures.wait(pending).done)
    run.seconds = time.perf_counter() - started
    failed_rows = sum(int(f["rows"]) for f in run.failed_batches)
    total = run.rows + failed_rows
    from fraudops.store import write_uri

    try:
        write_uri(settings, f"{output.rstrip('/')}/summary.json", json.dumps(run.as_dict(), indent=2).encode())
    except OSError as error:
        progress(f"batch-score: cannot write the run summary: {error}")
    if total and 100.0 * failed_rows / total > options.tolerated_failure_percentage:
        raise BatchRunFailed(
            f"{failed_rows:,} of {total:,} rows were in failed batches (tolerated: "
            f"{options.tolerated_failure_percentage:g}%); first failure: {run.failed_batches[0]['cause']}"
        )
    return run


def _collect(run: BatchRun, done: set[concurrent.futures.Future[dict[str, Any]]]) -> None:
    for future in done:
        outcome = future.result()
        if "ok" not in outcome:
            run.failed_batches.append(outcome)
            continue
        result = outcome["ok"]
        run.batches += 1
        run.rows += int(result["rows"])
        run.scored += int(result["scored"])
        run.rejected += int(result["rejected"])


def results_rows(output: str) -> Iterator[dict[str, str]]:
    """Every result row of a local run, in input order (parts are named by their first index)."""
    for part in sorted(Path(output, "results").glob("part-*")):
        with part.open(newline="") as handle:
            if part.suffix == ".jsonl":
                yield from (json.loads(line) for line in handle)
            else:
                yield from csv.DictReader(handle)


def error_rows(output: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for part in sorted(Path(output, "errors").glob("part-*.csv")):
        with part.open(newline="") as handle:
            found += list(csv.DictReader(handle))
    return found


def render_definition() -> str:
    """batch_score.asl.json with the template's substitutions (example ARNs), for the ASL schema check."""
    from cfnlint.decode import decode

    template, errors = decode(str(TEMPLATE_PATH))
    if errors or template is None:
        raise ValueError(f"cannot parse {TEMPLATE_PATH}: {errors}")
    defaults = template_defaults()
    values = {
        "PromoteFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:promote",
        "BatchScoreFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:batch-score",
        "OutputBucket": "fraudops-data-bucket",
        "RowsPerBatch": str(defaults.rows_per_batch),
        "MaxConcurrency": str(defaults.max_concurrency),
        "ToleratedFailurePercentage": str(int(defaults.tolerated_failure_percentage)),
        "Partition": "aws",
    }
    declared = template["Resources"]["BatchScoreStateMachine"]["Properties"]["DefinitionSubstitutions"]
    text = ASL_PATH.read_text()
    for name in declared:
        text = text.replace("${" + name + "}", values[name])
    if "${" in text:
        raise ValueError("batch_score.asl.json uses a substitution the template does not declare")
    json.loads(text)
    return text


if __name__ == "__main__" and sys.argv[1:] == ["--render"]:
    print(render_definition())
