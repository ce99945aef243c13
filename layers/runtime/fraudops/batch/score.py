"""Batch scoring, one batch at a time: what each child of the BatchScoreStateMachine's Distributed Map
runs (``functions/batch``), and what ``fraudops batch-score`` runs over the same batches locally.

A batch is the Map's ``ItemBatcher`` output: ``Items`` (each ``{"index", "row"}``: the row as the
``ItemReader`` read it, CSV values as strings) and ``BatchInput`` (the pinned model, the input format and
where results go). Every row is validated with the API's own rules (``api.schemas.Transaction``, lax
about CSV strings), valid rows are scored together with the pinned model, and two part files are
written: every valid input row with probability, decision, threshold, model version, outcome (with the
rule or band that produced it, the policy version pinned for the run, and reasons for flagged rows), and
every bad row with its line number and what is wrong with it. A bad row never fails its batch.

Part names come from the batch's first index, so a retried batch overwrites its own parts (idempotent).
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_json

from fraudops.aggregates import AGGREGATE_NAMES, AggregateStore, aggregate_store
from fraudops.api.schemas import Transaction
from fraudops.core.config import Settings
from fraudops.core.errors import InvalidInputError
from fraudops.core.schema import LABEL_COLUMNS, RAW_FEATURE_COLUMNS, parse_flag
from fraudops.serving.decide import decide_rows, pinned_policy
from fraudops.serving.entities import row_aggregates
from fraudops.serving.provider import served_model
from fraudops.serving.served import ServedModel
from fraudops.stages.events import BatchEvent, BatchItem, describe_errors
from fraudops.store import ServingManifest, write_uri

# Columns a PaySim file carries that are not model inputs: kept in the output (a back-test needs the
# label beside the score), checked with the importer's rule (0 or 1) when present and not empty.
PASSTHROUGH_COLUMNS = frozenset(LABEL_COLUMNS)
RESULT_COLUMNS = ("probability", "decision", "threshold", "model_version", "outcome", "decided_by", "policy_version",
                  "reasons")  # fmt: skip
UNREADABLE = "__unreadable__"  # a line the local reader could not split into fields, and why
_OPTIONAL = frozenset(name for name, field in Transaction.model_fields.items() if not field.is_required())


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


@dataclass(frozen=True)
class BatchResult:
    first_index: int
    rows: int
    scored: int
    rejected: int
    model_version: str
    results_uri: str
    errors_uri: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def line_number(index: int, input_format: str) -> int:
    """The file line of the Map's item ``index`` (CSV: line 1 is the header)."""
    return index + (2 if input_format == "csv" else 1)


def _label_problem(row: dict[str, Any]) -> str | None:
    """The importer's rule for the label columns a file carries (one set of row rules: a row that
    ``import-csv`` rejects is not scored either)."""
    for column in LABEL_COLUMNS:
        value = row.get(column)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return f"{column}: {value!r} is not 0 or 1"
        try:
            parse_flag(column, str(value))
        except ValueError as error:
            return str(error)
    return None


def _transaction_fields(row: dict[str, Any], input_format: str) -> dict[str, Any]:
    if input_format == "csv":  # an empty CSV cell is an absent optional value
        return {k: v for k, v in row.items() if k not in PASSTHROUGH_COLUMNS and not (v == "" and k in _OPTIONAL)}
    return {k: v for k, v in row.items() if k not in PASSTHROUGH_COLUMNS}


def validate_rows(
    items: Sequence[BatchItem], input_format: str
) -> tuple[list[BatchItem], list[Transaction], list[RowError]]:
    """(items whose row is valid, their transactions, one error per bad row), in input order."""
    good_items: list[BatchItem] = []
    transactions: list[Transaction] = []
    errors: list[RowError] = []
    for item in items:
        line = line_number(item.index, input_format)
        if not isinstance(item.row, dict):  # a JSON Lines line that is valid JSON but not an object
            errors.append(RowError(line, f"row: not a JSON object (got {_json_kind(item.row)})"))
            continue
        if UNREADABLE in item.row:
            errors.append(RowError(line, str(item.row[UNREADABLE])))
            continue
        problem = _label_problem(item.row)
        if problem:
            errors.append(RowError(line, problem))
            continue
        try:
            transaction = Transaction.model_validate(_transaction_fields(item.row, input_format), strict=False)
        except ValidationError as error:
            errors.append(RowError(line, describe_errors(error, whole="row")))
            continue
        good_items.append(item)
        transactions.append(transaction)
    return good_items, transactions, errors


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else type(value).__name__


_models: dict[tuple[str, str | None, str], ServedModel] = {}
_models_lock = threading.Lock()


def pinned_model(settings: Settings, manifest: ServingManifest) -> ServedModel:
    """The pinned version, loaded once per container and checked against the manifest's checksums (the
    booster with ``batch_booster_threads``: by default all of a batch Lambda's vCPUs)."""
    key = (manifest.version, manifest.compiled_sha256, manifest.booster_sha256)
    with _models_lock:
        if key not in _models:
            _models.clear()
            _models[key] = served_model(settings, manifest, booster_threads=settings.batch_booster_threads)
        return _models[key]


_stores: dict[tuple[str, str | None, str], AggregateStore | None] = {}


def batch_aggregate_store(settings: Settings) -> AggregateStore | None:
    """The aggregate store, made once per container (a DynamoDB client, or the embedded file)."""
    key = (settings.aggregate_store, settings.aggregate_table, str(settings.aggregate_db_file))
    with _models_lock:
        if key not in _stores:
            _stores[key] = aggregate_store(settings)
        return _stores[key]


def score_batch(settings: Settings, event: BatchEvent) -> BatchResult:
    request = event.BatchInput
    try:
        manifest = ServingManifest(**request.model)
    except TypeError as error:
        raise InvalidInputError(f"invalid batch event: BatchInput.model is not a serving manifest ({error})") from None
    model = pinned_model(settings, manifest)
    policy = pinned_policy(settings, request.policy)
    items, transactions, errors = validate_rows(event.Items, request.format)
    probabilities: list[float] = []
    outcomes: list[dict[str, Any]] = []
    if transactions:
        # The entity aggregates as the API computes them: the store's history, then this batch's rows in
        # order, each new event counted once (a retried batch counts nothing again).
        aggregates = row_aggregates(batch_aggregate_store(settings), [t.__dict__ for t in transactions])
        rows = [{**t.__dict__, **values} for t, values in zip(transactions, aggregates, strict=True)]
        columns = {name: [row[name] for row in rows] for name in (*RAW_FEATURE_COLUMNS, *AGGREGATE_NAMES)}
        probabilities = model.predict_proba(columns).tolist()
        outcomes = decide_rows(model, policy, rows, probabilities, False, settings.top_reasons)
    first = event.Items[0].index
    part = f"part-{first:012d}"
    threshold, version = model.threshold, manifest.version
    results_uri = f"{request.output.rstrip('/')}/results/{part}.{request.format}"
    write_uri(settings, results_uri, _results(items, probabilities, outcomes, threshold, version, request.format))
    errors_uri = None
    if errors:
        errors_uri = f"{request.output.rstrip('/')}/errors/{part}.csv"
        write_uri(settings, errors_uri, _errors_csv(errors))
    return BatchResult(first, len(event.Items), len(items), len(errors), version, results_uri, errors_uri)


def _results(
    items: list[BatchItem],
    probabilities: list[float],
    outcomes: list[dict[str, Any]],
    threshold: float,
    version: str,
    input_format: str,
) -> bytes:
    """Every valid row with its score and decision: outcome, what decided it (``rule:<name>``,
    ``band:review``, ``list:deny.nameDest``), the policy version and, for flagged rows, the reasons."""
    if input_format == "jsonl":
        rows = [
            {"line": line_number(item.index, input_format), **item.row, "probability": p,
             "decision": int(p >= threshold), "threshold": threshold, "model_version": version, **o}
            for item, p, o in zip(items, probabilities, outcomes, strict=True)
        ]  # fmt: skip
        return b"".join(to_json(row) + b"\n" for row in rows)
    columns = list(items[0].row) if items else list(RAW_FEATURE_COLUMNS)
    same_columns = items[0].row.keys() if items else None
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["line", *columns, *RESULT_COLUMNS])
    writer.writerows(
        [
            line_number(item.index, input_format),
            *(item.row.values() if item.row.keys() == same_columns else (item.row.get(c, "") for c in columns)),
            p, int(p >= threshold), threshold, version, o["outcome"],
            f"{o['decided_by']['kind']}:{o['decided_by']['name']}", o["policy_version"],
            to_json(o["reasons"]).decode() if "reasons" in o else "",
        ]
        for item, p, o in zip(items, probabilities, outcomes, strict=True)
    )  # fmt: skip
    return buffer.getvalue().encode()


def _errors_csv(errors: list[RowError]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["line", "error"])
    writer.writerows([(e.line, e.message) for e in errors])
    return buffer.getvalue().encode()
