"""A decision policy: what turns a score into an outcome a fraud team acts on.

A policy is a JSON document (``docs/decisions.md`` has the reference)::

    {
      "name": "payments-2026-11",
      "bands": {"review_at": 0.35, "block_at": 0.9},       # or "model": the bands training chose by money
      "rules": [{"name": "big-transfer-empties-origin", "outcome": "review",
                 "when": "type == 'TRANSFER' and amount > 1000000 and newbalanceOrig == 0"}],
      "lists": {"deny": {"nameDest": ["C1234"]}, "allow": {"nameOrig": ["C42"]}}
    }

Evaluation order, and what each outcome records as ``decided_by``:
1. the deny lists (``block``), then the allow lists (``approve``): an account a team has judged;
2. the rules, in order, the first that matches;
3. the score bands: ``block`` from ``block_at``, ``review`` from ``review_at``, else ``approve``.

``DecisionPolicy.from_dict`` validates everything (every problem listed at once) before a policy can be
published; a policy that loaded is safe to evaluate on any valid transaction.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

import numpy as np

from fraudops.core.errors import FraudopsError
from fraudops.core.schema import MAX_NAME_LENGTH
from fraudops.decisions.expression import Condition, ExpressionError, parse_condition

APPROVE, REVIEW, BLOCK = "approve", "review", "block"
OUTCOMES: Final = (APPROVE, REVIEW, BLOCK)
LIST_FIELDS: Final = ("nameOrig", "nameDest")
MAX_RULES: Final = 200
MAX_LIST_NAMES: Final = 100_000
MODEL_BANDS: Final = "model"
_TOP_KEYS: Final = frozenset({"name", "description", "bands", "rules", "lists"})
_RULE_KEYS: Final = frozenset({"name", "when", "outcome", "description"})


class PolicyError(FraudopsError, ValueError):
    """A policy document is not valid; the message lists every problem with where it is."""


@dataclass(frozen=True)
class Bands:
    """Score bands: ``score >= block_at`` blocks, ``score >= review_at`` reviews (None: never by score)."""

    review_at: float
    block_at: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {"review_at": self.review_at, "block_at": self.block_at}

    @classmethod
    def from_spec(cls, spec_extra: Mapping[str, Any], threshold: float) -> Bands:
        """The model's own bands: those training chose by money, else review from the F1 threshold."""
        chosen = spec_extra.get("decision_bands")
        if isinstance(chosen, Mapping) and isinstance(chosen.get("review_at"), int | float):
            block = chosen.get("block_at")
            return cls(float(chosen["review_at"]), float(block) if isinstance(block, int | float) else None)
        return cls(float(threshold), None)


@dataclass(frozen=True)
class DecidedBy:
    """What produced an outcome: a ``list`` (deny.nameDest), a ``rule`` (its name) or a ``band``."""

    kind: str
    name: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name}


@dataclass(frozen=True)
class Decision:
    outcome: str
    decided_by: DecidedBy


@dataclass(frozen=True)
class Rule:
    name: str
    condition: Condition
    outcome: str
    description: str = ""

    def to_dict(self) -> dict[str, str]:
        body = {"name": self.name, "when": self.condition.source, "outcome": self.outcome}
        return {**body, "description": self.description} if self.description else body


_BAND_BLOCK, _BAND_REVIEW, _BAND_APPROVE = (
    DecidedBy("band", BLOCK),
    DecidedBy("band", REVIEW),
    DecidedBy("band", APPROVE),
)


@dataclass(frozen=True)
class DecisionPolicy:
    name: str
    bands: Bands | None  # None: the model's bands (``Bands.from_spec``)
    rules: tuple[Rule, ...] = ()
    deny: Mapping[str, frozenset[str]] = field(default_factory=dict)
    allow: Mapping[str, frozenset[str]] = field(default_factory=dict)
    description: str = ""

    # -- the document ----------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any) -> DecisionPolicy:
        problems: list[str] = []
        if not isinstance(data, Mapping):
            raise PolicyError(f"a policy is a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            problems.append(
                f"unknown key(s) {', '.join(map(repr, unknown))} (a policy has {', '.join(sorted(_TOP_KEYS))})"
            )
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            problems.append("name: a non-empty string of at most 128 characters is required")
        description = data.get("description", "")
        if not isinstance(description, str):
            problems.append("description: must be a string")
        bands = _bands(data.get("bands", MODEL_BANDS), problems)
        rules = _rules(data.get("rules", []), problems)
        deny, allow = _lists(data.get("lists", {}), problems)
        if problems:
            raise PolicyError(f"the policy is not valid ({len(problems)} problem(s)): " + "; ".join(problems))
        return cls(str(name), bands, rules, deny, allow, str(description))

    def to_dict(self) -> dict[str, Any]:
        """The canonical document (lists sorted): what is stored, hashed and shown."""
        lists: dict[str, dict[str, list[str]]] = {}
        for kind, entries in (("deny", self.deny), ("allow", self.allow)):
            named = {f: sorted(names) for f, names in entries.items() if names}
            if named:
                lists[kind] = named
        document: dict[str, Any] = {
            "name": self.name,
            "bands": self.bands.to_dict() if self.bands else MODEL_BANDS,
            "rules": [rule.to_dict() for rule in self.rules],
            "lists": lists,
        }
        if self.description:
            document["description"] = self.description
        return document

    def canonical_json(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json()).hexdigest()

    # -- deciding ----------------------------------------------------------------------------------------

    @cached_property
    def _rules_by_name(self) -> dict[str, Rule]:
        return {rule.name: rule for rule in self.rules}

    def evidence(
        self, decided_by: DecidedBy, outcome: str, transaction: Mapping[str, Any], score: float, model_bands: Bands
    ) -> dict[str, Any]:
        """``decided_by`` with what met it: the condition (a rule's ``when``, the list, the band's
        threshold) and the values it read for this transaction, in words too (``summary``). A rule or list
        decision also says what the score bands alone would have given (``score_outcome``): context,
        never what decided."""
        bands = self.bands or model_bands
        if decided_by.kind == "band":  # most rows: the texts are made once per bands (~1 us a row)
            condition, short = _band_conditions(bands)[decided_by.name]
            return {"kind": "band", "name": decided_by.name, "condition": condition, "values": {"score": score},
                    "summary": f"score {score:.4g}: {short}"}  # fmt: skip
        body: dict[str, Any] = decided_by.as_dict()
        if decided_by.kind == "list":
            kind, field_name = decided_by.name.split(".", 1)
            value = transaction.get(field_name)
            body["condition"] = f"{field_name} is on the {kind} list"
            body["values"] = {field_name: value}
            body["summary"] = f"{field_name} {_show(value)} is on the {kind} list"
        else:
            rule = self._rules_by_name[decided_by.name]
            read = {**transaction, "score": score}
            body["condition"] = rule.condition.source
            body["values"] = {name: read.get(name) for name in rule.condition.fields}
            shown = ", ".join(f"{name}={_show(value)}" for name, value in body["values"].items())
            body["summary"] = f"rule {rule.name!r} matched: {rule.condition.source} with {shown}"
        body["score_outcome"] = _band_outcome(score, bands)
        return body

    def effective_bands(self, model_bands: Bands) -> Bands:
        return self.bands or model_bands

    def decide(self, transaction: Mapping[str, Any], score: float, model_bands: Bands) -> Decision:
        """One transaction (its fields as received) and its score."""
        for field_name, names in self.deny.items():
            if transaction.get(field_name) in names:
                return Decision(BLOCK, DecidedBy("list", f"deny.{field_name}"))
        for field_name, names in self.allow.items():
            if transaction.get(field_name) in names:
                return Decision(APPROVE, DecidedBy("list", f"allow.{field_name}"))
        if self.rules:
            values = {**transaction, "score": score}
            for rule in self.rules:
                if rule.condition.matches(values):
                    return Decision(rule.outcome, DecidedBy("rule", rule.name))
        bands = self.bands or model_bands
        if bands.block_at is not None and score >= bands.block_at:
            return Decision(BLOCK, _BAND_BLOCK)
        if score >= bands.review_at:
            return Decision(REVIEW, _BAND_REVIEW)
        return Decision(APPROVE, _BAND_APPROVE)

    def decide_columns(
        self, columns: Mapping[str, Sequence[Any]], scores: np.ndarray, model_bands: Bands
    ) -> list[Decision]:
        """Many transactions at once (``columns``: each field's values, names may hold None); the same
        result as ``decide`` row by row, vectorised: the batch paths score up to millions of rows."""
        n = len(scores)
        scores = np.asarray(scores, dtype=np.float64)
        bands = self.bands or model_bands
        table: list[Decision] = [
            Decision(APPROVE, _BAND_APPROVE), Decision(REVIEW, _BAND_REVIEW), Decision(BLOCK, _BAND_BLOCK)
        ]  # fmt: skip
        chosen = np.where(scores >= bands.review_at, 1, 0)
        if bands.block_at is not None:
            chosen[scores >= bands.block_at] = 2
        if self.rules:
            needed = set().union(*(rule.condition.names for rule in self.rules))
            values = {name: _array(columns.get(name), n, name) for name in needed if name != "score"}
            values["score"] = scores
            for rule in reversed(self.rules):  # the first match wins: earlier rules overwrite later ones
                table.append(Decision(rule.outcome, DecidedBy("rule", rule.name)))
                chosen[rule.condition.matches_columns(values, n)] = len(table) - 1
        for kind, outcome, entries in (("allow", APPROVE, self.allow), ("deny", BLOCK, self.deny)):
            for field_name, names in entries.items():  # deny last: it beats allow
                if not names or columns.get(field_name) is None:
                    continue
                table.append(Decision(outcome, DecidedBy("list", f"{kind}.{field_name}")))
                hit = np.fromiter((value in names for value in columns[field_name]), dtype=bool, count=n)
                chosen[hit] = len(table) - 1
        return [table[i] for i in chosen.tolist()]


def _band_outcome(score: float, bands: Bands) -> str:
    if bands.block_at is not None and score >= bands.block_at:
        return BLOCK
    return REVIEW if score >= bands.review_at else APPROVE


@functools.lru_cache(maxsize=64)
def _band_conditions(bands: Bands) -> dict[str, tuple[str, str]]:
    """Each band's condition, exact and short (4 significant digits, for the summary)."""
    bands_met = [band for band in OUTCOMES if band != BLOCK or bands.block_at is not None]
    return {band: (_band_condition(band, bands), _band_condition(band, bands, short=True)) for band in bands_met}


def _band_condition(band: str, bands: Bands, short: bool = False) -> str:
    """The threshold a band decision met, as a condition in the rule language's terms (``short``: 4
    significant digits, for the summary; the condition itself is exact)."""

    def show(value: float | None) -> str:
        return f"{value:.4g}" if short else repr(value)

    if band == BLOCK:
        return f"score >= {show(bands.block_at)} (block_at)"
    if band == REVIEW:
        below = f" and score < {show(bands.block_at)} (block_at)" if bands.block_at is not None else ""
        return f"score >= {show(bands.review_at)} (review_at){below}"
    return f"score < {show(bands.review_at)} (review_at)"


def _show(value: Any) -> str:
    """A value as an analyst reads it: 25000 not 25000.0, strings quoted, a missing name as missing."""
    if value is None:
        return "missing"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _array(values: Sequence[Any] | None, n: int, name: str) -> np.ndarray:
    if values is None:
        return np.full(n, None, dtype=object)
    if name in LIST_FIELDS:
        return np.asarray(values, dtype=object)
    if name == "type":
        return np.asarray(values, dtype=str)
    return np.asarray(values, dtype=np.float64)


def _probability(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def _bands(value: Any, problems: list[str]) -> Bands | None:
    if value == MODEL_BANDS:
        return None
    if not isinstance(value, Mapping):
        problems.append(f"bands: '{MODEL_BANDS}' or an object with review_at (and block_at)")
        return None
    unknown = sorted(set(value) - {"review_at", "block_at"})
    if unknown:
        problems.append(f"bands: unknown key(s) {', '.join(map(repr, unknown))}")
    review, block = value.get("review_at"), value.get("block_at")
    if not _probability(review):
        problems.append("bands.review_at: a score in [0, 1] is required")
        return None
    if block is not None and not _probability(block):
        problems.append("bands.block_at: a score in [0, 1], or null for no blocking by score")
        return None
    if block is not None and block < review:
        problems.append(f"bands: block_at {block} is below review_at {review}")
        return None
    return Bands(float(review), None if block is None else float(block))  # type: ignore[arg-type]


def _rules(value: Any, problems: list[str]) -> tuple[Rule, ...]:
    if not isinstance(value, list):
        problems.append("rules: a list of {name, when, outcome} objects")
        return ()
    if len(value) > MAX_RULES:
        problems.append(f"rules: at most {MAX_RULES}, got {len(value)}")
        return ()
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        where = f"rules[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where}: an object with name, when and outcome")
            continue
        unknown = sorted(set(item) - _RULE_KEYS)
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
        name, when, outcome = item.get("name"), item.get("when"), item.get("outcome")
        description = item.get("description", "")
        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            problems.append(f"{where}.name: a non-empty string of at most 128 characters is required")
            name = None
        elif name in seen:
            problems.append(f"{where}.name: {name!r} is used by an earlier rule (names identify outcomes)")
        else:
            seen.add(name)
        if outcome not in OUTCOMES:
            problems.append(f"{where}.outcome: one of {', '.join(OUTCOMES)}, got {outcome!r}")
        if not isinstance(description, str):
            problems.append(f"{where}.description: must be a string")
            description = ""
        try:
            condition = parse_condition(when)  # type: ignore[arg-type]  # it checks the type itself
        except ExpressionError as error:
            problems.append(f"{where}.when: {error}")
            continue
        if name is not None and outcome in OUTCOMES:
            rules.append(Rule(name, condition, str(outcome), description))
    return tuple(rules)


def _lists(value: Any, problems: list[str]) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    result: dict[str, dict[str, frozenset[str]]] = {"deny": {}, "allow": {}}
    if not isinstance(value, Mapping):
        problems.append("lists: an object with 'deny' and/or 'allow'")
        return {}, {}
    unknown = sorted(set(value) - set(result))
    if unknown:
        problems.append(f"lists: unknown key(s) {', '.join(map(repr, unknown))} (deny, allow)")
    for kind in result:
        entries = value.get(kind, {})
        if not isinstance(entries, Mapping):
            problems.append(f"lists.{kind}: an object of field -> list of account names")
            continue
        for field_name, names in entries.items():
            where = f"lists.{kind}.{field_name}"
            if field_name not in LIST_FIELDS:
                problems.append(f"{where}: lists match {' or '.join(LIST_FIELDS)} only")
                continue
            if not isinstance(names, list) or len(names) > MAX_LIST_NAMES:
                problems.append(f"{where}: a list of at most {MAX_LIST_NAMES} account names")
                continue
            bad = [n for n in names if not isinstance(n, str) or not n or len(n) > MAX_NAME_LENGTH]
            if bad:
                problems.append(
                    f"{where}: {len(bad)} entries are not account names of 1-{MAX_NAME_LENGTH} characters, "
                    f"first {bad[0]!r}"
                )
                continue
            result[kind][field_name] = frozenset(names)
    for field_name in LIST_FIELDS:
        both = result["deny"].get(field_name, frozenset()) & result["allow"].get(field_name, frozenset())
        if both:
            problems.append(
                f"lists: {len(both)} {field_name} name(s) on both deny and allow, first {sorted(both)[0]!r}"
            )
    return result["deny"], result["allow"]


def builtin_policy() -> DecisionPolicy:
    """What serves before any policy is published: the model's bands, no rules, no lists."""
    return DecisionPolicy("model bands", None, description="built in: the model's score bands only")
