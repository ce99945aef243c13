"""Property-based tests of the Lambda entry points' input handling: any event either parses or raises
InvalidInputError (an errorType the state machine can branch on), never another exception."""

from __future__ import annotations

from typing import Any

import boto3
from api_function import invalid_event_response
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from fraudops.api.keys import load_api_keys
from fraudops.core.errors import InvalidInputError
from fraudops.stages.events import parse_promote_input, parse_train_input
from tests.helpers.stack import fast_settings

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
events = json_values | st.dictionaries(
    st.sampled_from(["feature_set", "version", "train", "extra"]), json_values, max_size=4
)


@given(events)
def test_train_input_parses_or_says_why(event: Any) -> None:
    try:
        parsed = parse_train_input(event)
    except InvalidInputError as error:
        assert "train input" in str(error)
    else:
        assert parsed.feature_set in {"engineered", "seed"}


@given(events)
def test_promote_input_parses_or_says_why(event: Any) -> None:
    try:
        parsed = parse_promote_input(event)
    except InvalidInputError as error:
        assert "promote input" in str(error)
    else:
        assert parsed.version is None or parsed.version.isdigit()


@given(
    json_values
    | st.dictionaries(st.sampled_from(["requestContext", "httpMethod", "path", "body", "version"]), json_values)
)
def test_api_handler_guard_never_raises(event: Any) -> None:
    response = invalid_event_response(event)
    assert response is None or response["statusCode"] == 400


def test_keys_from_an_ssm_securestring() -> None:
    with mock_aws():
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name="/fraudops/api-keys", Value="ssm-key-1, ssm-key-2", Type="SecureString"
        )
        keys = load_api_keys(fast_settings(api_keys_ssm_parameter="/fraudops/api-keys"))
    assert keys == ["ssm-key-1", "ssm-key-2"]


def test_unreadable_ssm_parameter_fails_closed() -> None:
    with mock_aws():
        assert load_api_keys(fast_settings(api_keys_ssm_parameter="/fraudops/missing")) == []
