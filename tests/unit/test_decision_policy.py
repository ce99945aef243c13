"""The decision policy: the rule language (parsed, type-checked, never eval), validation of whole
documents, and the same outcome row by row and in batches."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudops.aggregates import AGGREGATE_NAMES
from fraudops.core.schema import TRANSACTION_TYPES
from fraudops.decisions import Bands, DecisionPolicy, ExpressionError, PolicyError, parse_condition
from fraudops.decisions.expression import FIELD_TYPES

NUMBER_FIELDS = [name for name, kind in FIELD_TYPES.items() if kind == "number"]
NAMES = ["C1", "C2", "M3", "C4"]


# --- generated expressions --------------------------------------------------------------------------


def _number() -> st.SearchStrategy[str]:
    literal = st.floats(-1e7, 1e7, allow_nan=False).map(lambda v: repr(round(v, 3)))
    leaf = st.one_of(st.sampled_from(NUMBER_FIELDS), literal)
    return st.recursive(
        leaf,
        lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        max_leaves=4,
    )


def _condition() -> st.SearchStrategy[str]:
    comparison = st.tuples(_number(), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), _number()).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}"
    )
    types = st.lists(st.sampled_from(TRANSACTION_TYPES), min_size=1, max_size=3).map(
        lambda ts: f"type in [{', '.join(repr(t) for t in ts)}]"
    )
    names = st.tuples(st.sampled_from(["nameOrig", "nameDest"]), st.sampled_from(["==", "!=", "in", "not in"]),
                      st.sampled_from(NAMES)).map(
        lambda t: f"{t[0]} {t[1]} ['{t[2]}']" if "in" in t[1] else f"{t[0]} {t[1]} '{t[2]}'"
    )  # fmt: skip
    leaf = st.one_of(comparison, types, names, st.sampled_from(["true", "false"]))
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            inner.map(lambda c: f"not ({c})"),
        ),
        max_leaves=6,
    )


transactions = st.fixed_dictionaries(
    {
        "step": st.integers(0, 1000),
        "type": st.sampled_from(TRANSACTION_TYPES),
        "amount": st.sampled_from([0.0, 1.0, 250.5, 1e6]),
        "oldbalanceOrg": st.sampled_from([0.0, 10.0, 1e6]),
        "newbalanceOrig": st.sampled_from([0.0, 5.0]),
        "oldbalanceDest": st.sampled_from([0.0, 7.0]),
        "newbalanceDest": st.sampled_from([0.0, 1e6]),
        "nameOrig": st.one_of(st.none(), st.sampled_from(NAMES)),
        "nameDest": st.one_of(st.none(), st.sampled_from(NAMES)),
        "score": st.floats(0, 1),
        # Entity aggregates: counts and sums, or NaN (no history; what the API sends when unknown).
        **{name: st.sampled_from([math.nan, 0.0, 1.0, 7.0, 2500.5]) for name in AGGREGATE_NAMES},
    }
)


def _columns(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    columns: dict[str, np.ndarray] = {}
    for name, kind in FIELD_TYPES.items():
        values = [row[name] for row in rows]
        if name in ("nameOrig", "nameDest"):
            columns[name] = np.asarray(values, dtype=object)
        else:
            columns[name] = np.asarray(values, dtype=str if kind == "string" else np.float64)
    return columns


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_condition(), st.lists(transactions, min_size=1, max_size=8))
def test_generated_conditions_parse_and_agree_row_by_row_and_in_columns(
    source: str, rows: list[dict[str, Any]]
) -> None:
    condition = parse_condition(source)
    one_by_one = [condition.matches(row) for row in rows]  # the compiled closures
    interpreted = [bool(condition.tree.row(row)) for row in rows]
    together = condition.matches_columns(_columns(rows), len(rows)).tolist()
    assert together == one_by_one == interpreted


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_either_parses_or_raises_an_expression_error(source: str) -> None:
    try:
        condition = parse_condition(source)
    except ExpressionError as error:
        assert str(error)
    else:
        assert condition.tree.kind == "bool"


@settings(max_examples=200, deadline=None)
@given(_condition(), st.integers(0, 10), st.sampled_from(["+", ")", "(", "and", "'", "==", "in", "["]))
def test_a_broken_condition_is_refused_with_a_position(source: str, cut: int, junk: str) -> None:
    broken = source[: max(1, len(source) - cut)] + " " + junk
    try:
        parse_condition(broken)
    except ExpressionError as error:
        assert "position" in str(error) or "condition" in str(error)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("__import__('os').system('true')", "unexpected character '.'"),
        ("__import__('os')", "unknown name '__import__'"),
        ("amount.real > 1", "unexpected character '.'"),
        ("amount > 1; amount", "unexpected character ';'"),
        ("type == 'TRANSFR'", "'TRANSFR' is not a transaction type"),
        ("type in ['CASH_IN', 'WIRE']", "'WIRE' is not a transaction type"),
        ("nameOrig > 'C1'", "cannot compare strings"),
        ("amount > 'C1'", "compares a number with a string"),
        ("amount + 1", "must be true or false"),
        ("amount > 1 and 3", "'and' joins conditions"),
        ("not amount", "'not' takes a condition"),
        ("score in [0.5, 'x']", "number literals only"),
        ("(" * 60 + "amount > 1" + ")" * 60, "nested deeper"),
        ("", "empty"),
        ("amount > 1e999", "out of range"),
    ],
)
def test_bad_conditions_say_what_is_wrong(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        parse_condition(source)


def test_division_by_zero_and_missing_names_never_raise() -> None:
    condition = parse_condition("amount / oldbalanceOrg > 10 or nameOrig == 'C1'")
    assert condition.matches({"amount": 5.0, "oldbalanceOrg": 0.0, "nameOrig": None}) is True  # 5/0 = inf
    assert condition.matches({"amount": 0.0, "oldbalanceOrg": 0.0, "nameOrig": None}) is False  # 0/0 = NaN
    columns = {"amount": np.array([5.0, 0.0]), "oldbalanceOrg": np.array([0.0, 0.0]),
               "nameOrig": np.array([None, "C1"], dtype=object)}  # fmt: skip
    assert condition.matches_columns(columns, 2).tolist() == [True, True]


# --- whole documents -----------------------------------------------------------------------------------

rule_entries = st.builds(
    lambda i, when, outcome: {"name": f"rule-{i}", "when": when, "outcome": outcome},
    st.integers(0, 10_000), _condition(), st.sampled_from(["approve", "review", "block"]),
)  # fmt: skip
bands = st.one_of(
    st.just("model"),
    st.tuples(st.floats(0, 1), st.one_of(st.none(), st.floats(0, 1))).map(
        lambda t: {"review_at": min(t[0], t[1] if t[1] is not None else 1.0), "block_at": t[1]}
    ),
)
policies = st.fixed_dictionaries(
    {
        "name": st.text(min_size=1, max_size=20).filter(str.strip),
        "bands": bands,
        "rules": st.lists(rule_entries, max_size=4, unique_by=lambda r: r["name"]),
        "lists": st.fixed_dictionaries(
            {
                "deny": st.fixed_dictionaries({"nameDest": st.lists(st.sampled_from(NAMES[:2]), unique=True)}),
                "allow": st.fixed_dictionaries({"nameOrig": st.lists(st.sampled_from(NAMES[2:]), unique=True)}),
            }
        ),
    }
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies, st.lists(transactions, min_size=2, max_size=12))
def test_a_valid_policy_round_trips_and_decides_the_same_in_batches(
    document: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    policy = DecisionPolicy.from_dict(document)
    again = DecisionPolicy.from_dict(policy.to_dict())
    assert again.sha256 == policy.sha256
    model_bands = Bands(0.5, 0.9)
    scores = np.array([row["score"] for row in rows])
    one_by_one = [policy.decide(row, row["score"], model_bands) for row in rows]
    columns = {name: [row[name] for row in rows] for name in FIELD_TYPES if name != "score"}
    assert policy.decide_columns(columns, scores, model_bands) == one_by_one


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(st.sampled_from(["name", "bands", "rules", "lists",
                                                                             "when", "outcome", "deny", "allow",
                                                                             "nameDest", "review_at", "x"]),
                                                            inner, max_size=4)),
                    max_leaves=12))  # fmt: skip
def test_any_json_is_a_policy_or_a_policy_error(document: Any) -> None:
    try:
        DecisionPolicy.from_dict(document)
    except PolicyError as error:
        assert str(error)


def test_every_problem_of_a_document_is_listed_at_once() -> None:
    with pytest.raises(PolicyError) as raised:
        DecisionPolicy.from_dict(
            {
                "name": "",
                "bands": {"review_at": 0.9, "block_at": 0.2},
                "rules": [
                    {"name": "a", "when": "amt > 1", "outcome": "review"},
                    {"name": "a", "when": "amount > 1", "outcome": "hold"},
                ],
                "lists": {"deny": {"nameOrig": ["C1"], "email": ["x"]}, "allow": {"nameOrig": ["C1"]}},
                "extra": True,
            }
        )
    message = str(raised.value)
    for expected in ["unknown key(s) 'extra'", "name: a non-empty", "block_at 0.2 is below review_at 0.9",
                     "rules[0].when: unknown name 'amt'", "rules[1].name: 'a' is used", "rules[1].outcome",
                     "lists.deny.email", "on both deny and allow"]:  # fmt: skip
        assert expected in message


def test_order_deny_then_allow_then_rules_then_bands() -> None:
    policy = DecisionPolicy.from_dict(
        {
            "name": "order",
            "rules": [
                {"name": "tiny-payments", "when": "type == 'PAYMENT' and amount < 10", "outcome": "approve"},
                {"name": "big-transfer", "when": "type == 'TRANSFER' and amount >= 1000000", "outcome": "review"},
            ],
            "lists": {"deny": {"nameDest": ["C-mule"]}, "allow": {"nameOrig": ["C-payroll"]}},
        }
    )
    bands = Bands(0.5, 0.9)
    base = {"type": "TRANSFER", "amount": 2e6, "nameOrig": "C-payroll", "nameDest": "C-mule"}
    assert policy.decide(base, 0.1, bands).decided_by.name == "deny.nameDest"
    assert policy.decide({**base, "nameDest": "C9"}, 0.99, bands).decided_by.name == "allow.nameOrig"
    decided = policy.decide({**base, "nameOrig": None, "nameDest": None}, 0.99, bands)
    assert (decided.outcome, decided.decided_by.kind, decided.decided_by.name) == ("review", "rule", "big-transfer")
    assert policy.decide({"type": "PAYMENT", "amount": 5.0}, 0.99, bands).outcome == "approve"
    assert policy.decide({"type": "CASH_IN", "amount": 5.0}, 0.95, bands).decided_by.name == "block"
    assert policy.decide({"type": "CASH_IN", "amount": 5.0}, 0.6, bands).outcome == "review"
    assert policy.decide({"type": "CASH_IN", "amount": 5.0}, 0.4, bands).outcome == "approve"
