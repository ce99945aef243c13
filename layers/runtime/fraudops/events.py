"""Inputs of the train and promote Lambdas (Step Functions task inputs), validated up front.

A bad input raises ``InvalidInputError``; Lambda reports the class name as ``errorType``, which the
state machine can match in a ``Catch`` without parsing messages.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fraudops.errors import InvalidInputError


class TrainInput(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    feature_set: Literal["engineered", "seed"] = "engineered"


class PromoteInput(BaseModel):
    """``version`` may be given directly or as the train step's output under ``train``."""

    model_config = ConfigDict(extra="ignore")
    version: str | None = Field(None, max_length=16)

    @field_validator("version", mode="before")
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


def _describe(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in error.errors())


def parse_train_input(event: Any) -> TrainInput:
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise InvalidInputError(f"train input must be a JSON object, got {type(event).__name__}")
    try:
        return TrainInput.model_validate(event)
    except ValidationError as error:
        raise InvalidInputError(f"invalid train input: {_describe(error)}") from None


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
        return PromoteInput.model_validate(payload)
    except ValidationError as error:
        raise InvalidInputError(f"invalid promote input: {_describe(error)}") from None
