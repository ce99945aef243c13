"""Inputs of the train, promote, monitor and batch-score Lambdas (Step Functions task inputs), validated
up front.

A bad input raises ``InvalidInputError``; Lambda reports the class name as ``errorType``, which the
state machine can match in a ``Catch`` without parsing messages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fraudops.core.errors import InvalidInputError
from fraudops.model.features import FEATURE_SETS


class TrainInput(BaseModel):
    """``action``: ``train`` (read, train and register in this Lambda; the default), ``plan`` (count the
    training window and choose the engine: the state machine's Choice reads the answer) or ``register``
    (log and register what a Spark training job wrote at ``output_uri``)."""

    model_config = ConfigDict(extra="ignore", strict=True)
    action: Literal["train", "plan", "register"] = "train"
    output_uri: str | None = Field(None, max_length=1024)
    request: dict[str, Any] | None = None  # plan: the execution's input (feature set, trigger) to carry on
    feature_set: str = "engineered"
    reason: str = Field("manual", max_length=64, description="Why this training runs: manual, schedule, drift.")
    drifted: list[str] = Field(default_factory=list, max_length=50)
    snapshot: int | str | None = Field(
        None,
        description="Train (or plan) on this Iceberg snapshot id of the transactions table, not the current one: "
        "a run's dataset input names it. A decimal string is accepted (a 64-bit id may not survive a JSON "
        "number in every engine).",
    )

    @property
    def snapshot_id(self) -> int | None:
        return None if self.snapshot is None else int(self.snapshot)

    @field_validator("snapshot")
    @classmethod
    def _snapshot_is_an_id(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, str) and not value.isdigit():
            raise ValueError("snapshot is an Iceberg snapshot id: digits only")
        return value

    def trigger_tags(self) -> dict[str, str]:
        """Recorded on the run and the new version, so a drift-triggered model says so."""
        tags = {"fraudops.trigger.reason": self.reason}
        if self.drifted:
            tags["fraudops.trigger.drifted"] = ",".join(self.drifted)[:5000]
        return tags

    @model_validator(mode="after")
    def _register_needs_output(self) -> TrainInput:
        if self.action == "register" and not self.output_uri:
            raise ValueError("register needs output_uri: where the Spark training job wrote its output")
        return self

    @field_validator("feature_set")
    @classmethod
    def _known_feature_set(cls, value: str) -> str:
        if value not in FEATURE_SETS:  # one definition: features.FEATURE_SETS
            raise ValueError(f"{value!r} is not a feature set; choose from {', '.join(FEATURE_SETS)}")
        return value


class PromoteInput(BaseModel):
    """``version`` may be given directly or as the train step's output under ``train``.

    ``action`` picks what the promote function does: ``promote`` (the rule; with ``force`` and a
    ``reason``, a manual promotion), ``rollback`` (from ``from_version``, which must still be Production,
    to ``to_version`` or the previous Production), ``reconcile`` (the manifest follows the registry's
    alias; with ``version``, only if the alias names it), ``check`` (report, change nothing), ``pin``
    (the model a batch-scoring run uses: Production's manifest, or ``version``'s; change nothing),
    ``acquire_lease`` / ``release_lease`` (the retrain state machine's one-at-a-time lease, held by the
    execution named in ``actor``; fraudops.production.retraining_lock).

    ``idempotency_key`` (the retraining state machine passes its execution id): a retried invocation
    with a key already used reports what it did and changes nothing. ``from_version`` on a promotion:
    refuse unless Production is that version."""

    model_config = ConfigDict(extra="ignore")
    action: Literal["promote", "rollback", "reconcile", "check", "pin", "acquire_lease", "release_lease"] = "promote"
    version: str | None = Field(None, max_length=16)
    to_version: str | None = Field(None, max_length=16)
    from_version: str | None = Field(None, max_length=16)
    idempotency_key: str | None = Field(None, min_length=1, max_length=512)
    force: bool = False
    reason: str | None = Field(None, max_length=1000)
    actor: str | None = Field(None, max_length=256)

    @field_validator("version", "to_version", "from_version", mode="before")
    @classmethod
    def _version_digits(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError("must be a version number (string or integer)")
        text = str(value)
        if not text.isdigit():
            raise ValueError(f"{text!r} is not a version number")
        return text


def describe_errors(error: ValidationError, whole: str = "event", limit: int | None = None) -> str:
    """pydantic's errors as ``field: message; ...`` (``whole`` names an error of the object itself)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or whole}: {e['msg']}" for e in error.errors()[:limit])


def parse_train_input(event: Any) -> TrainInput:
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise InvalidInputError(f"train input must be a JSON object, got {type(event).__name__}")
    try:
        return TrainInput.model_validate(event)
    except ValidationError as error:
        raise InvalidInputError(f"invalid train input: {describe_errors(error)}") from None


def _needs_reason(request: PromoteInput) -> PromoteInput:
    if request.action in {"acquire_lease", "release_lease"} and not (request.actor or "").strip():
        raise InvalidInputError(f"invalid promote input: {request.action} needs the execution as actor")
    if (request.action == "rollback" or request.force) and not (request.reason or "").strip():
        raise InvalidInputError(
            f"invalid promote input: {request.action}{' with force' * request.force} needs a reason"
        )
    if request.action == "rollback" and request.from_version is None:
        raise InvalidInputError(
            "invalid promote input: rollback needs from_version (the version it rolls back from, which must "
            "still be Production: a retried rollback then never rolls back twice)"
        )
    return request


def parse_promote_input(event: Any) -> PromoteInput:
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise InvalidInputError(f"promote input must be a JSON object, got {type(event).__name__}")
    payload = dict(event)
    train_output = payload.get("train")
    if "version" not in payload and isinstance(train_output, dict):
        payload["version"] = train_output.get("version")
    try:
        return _needs_reason(PromoteInput.model_validate(payload))
    except ValidationError as error:
        raise InvalidInputError(f"invalid promote input: {describe_errors(error)}") from None


class MonitorInput(BaseModel):
    """The window to monitor; both ends default (the last ``monitor_window_minutes``)."""

    model_config = ConfigDict(extra="ignore")
    since: datetime | None = None
    until: datetime | None = None

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def parse_monitor_input(event: Any) -> MonitorInput:
    if event is None or (isinstance(event, dict) and event.get("source") == "aws.events"):
        return MonitorInput()  # the EventBridge schedule's own event: the default window
    if not isinstance(event, dict):
        raise InvalidInputError(f"monitor input must be a JSON object, got {type(event).__name__}")
    try:
        request = MonitorInput.model_validate(event)
    except ValidationError as error:
        raise InvalidInputError(f"invalid monitor input: {describe_errors(error)}") from None
    if request.since and request.until and request.since >= request.until:
        raise InvalidInputError("invalid monitor input: since must be before until")
    return request


class BatchItem(BaseModel):
    """One row as the Distributed Map's ItemSelector passes it: its index in the file and its fields.
    ``row`` is whatever the ItemReader parsed: a JSON Lines line may be valid JSON but not an object,
    which makes that row bad (``batch.validate_rows``), never the whole batch."""

    model_config = ConfigDict(extra="forbid")
    index: int = Field(ge=0)
    row: Any


class BatchInput(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: dict[str, Any] = Field(description="The serving manifest of the version pinned for the whole run.")
    policy: dict[str, Any] | None = Field(
        None, description="The decision policy pinned for the run (its activation key); none: the built-in one."
    )
    format: Literal["csv", "jsonl"] = "csv"
    output: str = Field(min_length=1, description="Where the run's part files go: s3://bucket/prefix or a folder.")


class BatchEvent(BaseModel):
    """What the ItemBatcher hands one child execution."""

    model_config = ConfigDict(extra="ignore")
    Items: list[BatchItem] = Field(min_length=1)
    BatchInput: BatchInput


def parse_batch_event(event: Any) -> BatchEvent:
    try:
        return BatchEvent.model_validate(event)
    except ValidationError as error:
        raise InvalidInputError(f"invalid batch event: {describe_errors(error, limit=5)}") from None
