"""A small IAM identity-policy evaluator: enough of AWS's evaluation logic for this project's roles.

No maintained PyPI evaluator fit: policyuniverse matches actions and resources but evaluates no
condition; moto's ``moto.iam.access_control`` ignores ``Condition`` blocks and ``NotResource``; the
others need AWS (the IAM policy simulator is an API call). So this one stays small and is tested
against what AWS documents (tests/unit/test_iam_policy.py):

- an explicit ``Deny`` wins over any ``Allow``; with no applicable ``Allow`` the request is implicitly
  denied (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html);
- ``Action``/``NotAction`` match case-insensitively with ``*`` and ``?`` wildcards, ``Resource``/
  ``NotResource`` case-sensitively with the same wildcards
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html);
- ``Condition``: every operator block must hold, every key in a block must hold, any of a key's values
  may match; a key the request does not carry makes the condition false (unless ``...IfExists`` or
  ``Null``) (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_logic_multiple-context-keys-or-values.html).

Only identity-based policies are evaluated: SCPs, permission boundaries, session policies, bucket and
key policies are not (docs/iam.md lists what cannot be known without AWS).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class Request:
    """One authorization request: an IAM action on one resource ARN, with its condition context."""

    action: str
    resource: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # "allowed by <sid>" | "explicitly denied by <sid>" | "no statement allows it"
    statement: str | None = None


@lru_cache(maxsize=4096)
def _pattern(glob: str, case_sensitive: bool) -> re.Pattern[str]:
    # IAM wildcards: * any run of characters (including '/' and ':'), ? one character. Nothing else is special.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(f"^{body}$", 0 if case_sensitive else re.IGNORECASE | re.DOTALL)


def wildcard_match(glob: str, value: str, case_sensitive: bool = True) -> bool:
    return bool(_pattern(glob, case_sensitive).match(value))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _statement_id(statement: Mapping[str, Any], index: int) -> str:
    return str(statement.get("Sid") or f"statement {index}")


def _matches_any(patterns: list[Any], value: str, case_sensitive: bool) -> bool:
    return any(wildcard_match(str(p), value, case_sensitive) for p in patterns)


def _condition_operator_holds(operator: str, expected: list[str], actual: list[str]) -> bool:
    base = operator
    for_all = False
    if base.startswith("ForAllValues:"):
        for_all, base = True, base.removeprefix("ForAllValues:")
    elif base.startswith("ForAnyValue:"):
        base = base.removeprefix("ForAnyValue:")
    if base.endswith("IfExists"):
        base = base.removesuffix("IfExists")

    def one(value: str) -> bool:
        if base in ("StringEquals", "ArnEquals"):
            return value in expected
        if base == "StringEqualsIgnoreCase":
            return value.lower() in {e.lower() for e in expected}
        if base in ("StringLike", "ArnLike"):
            return any(wildcard_match(e, value) for e in expected)
        if base in ("StringNotEquals", "ArnNotEquals"):
            return value not in expected
        if base in ("StringNotLike", "ArnNotLike"):
            return not any(wildcard_match(e, value) for e in expected)
        if base == "Bool":
            return value.lower() in {e.lower() for e in expected}
        raise ValueError(f"condition operator {operator} is not supported by this evaluator")

    if for_all:
        return all(one(v) for v in actual)
    return any(one(v) for v in actual)


def _conditions_hold(conditions: Mapping[str, Any], context: Mapping[str, str | list[str]]) -> bool:
    for operator, block in conditions.items():
        for key, expected in block.items():
            present = {k.lower(): v for k, v in context.items()}.get(key.lower())
            if operator == "Null":
                wants_absent = str(_as_list(expected)[0]).lower() == "true"
                if (present is None) != wants_absent:
                    return False
                continue
            if present is None:
                if operator.endswith("IfExists") or operator.startswith("ForAllValues:"):
                    continue
                return False  # a key the request lacks: the condition does not hold
            actual = [str(v) for v in _as_list(present)]
            if not _condition_operator_holds(operator, [str(e) for e in _as_list(expected)], actual):
                return False
    return True


def _element_matches(statement: Mapping[str, Any], element: str, value: str, *, case_sensitive: bool) -> bool:
    """``Action``/``Resource`` must match, ``NotAction``/``NotResource`` must not; a statement with neither
    applies to nothing."""
    if element in statement:
        return _matches_any(_as_list(statement[element]), value, case_sensitive=case_sensitive)
    if f"Not{element}" in statement:
        return not _matches_any(_as_list(statement[f"Not{element}"]), value, case_sensitive=case_sensitive)
    return False


def statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    if not _element_matches(statement, "Action", request.action, case_sensitive=False):
        return False
    if not _element_matches(statement, "Resource", request.resource, case_sensitive=True):
        return False
    return _conditions_hold(statement.get("Condition", {}), request.context)


def evaluate(statements: Sequence[Mapping[str, Any]], request: Request) -> Decision:
    """AWS's decision for one request against one principal's identity-based statements."""
    allowed_by = None
    for index, statement in enumerate(statements):
        if not statement_applies(statement, request):
            continue
        if statement.get("Effect") == "Deny":
            sid = _statement_id(statement, index)
            return Decision(False, f"explicitly denied by {sid}", sid)
        if statement.get("Effect") == "Allow" and allowed_by is None:
            allowed_by = _statement_id(statement, index)
    if allowed_by is not None:
        return Decision(True, f"allowed by {allowed_by}", allowed_by)
    return Decision(False, "no statement allows it")
