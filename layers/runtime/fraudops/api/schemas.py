"""Request and response models of the API: one definition each, shared by the routes, the OpenAPI
document and the tests. Field rules come from ``fraudops.core.schema`` (the importer applies the same)."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, cast, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic.config import JsonDict
from pydantic_core import to_json

from fraudops.core.schema import MAX_MONEY, MAX_NAME_LENGTH, MAX_STEP, RAW_FEATURE_COLUMNS, TRANSACTION_TYPES
from fraudops.stages.events import describe_errors

Money = Annotated[float, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False)]
TransactionType = Literal["CASH_IN", "CASH_OUT", "DEBIT", "PAYMENT", "TRANSFER"]
assert get_args(TransactionType) == TRANSACTION_TYPES, "the API's types must be the schema's"

EXAMPLE_TRANSACTION: dict[str, Any] = {
    "step": 212,
    "type": "TRANSFER",
    "amount": 181000.0,
    "oldbalanceOrg": 181000.0,
    "newbalanceOrig": 0.0,
    "oldbalanceDest": 0.0,
    "newbalanceDest": 0.0,
}

# The original project's request: scaled amount, step and one-hot type columns (see the README's
# "Coming from the original project").
ORIGINAL_PROJECT_FIELDS = frozenset(TRANSACTION_TYPES)


class Transaction(BaseModel):
    """One transaction as the payment system sees it (PaySim field names). Balances are after/before
    the transaction as PaySim records them; labels (isFraud) are not inputs."""

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [cast(JsonDict, EXAMPLE_TRANSACTION)]}
    )

    step: int = Field(ge=0, le=MAX_STEP, description="Hour since the start of the simulation (1 step = 1 h).")
    type: TransactionType
    amount: Money
    oldbalanceOrg: Money
    newbalanceOrig: Money
    oldbalanceDest: Money
    newbalanceDest: Money
    nameOrig: str | None = Field(None, max_length=MAX_NAME_LENGTH, description="Origin account (not scored).")
    nameDest: str | None = Field(None, max_length=MAX_NAME_LENGTH, description="Destination account (not scored).")
    transaction_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="Your id for this transaction: echoed, captured, "
        "and how labels sent to /feedback later find this decision.",
    )

    def raw(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in RAW_FEATURE_COLUMNS}

    def as_received(self) -> dict[str, Any]:
        """The transaction fields for the capture record (the id travels beside them)."""
        # The validated fields as they are (no model_dump: this runs on every request).
        return {k: v for k, v in self.__dict__.items() if v is not None and k != "transaction_id"}


class DecidedBy(BaseModel):
    kind: Literal["list", "rule", "band"] = Field(description="An allow/deny list, a policy rule or a score band.")
    name: str = Field(
        description="deny.nameDest / allow.nameOrig, the rule's name, or the band (approve/review/block)."
    )
    condition: str | None = Field(
        None,
        description="What was met: the rule's `when`, '<field> is on the <deny|allow> list', or the band's "
        "threshold ('score >= 0.35 (review_at)').",
    )
    values: dict[str, Any] | None = Field(
        None, description="The values the condition read for this transaction (the list entry, the score)."
    )
    summary: str | None = Field(
        None, description="The same in words: \"rule 'big-amount' matched: amount > 10000 with amount=25000\"."
    )
    score_outcome: Literal["approve", "review", "block"] | None = Field(
        None,
        description="Rule and list decisions: what the score bands alone would have given (context; the rule "
        "or list decided).",
    )


class Reason(BaseModel):
    feature: str
    label: str = Field(description="What the feature is, in words.")
    value: float = Field(description="The feature's value for this transaction.")
    contribution: float = Field(description="Exact TreeSHAP contribution to the score, in log-odds.")
    direction: Literal["raises", "lowers"]
    field: str | None = Field(None, description="The request field the feature comes from, if one.")
    field_value: Any = Field(None, description="That field's value as sent.")


class Prediction(BaseModel):
    probability: float = Field(description="Model fraud score in [0, 1] (class-weighted training).")
    prediction: float = Field(description="1.0 when probability >= the model's threshold, else 0.0.")
    threshold: float
    model_version: str
    transaction_id: str | None = Field(None, description="The transaction_id you sent, if any.")
    outcome: Literal["approve", "review", "block"] = Field(description="What to do, from the decision policy.")
    decided_by: DecidedBy = Field(description="The list, rule or score band that produced the outcome.")
    policy_version: str = Field(description="The decision policy version ('builtin': none published yet).")
    reasons: list[Reason] | None = Field(
        None,
        description="Top contributions to the score: on review/block outcomes, and on any with ?explain=true. "
        "When a rule or list decided, only those pointing the outcome's way (context, never against it).",
    )
    aggregates: dict[str, float | None] | None = Field(
        None,
        description="What the accounts did before this transaction, as the decision used them (docs/aggregates.md): "
        "e.g. `orig_count_1h`, `dest_distinct_24h`; null: no earlier event in the window. Absent when the "
        "aggregate store is off.",
    )


class BatchRequest(BaseModel):
    """The rows are validated one by one in the route (``validate_batch_rows``): a bad row gets its
    entry in the response's ``errors`` and the others are scored, as batch scoring does. The document
    still says each row is a Transaction."""

    model_config = ConfigDict(extra="forbid", strict=True)
    transactions: list[Any] = Field(
        min_length=1,
        description="Transactions, each as /predict takes it; one that is not valid gets an entry in `errors` "
        "(and `null` in `predictions`) and fails nothing else.",
        json_schema_extra={"items": {"$ref": "#/components/schemas/Transaction"}},
    )


class RowError(BaseModel):
    """One row of a batch that was not scored, and why (batch scoring writes the same per line)."""

    index: int = Field(description="The row's position in `transactions` (0-based); `predictions[index]` is null.")
    transaction_id: str | None = Field(None, description="The row's transaction_id, when it sent a valid one.")
    message: str = Field(description="What is wrong: `field: problem; ...`.")
    fields: list[dict[str, str]] = Field(description="Each problem as {field, message}, as a 422 names it.")


class BatchPrediction(BaseModel):
    predictions: list[Prediction | None] = Field(
        description="One per row, in order: the row's prediction, or null for a row listed in `errors`."
    )
    model_version: str
    errors: list[RowError] = Field(default_factory=list, description="The rows that were not scored (empty: none).")


_ROWS: Final = TypeAdapter(list[Transaction])


def validate_batch_rows(rows: list[Any]) -> tuple[list[int], list[Transaction], list[dict[str, Any]]]:
    """(positions of the valid rows, their transactions, one error per bad row). One validation of the
    whole list first (the usual case: no bad row costs no per-row work), row by row only when it fails."""
    try:
        return list(range(len(rows))), _ROWS.validate_python(rows), []
    except ValidationError:
        pass
    positions: list[int] = []
    transactions: list[Transaction] = []
    errors: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        try:
            transactions.append(Transaction.model_validate(row))
            positions.append(index)
        except ValidationError as error:
            problems = error.errors()
            entry: dict[str, Any] = {"index": index}
            given = row.get("transaction_id") if isinstance(row, dict) else None
            if isinstance(given, str) and not any(p["loc"][:1] == ("transaction_id",) for p in problems):
                entry["transaction_id"] = given
            entry["message"] = describe_errors(error, whole="row")  # batch scoring's words for a bad row
            entry["fields"] = [
                {"field": ".".join(str(x) for x in ("transactions", index, *p["loc"])), "message": p["msg"]}
                for p in problems
            ]
            errors.append(entry)
    return positions, transactions, errors


def prediction_json(
    probability: float,
    prediction: float,
    threshold: float,
    version: str,
    transaction_id: str | None,
    decision: dict[str, Any],
) -> dict[str, Any]:
    """One ``Prediction`` as ``model_dump(exclude_none=True)`` gives it, built directly (a test holds the
    two equal): per-row models cost more than the model itself at 1,000 rows."""
    body: dict[str, Any] = {"probability": probability, "prediction": prediction, "threshold": threshold,
                            "model_version": version}  # fmt: skip
    if transaction_id is not None:
        body["transaction_id"] = transaction_id
    body.update(decision)
    return body


def batch_prediction_json(
    probabilities: list[float],
    decisions: list[float],
    ids: list[str | None],
    threshold: float,
    version: str,
    outcomes: list[dict[str, Any]],
    errors: list[dict[str, Any]] | None = None,
    positions: list[int] | None = None,
    rows: int | None = None,
) -> bytes:
    """``BatchPrediction(...).model_dump_json(exclude_none=True)``, written directly; with ``errors``,
    the scored rows go to their ``positions`` among ``rows`` and the bad ones are null."""
    predictions: list[dict[str, Any] | None] = [
        prediction_json(p, d, threshold, version, i, o)
        for p, d, i, o in zip(probabilities, decisions, ids, outcomes, strict=True)
    ]
    if errors:
        aligned: list[dict[str, Any] | None] = [None] * (rows if rows is not None else len(predictions) + len(errors))
        for position, prediction in zip(positions or [], predictions, strict=True):
            aligned[position] = prediction
        predictions = aligned
    return to_json({"predictions": predictions, "model_version": version, "errors": errors or []})


class ModelInfo(BaseModel):
    model_name: str
    model_version: str
    run_id: str
    model_uri: str
    threshold: float
    features: list[str]
    metrics: dict[str, float]
    promoted_at: str
    decision_bands: dict[str, Any] | None = Field(
        None, description="The score bands training chose by money on validation, with the cost model used."
    )
    policy: dict[str, Any] | None = Field(None, description="The active decision policy: version and document.")


class Health(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    model_version: str | None
    problem: str | None = None
    captures_lost: int = Field(
        0, description="Decisions served but not captured for the monitor (full disk), since the process started."
    )


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    transaction_id: str = Field(min_length=1, max_length=128)
    # PaySim's isFraud and most case systems write 0/1; import-labels accepts both, so the API does too.
    is_fraud: bool | Literal[0, 1] = Field(
        description="The confirmed outcome (chargeback, investigation): true/false, or 1/0 as PaySim's isFraud."
    )

    @field_validator("is_fraud")
    @classmethod
    def _as_bool(cls, value: bool | int) -> bool:
        return bool(value)


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    labels: list[Label] = Field(min_length=1, max_length=1000)


class FeedbackResult(BaseModel):
    accepted: int
    stored: int = Field(
        description="Label events stored (one object for the whole request); sending a label "
        "twice is safe: the newest word per transaction wins."
    )
    repeated: int = Field(description="Ids given more than once in this request; the last of them was kept.")
    note: str = "labels are joined with captured decisions by the monitor; ids it never saw are listed in its report"
