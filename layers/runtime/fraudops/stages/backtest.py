"""Back-testing a policy, and per-rule performance: what each list, rule and band decided, and what that
caught and cost, on captured decisions whose labels are known.

One computation, two callers:

- ``rule_performance(decisions, label, amounts)`` tabulates decisions (each with what decided it) by
  list / rule / band: hits, hits per 1,000 decisions, confirmed frauds and their money, legitimate
  payments (friction when the outcome is review or block), pending. The monitor calls it on the outcomes
  the API recorded (``recorded_decisions``): per-rule performance on live traffic.
- ``backtest_policy(settings, draft)`` (``fraudops policy backtest DRAFT.json``) replays a draft and the
  active policy (the built-in one when none is published) on the lake's captured decisions, with the
  score each decision was given and the bands of the model version that gave it, and tabulates both
  with ``rule_performance``. It reads the lake and writes nothing.

Labels follow the monitor's rule (``stages.monitor.matured_labels``): a decision is a confirmed fraud
once a fraud label arrived, legitimate once ``label_maturity_days`` passed without one, and pending
before that (a not-fraud label does not end the wait: a chargeback may still come).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd

from fraudops.aggregates.definitions import AGGREGATE_NAMES
from fraudops.core.config import Settings
from fraudops.core.errors import FraudopsError
from fraudops.decisions.expression import FIELD_TYPES
from fraudops.decisions.policy import (
    APPROVE,
    BLOCK,
    REVIEW,
    Bands,
    DecidedBy,
    Decision,
    DecisionPolicy,
    builtin_policy,
)

FLAGGING: Final = (REVIEW, BLOCK)
_KIND_ORDER: Final = {"list": 0, "rule": 1, "band": 2}
_OUTCOME_ORDER: Final = {BLOCK: 0, REVIEW: 1, APPROVE: 2}
# What a rule or list may read of a captured decision (expression.FIELD_TYPES but the score), and the
# columns a replay reads from the lake's decisions table.
RULE_FIELDS: Final = tuple(name for name in FIELD_TYPES if name != "score" and name not in AGGREGATE_NAMES)
REPLAY_COLUMNS: Final = ("decision_time", "transaction_id", "model_version", "probability", "prediction",
                         *RULE_FIELDS)  # fmt: skip


class BacktestError(FraudopsError):
    """Nothing to back-test on (no decisions in the lake), or a model version's bands cannot be read."""


@dataclass(frozen=True)
class RuleRow:
    """One list, rule or band and what it decided. ``frauds``/``fraud_amount``: confirmed frauds among its
    hits (caught when it reviews or blocks, missed when it approves); ``legitimate``: known legitimate
    payments among them (friction when it reviews or blocks)."""

    kind: str
    name: str
    outcome: str
    hits: int
    per_1000: float  # hits per 1,000 decisions (for a review row: its alerts per 1,000)
    frauds: int
    fraud_amount: float
    legitimate: int
    pending: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.name, self.outcome)


@dataclass(frozen=True)
class Performance:
    """A policy's (or live traffic's) decisions, by what decided them, and the totals."""

    decisions: int
    labeled: int  # confirmed fraud or known legitimate
    pending: int
    frauds: int
    fraud_amount: float
    reviews: int
    blocks: int
    alerts_per_1000: float  # reviews per 1,000 decisions (money.py's definition of an alert)
    flagged_per_1000: float  # reviews and blocks per 1,000
    frauds_caught: int  # confirmed frauds reviewed or blocked
    fraud_amount_caught: float
    legitimate_reviewed: int
    legitimate_blocked: int
    rows: tuple[RuleRow, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rule_performance(
    decisions: Sequence[Decision], label: Any, amounts: Any, include: Iterable[Decision] = ()
) -> Performance:
    """Tabulate ``decisions`` by what decided each. ``label``: 1 confirmed fraud, 0 legitimate, -1 pending
    (one per decision); ``amounts``: each transaction's amount (NaN counts as 0 money); ``include``: rows to
    show even when nothing hit them (a rule that never fires is worth seeing before it is published)."""
    y = np.asarray(label, dtype=np.int8)
    money = np.nan_to_num(np.asarray(amounts, dtype=np.float64), nan=0.0)
    n = len(decisions)
    if not (len(y) == len(money) == n):
        raise ValueError(f"rule performance needs one label and one amount per decision, got {n} decisions, "
                         f"{len(y)} labels, {len(money)} amounts")  # fmt: skip
    codes: dict[Decision, int] = {}
    index = np.fromiter((codes.setdefault(d, len(codes)) for d in decisions), dtype=np.int64, count=n)
    for decision in include:
        codes.setdefault(decision, len(codes))
    size = len(codes)
    fraud, legit, pending = y == 1, y == 0, y < 0
    hits = np.bincount(index, minlength=size)
    frauds = np.bincount(index, weights=fraud, minlength=size)
    fraud_money = np.bincount(index, weights=np.where(fraud, money, 0.0), minlength=size)
    legits = np.bincount(index, weights=legit, minlength=size)
    pendings = np.bincount(index, weights=pending, minlength=size)
    rows = [
        RuleRow(d.decided_by.kind, d.decided_by.name, d.outcome, int(hits[i]), 1000.0 * hits[i] / n,
                int(frauds[i]), float(fraud_money[i]), int(legits[i]), int(pendings[i]))
        for d, i in codes.items()
    ]  # fmt: skip
    rows.sort(key=lambda r: (_KIND_ORDER.get(r.kind, 3), _OUTCOME_ORDER.get(r.outcome, 3), -r.hits, r.name))

    def total(outcomes: Iterable[str], attribute: str) -> Any:
        return sum(getattr(r, attribute) for r in rows if r.outcome in outcomes)

    reviews, blocks = total((REVIEW,), "hits"), total((BLOCK,), "hits")
    return Performance(
        decisions=n, labeled=int((fraud | legit).sum()), pending=int(pending.sum()), frauds=int(fraud.sum()),
        fraud_amount=float(money[fraud].sum()), reviews=reviews, blocks=blocks,
        alerts_per_1000=1000.0 * reviews / n if n else 0.0,
        flagged_per_1000=1000.0 * (reviews + blocks) / n if n else 0.0,
        frauds_caught=total(FLAGGING, "frauds"), fraud_amount_caught=float(total(FLAGGING, "fraud_amount")),
        legitimate_reviewed=total((REVIEW,), "legitimate"), legitimate_blocked=total((BLOCK,), "legitimate"),
        rows=tuple(rows),
    )  # fmt: skip


# --- what the API recorded (the monitor) -------------------------------------------------------------

# The capture's ``details`` is json.dumps of the fields the lake has no column for, decided_by as
# {"kind": ..., "name": ...}; read with one vectorised regex, as the monitor reads the outcome.
_RECORDED = (r'"outcome"\s*:\s*"(approve|review|block)"\s*,\s*"decided_by"\s*:\s*\{\s*"kind"\s*:\s*"(\w+)"\s*,'
             r'\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"')  # fmt: skip


def recorded_decisions(frame: pd.DataFrame) -> list[Decision]:
    """The decision the API recorded for each captured row. A row captured before outcomes existed was
    decided by the model's F1 threshold alone: its review band when ``prediction`` is 1 (``money.f1_bands``)."""
    n = len(frame)
    if n and "details" in frame.columns:
        found = frame["details"].astype("string").str.extract(_RECORDED)
        outcome, kind, name = (found[i].to_numpy(dtype=object, na_value=None) for i in range(3))
    else:
        outcome = kind = name = np.full(n, None, dtype=object)
    predicted = frame["prediction"].to_numpy() >= 1.0 if n else np.zeros(0, dtype=bool)
    cache: dict[tuple[Any, Any, Any, bool], Decision] = {}
    decided: list[Decision] = []
    for o, k, raw, p in zip(outcome.tolist(), kind.tolist(), name.tolist(), predicted.tolist(), strict=True):
        decision = cache.get((o, k, raw, p))
        if decision is None:
            if o is None:
                band = REVIEW if p else APPROVE
                decision = Decision(band, DecidedBy("band", band))
            else:
                decision = Decision(o, DecidedBy(k, json.loads(f'"{raw}"')))  # the name as JSON escaped it
            cache[(o, k, raw, p)] = decision
        decided.append(decision)
    return decided


# --- replaying a policy (the back-test) --------------------------------------------------------------


def possible_decisions(policy: DecisionPolicy, model_bands: Iterable[Bands] = ()) -> list[Decision]:
    """Every list, rule and band ``policy`` can decide by; the block band when its bands block (``"model"``
    bands: those of the model versions that scored the decisions)."""
    found = [Decision(BLOCK, DecidedBy("list", f"deny.{f}")) for f, names in policy.deny.items() if names]
    found += [Decision(APPROVE, DecidedBy("list", f"allow.{f}")) for f, names in policy.allow.items() if names]
    found += [Decision(rule.outcome, DecidedBy("rule", rule.name)) for rule in policy.rules]
    if any(bands.block_at is not None for bands in ([policy.bands] if policy.bands else model_bands)):
        found.append(Decision(BLOCK, DecidedBy("band", BLOCK)))
    return [*found, Decision(REVIEW, DecidedBy("band", REVIEW)), Decision(APPROVE, DecidedBy("band", APPROVE))]


def replay(policy: DecisionPolicy, frame: pd.DataFrame, bands_of: Mapping[str, Bands]) -> list[Decision]:
    """What ``policy`` decides on each captured row: its stored fields and score, with the bands of the
    model version that scored it when the policy has none of its own."""
    decided: list[Decision | None] = [None] * len(frame)
    versions = frame["model_version"].astype(str).to_numpy()
    for version in pd.unique(versions):
        rows = np.flatnonzero(versions == version)
        part = frame.iloc[rows]
        columns = {name: part[name].tolist() for name in RULE_FIELDS if name in part.columns}
        bands = policy.bands or bands_of[str(version)]
        for position, decision in zip(rows.tolist(), policy.decide_columns(columns, part["probability"].to_numpy(),
                                                                           bands), strict=True):  # fmt: skip
            decided[position] = decision
    return decided  # type: ignore[return-value]  # every position is filled: the versions cover the frame


def decision_labels(frame: pd.DataFrame, newest: Mapping[str, bool], horizon: datetime) -> np.ndarray:
    """1 confirmed fraud, 0 legitimate (matured before ``horizon`` without a fraud label), -1 pending."""
    ids = frame["transaction_id"]
    has_id = ids.notna().to_numpy()
    fraud = ids.map(lambda tid: newest.get(tid) is True).to_numpy(dtype=bool) & has_id
    matured = (frame["decision_time"] <= pd.Timestamp(horizon)).to_numpy() & has_id
    return np.where(fraud, 1, np.where(matured, 0, -1)).astype(np.int8)


@dataclass(frozen=True)
class Backtest:
    """The draft and the active policy on the same decisions."""

    draft_name: str
    draft_sha256: str
    active_name: str
    active_version: str  # the published version, or "builtin"
    since: str
    until: str
    model_versions: tuple[str, ...]
    labels_found: int  # label events' transactions in the lake (0: nothing can be measured but hits)
    label_maturity_days: float
    active: Performance
    draft: Performance

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _model_bands(settings: Settings, versions: Iterable[str]) -> dict[str, Bands]:
    """Each model version's own bands (what ``"bands": "model"`` means for the decisions it scored), read
    from the specs saved with the versions, in one registry session."""
    from fraudops.model.artifacts import SPEC_ARTIFACT
    from fraudops.model.features import FeatureSpec
    from fraudops.stages.promote import artifact_location
    from fraudops.store import ModelStore, model_file_uri, read_uri

    bands: dict[str, Bands] = {}
    with ModelStore(settings).session() as client:
        for version in versions:
            try:
                location = artifact_location(client, client.get_model_version(settings.model_name, version))
                spec = FeatureSpec.from_dict(json.loads(read_uri(settings, model_file_uri(location, SPEC_ARTIFACT))))
            except Exception as error:
                raise BacktestError(
                    f"cannot read model version {version}'s bands from the registry ({type(error).__name__}: "
                    f"{error}); a policy with its own bands back-tests without them"
                ) from error
            bands[version] = Bands.from_spec(spec.extra, spec.threshold)
    return bands


def backtest_policy(
    settings: Settings,
    draft: DecisionPolicy,
    days: float | None = None,
    now: datetime | None = None,
    model_bands: Callable[[Settings, Iterable[str]], dict[str, Bands]] = _model_bands,
) -> Backtest:
    """Replay ``draft`` and the active policy on the lake's captured decisions (the newest ``days`` of
    them, or all) and their labels. Reads only; the decisions the curation has compacted are what it sees."""
    from fraudops.decisions.store import active_policy
    from fraudops.lake import Lake
    from fraudops.lake.curation import read_lake_labels

    if days is not None and not days > 0:
        raise ValueError(f"--days must be a positive number of days, got {days:g}")
    # The decisions table records the request's fields, not the entity aggregates the API used (they
    # are in each capture record): replaying such a rule on missing values would say it never fires.
    named = sorted({n for rule in draft.rules for n in rule.condition.tree.names()} & set(AGGREGATE_NAMES))
    if named:
        raise BacktestError(
            f"the draft's rules name entity aggregates ({', '.join(named)}), which the lake's decisions table "
            "does not record yet: score a file with them through `fraudops batch-score` instead (docs/aggregates.md)"
        )
    now = now or datetime.now(UTC)
    lake = Lake(settings)
    files = lake.decisions.files()
    if days is not None:
        first = (now - timedelta(days=days)).strftime("%Y-%m-%d")
        files = [f for f in files if f.dt >= first]
    columns = [*REPLAY_COLUMNS, "details"]  # details: a redelivered capture repeats it, two decisions do not
    frame = lake.decisions.read(columns=columns, files=files).to_pandas() if files else pd.DataFrame()
    if days is not None and len(frame):
        frame = frame[frame["decision_time"] >= pd.Timestamp(now - timedelta(days=days))]
    if frame.empty:
        window = f" in the last {days:g} days" if days is not None else ""
        raise BacktestError(
            f"the lake has no captured decisions{window} to back-test on ({lake.root_uri}): decisions reach "
            "the lake's decisions table when `fraudops curate` (or the monitor) compacts the API's captures"
        )
    # Exact repeats (a redelivered Firehose object) once, as the monitor reads them; then one decision per
    # transaction: a client's retry is one payment, not two (rows without an id are all kept).
    frame = frame.drop_duplicates(ignore_index=True).drop(columns="details")
    frame = frame.sort_values("decision_time", kind="stable", ignore_index=True)
    repeated = frame["transaction_id"].notna() & frame["transaction_id"].duplicated()
    frame = frame[~repeated].reset_index(drop=True)

    activation = active_policy(settings)
    active = activation.loaded() if activation else builtin_policy()
    versions = tuple(str(v) for v in pd.unique(frame["model_version"].astype(str)))
    bands = model_bands(settings, versions) if draft.bands is None or active.bands is None else {}
    newest = read_lake_labels(lake)
    label = decision_labels(frame, newest, now - timedelta(days=settings.label_maturity_days))
    amounts = frame["amount"].to_numpy(dtype=np.float64, na_value=np.nan)
    times = frame["decision_time"]

    def performance(policy: DecisionPolicy) -> Performance:
        return rule_performance(
            replay(policy, frame, bands), label, amounts, possible_decisions(policy, bands.values())
        )

    return Backtest(
        draft_name=draft.name, draft_sha256=draft.sha256, active_name=active.name,
        active_version=str(activation.version) if activation else "builtin",
        since=times.iloc[0].isoformat(timespec="seconds"), until=times.iloc[-1].isoformat(timespec="seconds"),
        model_versions=versions, labels_found=len(newest), label_maturity_days=settings.label_maturity_days,
        active=performance(active), draft=performance(draft),
    )  # fmt: skip


# --- the printed table -------------------------------------------------------------------------------


def _money(value: float) -> str:
    return f"{value:,.0f}"


def format_backtest(result: Backtest) -> str:
    """The table ``fraudops policy backtest`` prints: each list, rule and band of either policy, the
    active policy's figures beside the draft's, then the totals with the change."""
    active, draft = result.active, result.draft
    active_title = ("built-in (no policy published)" if result.active_version == "builtin"
                    else f"active v{result.active_version}")  # fmt: skip
    lines = [
        f"back-test of draft {result.draft_name!r} (sha256 {result.draft_sha256[:12]}) beside the {active_title} "
        f"policy {result.active_name!r}",
        f"on {draft.decisions:,} captured decisions from {result.since} to {result.until} (model version(s) "
        f"{', '.join(result.model_versions)}): {draft.frauds:,} confirmed fraud, {draft.labeled - draft.frauds:,} "
        f"legitimate, {draft.pending:,} pending",
    ]
    if result.labels_found == 0:
        lines.append("note: the lake has no labels yet: frauds caught and friction cannot be measured (every "
                     "decision is pending); hits and alerts per 1,000 are what the policy would ask of the "
                     "team")  # fmt: skip
    elif draft.labeled == 0:
        lines.append("note: none of these decisions has a known label yet (fraud labels or matured ones): frauds "
                     "caught and friction are 0 because nothing is known, not because nothing was caught")  # fmt: skip
    if result.labels_found and draft.pending:
        lines.append(f"note: {draft.pending:,} decision(s) pending (no fraud label, younger than the "
                     f"{result.label_maturity_days:g}-day label maturity): they count in hits, not in frauds or "
                     "legit, so friction counts only payments known to be legitimate")  # fmt: skip
    lines.append("")
    by_key: dict[tuple[str, str, str], dict[str, RuleRow]] = {}
    for who, performance in (("active", active), ("draft", draft)):
        for row in performance.rows:
            by_key.setdefault(row.key, {})[who] = row
    order = sorted(by_key, key=lambda k: (_KIND_ORDER.get(k[0], 3), _OUTCOME_ORDER.get(k[2], 3), k[1]))
    names = [f"{kind} {name}" for kind, name, _ in order]
    width = max([len("decided by"), *(len(n) for n in names)])
    width = min(width, 48)
    cell = "{:>9} {:>8} {:>7} {:>15} {:>8}"
    head = cell.format("hits", "/1,000", "frauds", "fraud money", "legit")
    lines.append(f"{'':<{width}} {'':<8} | {active_title:^51} | {'draft':^51}")
    lines.append(f"{'decided by':<{width}} {'outcome':<8} | {head} | {head}")

    def cells(row: RuleRow | None) -> str:
        if row is None:
            return cell.format("-", "-", "-", "-", "-")
        return cell.format(f"{row.hits:,}", f"{row.per_1000:.2f}", f"{row.frauds:,}", _money(row.fraud_amount),
                           f"{row.legitimate:,}")  # fmt: skip

    for key, name in zip(order, names, strict=True):
        pair = by_key[key]
        lines.append(f"{name[:width]:<{width}} {key[2]:<8} | {cells(pair.get('active'))} | {cells(pair.get('draft'))}")
    lines.append("")
    total_rows: list[tuple[str, float, float, str]] = [
        ("alerts (reviews) per 1,000", active.alerts_per_1000, draft.alerts_per_1000, "{:.2f}"),
        ("flagged (review + block) per 1,000", active.flagged_per_1000, draft.flagged_per_1000, "{:.2f}"),
        ("reviews", active.reviews, draft.reviews, "{:,.0f}"),
        ("blocks", active.blocks, draft.blocks, "{:,.0f}"),
        (f"confirmed frauds caught (of {draft.frauds:,})", active.frauds_caught, draft.frauds_caught, "{:,.0f}"),
        (f"fraud money caught (of {_money(draft.fraud_amount)})", active.fraud_amount_caught,
         draft.fraud_amount_caught, "{:,.0f}"),
        ("friction: legitimate blocked", active.legitimate_blocked, draft.legitimate_blocked, "{:,.0f}"),
        ("friction: legitimate reviewed", active.legitimate_reviewed, draft.legitimate_reviewed, "{:,.0f}"),
    ]  # fmt: skip
    label_width = max(len(t[0]) for t in total_rows)
    lines.append(f"{'totals':<{label_width}} {active_title:>32} {'draft':>16} {'change':>16}")
    for title, before, after, fmt in total_rows:
        change = after - before
        sign = "+" if change > 0 else ""
        lines.append(f"{title:<{label_width}} {fmt.format(before):>32} {fmt.format(after):>16} "
                     f"{sign + fmt.format(change):>16}")  # fmt: skip
    lines.append("")
    lines.append("frauds / legit: confirmed frauds and known legitimate payments among a row's hits (caught or "
                 "friction when it reviews or blocks, missed or passed when it approves); /1,000: hits per 1,000 "
                 "decisions; an alert is a review")  # fmt: skip
    return "\n".join(line.rstrip() for line in lines)
