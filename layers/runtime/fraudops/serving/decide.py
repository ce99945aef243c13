"""Decisions where transactions are scored (``/predict``, ``/predict/batch``, batch scoring): the active
policy kept in memory like the model, outcomes, and reasons for the flagged ones.

``PolicyProvider`` re-checks the store at most every ``model_refresh_seconds`` (one LIST of the
activations) and loads a new activation only when the newest key changed. A policy that fails to load
keeps the one in memory (``/health`` says degraded); with nothing published the built-in policy (the
model's own bands) decides, so a fresh stack answers with outcomes from its first request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fraudops.aggregates.definitions import AGGREGATE_NAMES
from fraudops.core.config import Settings
from fraudops.core.errors import StoreError
from fraudops.core.schema import RAW_FEATURE_COLUMNS
from fraudops.decisions.policy import APPROVE, Bands, Decision, DecisionPolicy, builtin_policy
from fraudops.decisions.reasons import Reason, top_reasons
from fraudops.decisions.store import activation_keys, read_activation, version_name
from fraudops.serving.compiled import UnsupportedModelError
from fraudops.serving.served import ServedModel
from fraudops.serving.treeshap import TreeShap

log = logging.getLogger(__name__)

BUILTIN_VERSION = "builtin"


@dataclass(frozen=True)
class ActivePolicy:
    policy: DecisionPolicy
    version: str  # the published version, or "builtin" (nothing published, or rolled back to it)
    key: str | None  # the activation it came from


BUILTIN = ActivePolicy(builtin_policy(), BUILTIN_VERSION, None)


class PolicyProvider:
    """Thread-safe holder of the active policy."""

    def __init__(
        self,
        settings: Settings,
        keys_reader: Callable[[Settings], list[str]] = activation_keys,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._keys_reader = keys_reader
        self._clock = clock
        self._current = BUILTIN
        self._last_check: float | None = None
        self.last_error: str | None = None
        self._lock = threading.Lock()

    def get(self) -> ActivePolicy:
        if self._due():
            with self._lock:
                if self._due():
                    self._refresh()
        return self._current

    def _due(self) -> bool:
        return self._last_check is None or self._clock() - self._last_check >= self._settings.model_refresh_seconds

    def _refresh(self) -> None:
        self._last_check = self._clock()
        try:
            keys = self._keys_reader(self._settings)
            if not keys:
                self._current, self.last_error = BUILTIN, None
                return
            if keys[-1] == self._current.key:
                self.last_error = None
                return
            activation = read_activation(self._settings, keys[-1])
            self._current = ActivePolicy(activation.loaded(), version_name(activation.version), keys[-1])
            self.last_error = None
            log.info("decision policy version %s is active", activation.version)
        except Exception as error:  # never fail a request over the policy: keep the one in memory
            self.last_error = (
                f"decision policy refresh failed ({type(error).__name__}); keeping version {self._current.version}"
            )
            log.error("decision policy refresh failed; keeping version %s: %s", self._current.version, error)


def pin_policy(settings: Settings) -> dict[str, Any]:
    """The policy a batch-scoring run decides with from its first row to its last: the active activation
    by key (immutable; the batch Lambdas read it themselves, so a large deny list never rides in the
    Map's 256 KB batch input), or the built-in policy."""
    keys = activation_keys(settings)
    if not keys:
        return {"version": BUILTIN_VERSION, "key": None}
    activation = read_activation(settings, keys[-1])
    activation.loaded()  # refuse a run with a policy this code cannot evaluate, before any row
    return {"version": version_name(activation.version), "key": keys[-1], "sha256": activation.sha256}


_pinned: dict[str, ActivePolicy] = {}
_pinned_lock = threading.Lock()


def pinned_policy(settings: Settings, pin: Mapping[str, Any] | None) -> ActivePolicy:
    """The pinned policy, read once per container (activations never change once written)."""
    if not pin or not pin.get("key"):
        return BUILTIN
    key = str(pin["key"])
    with _pinned_lock:
        if key not in _pinned:
            activation = read_activation(settings, key)
            if pin.get("sha256") not in (None, activation.sha256):
                raise StoreError(f"policy activation {key} does not match the checksum pinned for this run")
            _pinned.clear()
            _pinned[key] = ActivePolicy(activation.loaded(), version_name(activation.version), key)
        return _pinned[key]


_model_bands: weakref.WeakKeyDictionary[ServedModel, Bands] = weakref.WeakKeyDictionary()


def model_bands(model: ServedModel) -> Bands:
    """The bands a policy without its own uses: the ones training chose by money, else the F1 threshold
    (read once per model: the spec does not change)."""
    bands = _model_bands.get(model)
    if bands is None:
        bands = _model_bands[model] = Bands.from_spec(model.spec.extra, model.spec.threshold)
    return bands


_tree_shaps: weakref.WeakKeyDictionary[ServedModel, TreeShap | None] = weakref.WeakKeyDictionary()
_tree_shaps_lock = threading.Lock()
_NOT_BUILT = object()


def tree_shap(model: ServedModel) -> TreeShap | None:
    """The model's TreeSHAP tables, built on its first explained row (none for a model they cannot
    express: XGBoost's C library explains it instead). Built lazily, not at load: approvals never need
    them and the cold start stays as it was."""
    tables = _tree_shaps.get(model, _NOT_BUILT)
    if tables is not _NOT_BUILT:
        return tables  # type: ignore[return-value]
    with _tree_shaps_lock:
        if model not in _tree_shaps:
            started = time.perf_counter()
            try:
                _tree_shaps[model] = TreeShap.from_model_json(model.booster.model_json())
                log.info("TreeSHAP tables for version %s built in %.0f ms", model.version,
                         (time.perf_counter() - started) * 1000)  # fmt: skip
            except UnsupportedModelError as error:
                log.info("reasons through XGBoost's C library: %s", error)
                _tree_shaps[model] = None
        return _tree_shaps[model]


def contributions(model: ServedModel, features: np.ndarray) -> np.ndarray:
    """Exact TreeSHAP contributions (rows x features + bias), as XGBoost computes them."""
    tables = tree_shap(model)
    return tables.contributions(features) if tables is not None else model.booster.contributions(features)


def explain(
    model: ServedModel,
    rows: Sequence[Mapping[str, Any]],
    top: int,
    features: np.ndarray | None = None,
    directions: Sequence[int] | None = None,
) -> list[list[Reason]]:
    """Top reasons for each of ``rows`` (transactions as received) from exact TreeSHAP contributions;
    ``features``: their feature matrix when the caller has it already; ``directions``: per row, only
    contributions of that sign (+1, -1) or all (0)."""
    if not rows:
        return []
    if features is None:
        features = model.features({name: [row[name] for row in rows] for name in RAW_FEATURE_COLUMNS})
    found = contributions(model, features)
    names = model.spec.feature_names
    signs = directions or [0] * len(rows)
    return [top_reasons(names, features[i], found[i], rows[i], top, signs[i]) for i in range(len(rows))]


def reason_direction(decision: Decision) -> int:
    """Which contributions may stand beside a decision. The score decided a band outcome: its largest
    contributions either way are what made it. A rule or list decided the others: the model's reasons
    are context and only those pointing the outcome's way are shown (raises for review and block,
    lowers for approve), never one arguing against what was done (docs/decisions.md)."""
    if decision.decided_by.kind == "band":
        return 0
    return -1 if decision.outcome == APPROVE else 1


def decision_fields(decision: Decision, version: str, reasons: list[Reason] | None,
                    decided_by: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """The fields a response and a capture record add beside the probability (``decided_by``: with
    its evidence, ``DecisionPolicy.evidence``)."""
    body: dict[str, Any] = {
        "outcome": decision.outcome,
        "decided_by": decided_by if decided_by is not None else decision.decided_by.as_dict(),
        "policy_version": version,
    }
    if reasons is not None:
        body["reasons"] = [reason.as_dict() for reason in reasons]
    return body


def decide_rows(
    model: ServedModel,
    active: ActivePolicy,
    rows: Sequence[Mapping[str, Any]],
    probabilities: Sequence[float],
    explain_all: bool,
    top: int,
    features: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Outcome, what decided it (with the condition and values that met it) and (flagged rows, or every
    row with ``explain_all``) the reasons; ``features``: the rows' feature matrix, when the caller built
    it to score them."""
    bands = model_bands(model)
    policy = active.policy
    if len(rows) == 1:  # /predict: an approval does nothing more than decide
        decision = policy.decide(rows[0], probabilities[0], bands)
        evidence = policy.evidence(decision.decided_by, decision.outcome, rows[0], probabilities[0], bands)
        if decision.outcome == APPROVE and not explain_all:
            return [decision_fields(decision, active.version, None, evidence)]
        found = explain(model, rows, top, features, [reason_direction(decision)])[0]
        return [decision_fields(decision, active.version, found, evidence)]
    fields = {*RAW_FEATURE_COLUMNS, "nameOrig", "nameDest"}
    columns: dict[str, list[Any]] = {name: [row.get(name) for row in rows] for name in fields}
    columns.update({name: [row.get(name, math.nan) for row in rows] for name in AGGREGATE_NAMES})
    decisions = policy.decide_columns(columns, np.asarray(probabilities), bands)
    wanted = [i for i, d in enumerate(decisions) if explain_all or d.outcome != APPROVE]
    reasons: dict[int, list[Reason]] = {}
    if wanted:
        subset = features[wanted] if features is not None else None
        directions = [reason_direction(decisions[i]) for i in wanted]
        explained = explain(model, [rows[i] for i in wanted], top, subset, directions)
        for index, found in zip(wanted, explained, strict=True):
            reasons[index] = found
    return [
        decision_fields(d, active.version, reasons.get(i),
                        policy.evidence(d.decided_by, d.outcome, rows[i], probabilities[i], bands))
        for i, d in enumerate(decisions)
    ]  # fmt: skip
