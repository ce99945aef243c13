"""The monitor stage: read a window of captured decisions and compare them, per model version that
served them, with that version's training profile (drift), the expected flagged rate (volume), and
the labels that have arrived (realized performance). Writes a JSON and an HTML report beside the
artifacts and, when drift stays at the act level for ``drift_windows`` windows in a row (and the
cooldown has passed), starts a retraining with ``{"reason": "drift", ...}``.

Windows: a run without an explicit window starts where the last one ended and ends one capture delivery
delay before now (``monitor_window``), so consecutive runs cover time once, including the minutes
Firehose still held when the previous run started. "In a row" means consecutive non-overlapping
windows: a window that overlaps the previous one (a re-run) is reported and never counted, a gap
breaks the chain, and a window too small to judge leaves it as it was.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fraudops.core.config import Settings
from fraudops.core.errors import ArtifactMissingError, StoreError
from fraudops.core.schema import RAW_FEATURE_COLUMNS
from fraudops.lake import Lake
from fraudops.lake.curation import compact_labels, compact_retrying, read_lake_labels
from fraudops.lake.decision_window import read_decision_window
from fraudops.model.artifacts import SPEC_ARTIFACT
from fraudops.model.features import FeatureSpec, build_features
from fraudops.model.metrics import MetricsError
from fraudops.monitoring.capture import delivery_delay
from fraudops.monitoring.profile import ACT, PROFILE_ARTIFACT, compare
from fraudops.monitoring.report import render_html
from fraudops.stages.backtest import recorded_decisions, rule_performance
from fraudops.store import ModelStore, blob_store, model_file_uri, read_uri

log = logging.getLogger(__name__)

STATE_KEY = "monitoring/state.json"
Trigger = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class VersionContext:
    spec: FeatureSpec
    profile: dict[str, Any] | None


def _version_context(settings: Settings, version: str) -> VersionContext:
    """The spec and the training profile of a registered version (one registry read, two files)."""
    from fraudops.stages.promote import artifact_location

    with ModelStore(settings).session() as client:
        location = artifact_location(client, client.get_model_version(settings.model_name, version))
    spec = FeatureSpec.from_dict(json.loads(read_uri(settings, model_file_uri(location, SPEC_ARTIFACT))))
    try:
        profile = json.loads(read_uri(settings, model_file_uri(location, PROFILE_ARTIFACT)))
    except ArtifactMissingError:
        profile = None  # trained before profiles existed
    return VersionContext(spec, profile)


def _too_few(count: int, minimum: int, what: str, setting: str) -> str:
    return f"{count} {what}: too few to judge (at least {minimum}, {setting})"


def _realized(
    decisions: pd.DataFrame, label: np.ndarray, minimum: int = 1, flagged: np.ndarray | None = None
) -> dict[str, Any] | None:
    """Realized performance over the settled decisions (``label``: 1 fraud, 0 not, -1 pending). A decision
    counts as caught when it was flagged (``flagged``: review or block, ``_outcomes``), the same flag as the
    report's flagged rate and the money caught, so recall and amount recall measure one thing."""
    known = label >= 0
    if not known.any():
        return None
    labeled = int(known.sum())
    if labeled < minimum:
        return {"labeled": labeled, "too_few": _too_few(labeled, minimum, SETTLED_WHAT,
                                                         "FRAUDOPS_MONITOR_MIN_LABELED")}  # fmt: skip
    y = label[known].astype(np.int64)
    predicted = (flagged if flagged is not None else _outcomes(decisions)[1])[known]
    scores = decisions["probability"].to_numpy()[known]
    tp = int(np.sum(predicted & (y == 1)))
    fp = int(np.sum(predicted & (y == 0)))
    fn = int(np.sum(~predicted & (y == 1)))
    # Money: what the outcomes (review/block) caught of the labeled fraud, by amount. Decisions captured
    # before outcomes existed count as flagged when their prediction was 1.
    amounts = decisions["amount"].to_numpy(dtype=np.float64, na_value=0.0)[known]
    fraud_amount = float(amounts[y == 1].sum())
    caught = float(amounts[(y == 1) & predicted].sum())
    auprc = None
    if 0 < y.sum() < len(y):
        from sklearn.metrics import average_precision_score

        auprc = float(average_precision_score(y, scores))
    return {
        "labeled": labeled,
        "fraud": int(y.sum()),
        "flagged": tp + fp,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "auprc": auprc,
        "fraud_amount": fraud_amount,
        "fraud_amount_caught": caught,
        "amount_recall": caught / fraud_amount if fraud_amount else None,
    }


# What a settled decision is, in the words every count of them uses (JSON, HTML, too-few notes).
SETTLED_WHAT = "settled decisions (a fraud label, or no fraud label after the maturity period)"


def label_status(label: np.ndarray, received: np.ndarray) -> dict[str, Any]:
    """The one source of every label count a report shows, each a count of this window's decisions:
    ``label`` as ``matured_labels`` returns it, ``received``: a label of either kind has arrived. A
    not-fraud label does not settle a decision before maturity (a chargeback may still come), so
    ``labels_received`` and ``settled`` differ, and the report names both."""
    decisions = len(label)
    fraud = int(np.sum(label == 1))
    settled = int(np.sum(label >= 0))
    received_count = int(np.sum(received))
    return {
        "decisions": decisions,
        "labels_received": received_count,
        "fraud_labels": fraud,
        "not_fraud_labels": received_count - fraud,
        "settled": settled,
        "settled_fraud": fraud,
        "settled_not_fraud": settled - fraud,
        "pending": decisions - settled,
        "pending_share": (decisions - settled) / decisions if decisions else None,
    }


def go_live(decisions: pd.DataFrame, label: np.ndarray, flagged: np.ndarray) -> dict[str, Any]:
    """What is known before anything matures: of the decisions with a fraud label (confirmed frauds),
    how many and how much money were flagged (review or block). Read with care: frauds that were
    reviewed tend to be confirmed sooner than those that slipped through, so early shares run high."""
    fraud = label == 1
    amounts = decisions["amount"].to_numpy(dtype=np.float64, na_value=0.0)
    count, caught = int(fraud.sum()), int(np.sum(fraud & flagged))
    amount, amount_caught = float(amounts[fraud].sum()), float(amounts[fraud & flagged].sum())
    return {
        "confirmed_frauds": count,
        "confirmed_frauds_flagged": caught,
        "flagged_share_of_confirmed_frauds": caught / count if count else None,
        "confirmed_fraud_amount": amount,
        "confirmed_fraud_amount_caught": amount_caught,
        "caught_share_of_confirmed_fraud_amount": amount_caught / amount if amount else None,
    }


# The outcome rides in the capture's ``details`` (json.dumps of the fields the lake has no column for);
# read as columns with one vectorised regex, not a million parsed JSON objects. Only the top level has an
# "outcome" key (a rule named "outcome" appears as a value, never followed by a colon).
_OUTCOME = r'"outcome"\s*:\s*"(approve|review|block)"'


def _outcomes(decisions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each decision's outcome (None when captured before outcomes existed) and whether it was flagged:
    review or block, or, without an outcome, a prediction of 1."""
    if len(decisions) and "details" in decisions.columns:
        found = decisions["details"].astype("string").str.extract(_OUTCOME, expand=False)
        outcome = found.to_numpy(dtype=object, na_value=None)
    else:
        outcome = np.full(len(decisions), None, dtype=object)
    has_outcome = np.array([o is not None for o in outcome], dtype=bool)
    by_outcome = (outcome == "review") | (outcome == "block")
    flagged = np.where(has_outcome, by_outcome, decisions["prediction"].to_numpy() >= 1.0)
    return outcome, flagged.astype(bool)


def _version_section(
    settings: Settings, version: str, decisions: pd.DataFrame, label: np.ndarray, received: np.ndarray
) -> dict[str, Any]:
    outcome, flagged = _outcomes(decisions)
    realized = _realized(decisions, label, settings.monitor_min_labeled, flagged)
    section: dict[str, Any] = {"count": len(decisions), "realized": realized, "labels": label_status(label, received),
                               "go_live": go_live(decisions, label, flagged)}  # fmt: skip
    if len(decisions):  # what the outcomes asked of the team, whatever the count
        section["outcomes"] = {name: int(np.sum(outcome == name)) for name in ("approve", "review", "block")}
        section["flagged"] = int(flagged.sum())  # the one numerator of the flagged rate and per 1,000
        section["alerts_per_1000"] = 1000.0 * section["outcomes"]["review"] / len(decisions)
        section["flagged_per_1000"] = 1000.0 * section["flagged"] / len(decisions)
    if len(decisions) < settings.monitor_min_records:
        # PSI over 10 bins from a handful of decisions is noise (2 records gave PSI 10.7 and a flagged
        # rate of 1.0): say how many there were instead of a figure an alarm would act on.
        section["too_few"] = _too_few(len(decisions), settings.monitor_min_records, "decisions",
                                      "FRAUDOPS_MONITOR_MIN_RECORDS")  # fmt: skip
        return section
    section["flagged_rate"] = section["flagged"] / len(decisions)  # review or block: flagged_per_1000 / 1000
    # The model's own view, apart from the outcomes: scores at or above its F1 threshold (``prediction``).
    section["threshold_rate"] = float(np.mean(decisions["prediction"].to_numpy() >= 1.0))
    try:
        context = _version_context(settings, version)
    except (StoreError, MetricsError, KeyError, ValueError) as error:
        section["problem"] = f"cannot read version {version}'s spec or profile: {error}"
        return section
    if context.profile is None:
        return section
    columns = {name: decisions[name].to_numpy(dtype=object if name == "type" else None)
               for name in RAW_FEATURE_COLUMNS}  # fmt: skip
    names = list(context.spec.feature_names)
    features = build_features(columns, names)
    scores = decisions["probability"].to_numpy()
    section["drift"] = compare(context.profile, features, names, columns["type"], scores)
    section["expected_flagged_rate"] = context.profile["expected_flagged_rate"]
    # The score the training share counts from (profiles before ``flagged_at`` counted from the threshold).
    section["expected_flagged_at"] = float(context.profile.get("flagged_at", context.spec.threshold))
    section["expected_flagged_basis"] = "review band" if "flagged_at" in context.profile else "F1 threshold"
    section["expected_threshold_rate"] = context.profile.get("expected_threshold_rate",
                                                             context.profile["expected_flagged_rate"])  # fmt: skip
    return section


def matured_labels(
    settings: Settings, decisions: pd.DataFrame, until: datetime
) -> tuple[np.ndarray, np.ndarray, set[str]]:
    """Each decision's label for realized metrics (1 fraud, 0 not fraud, -1 pending), whether a label of
    either kind has arrived for it, and every labeled id.

    New label objects are first compacted into the lake's ``labels`` table (incremental: only those
    written since the last compaction are read), then read from it, a request per partition file. A
    decision counts as fraud once a fraud label arrived, as not fraud once ``label_maturity_days``
    passed without one, and is pending before that (left out of the realized metrics)."""
    lake = Lake(settings)
    compact_retrying(lambda: compact_labels(settings, lake, datetime.now(UTC)))
    newest = read_lake_labels(lake)
    horizon = pd.Timestamp(until - timedelta(days=settings.label_maturity_days))
    ids = decisions["transaction_id"]
    has_id = ids.notna().to_numpy()
    fraud = ids.map(lambda tid: newest.get(tid) is True).to_numpy(dtype=bool) & has_id
    matured = (decisions["decision_time"] <= horizon).to_numpy() & has_id
    label = np.where(fraud, 1, np.where(matured, 0, -1)).astype(np.int8)
    received = ids.isin(set(newest)).to_numpy(dtype=bool) & has_id
    return label, received, set(newest)


def _load_state(settings: Settings) -> dict[str, Any]:
    body = blob_store(settings).get_or_none(STATE_KEY)
    return json.loads(body) if body else {"consecutive_act": 0, "last_trigger": None, "trend": []}


# A run after a long pause starts at most this far back (the report names the time left out).
MAX_CATCH_UP = timedelta(days=1)


def monitor_window(
    settings: Settings, now: datetime, since: datetime | None = None, until: datetime | None = None
) -> tuple[datetime, datetime]:
    """The window of a run: given ends win; otherwise it ends one capture delivery delay before ``now``
    (every record before that has reached the store) and starts where the last window ended."""
    if until is None:
        until = (now - delivery_delay(settings)).replace(second=0, microsecond=0)
    if since is None:
        last = _load_state(settings).get("last_until")
        previous = datetime.fromisoformat(last) if last else None
        if previous is not None and previous <= until and until - previous <= MAX_CATCH_UP:
            since = previous
        else:
            since = until - timedelta(minutes=settings.monitor_window_minutes)
    return since, until


def _empty_window_report(since: datetime, until: datetime, last_until: str) -> dict[str, Any]:
    return {"since": since.isoformat(timespec="seconds"), "until": until.isoformat(timespec="seconds"),
            "records": 0, "labeled": 0, "drifted": [], "not_judged": {}, "versions": {}, "max_feature_psi": 0.0,
            "consecutive_act_windows": None, "html_key": None, "html_uri": None,
            "skipped": f"nothing new to monitor: the last window ended at {last_until}"}  # fmt: skip


def run_monitor(
    settings: Settings, since: datetime, until: datetime, trigger: Trigger | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Monitor the window [since, until); returns the report (with the keys of its JSON and HTML).
    ``now`` (default: one delivery delay after ``until``, as ``monitor_window`` sets it) is when the
    run happens, for the compaction of what has arrived."""
    state = _load_state(settings)
    if since >= until:
        return _empty_window_report(since, until, str(state.get("last_until")))
    decisions = read_decision_window(settings, since, until, now or until + delivery_delay(settings))
    label, received, labeled_ids = matured_labels(settings, decisions, until)
    versions = decisions["model_version"].to_numpy()
    by_version = {str(v): versions == v for v in pd.unique(versions)}  # in order of first appearance
    ids = decisions["transaction_id"]
    captured_ids = set(ids.dropna())
    report: dict[str, Any] = {
        "since": since.isoformat(timespec="seconds"),
        "until": until.isoformat(timespec="seconds"),
        "records": len(decisions),
        "labels": label_status(label, received),  # "labeled" and "pending" below are two of its counts
        "label_maturity_days": settings.label_maturity_days,
        "thresholds": {"watch": 0.1, "act": ACT},
    }
    report["versions"] = {
        v: _version_section(settings, v, decisions[mask], label[mask], received[mask]) for v, mask in by_version.items()
    }
    report["labeled"], report["pending"] = report["labels"]["labels_received"], report["labels"]["pending"]
    flagged = _outcomes(decisions)[1]
    report["go_live"] = go_live(decisions, label, flagged)
    drifted = sorted({
        f"{version}:{name}"
        for version, section in report["versions"].items() if section.get("drift")
        for name in section["drift"]["drifted"] + (["score"] if section["drift"]["score"]["psi"] >= ACT else [])
    })  # fmt: skip
    report["drifted"] = drifted
    report["not_judged"] = {v: section["too_few"] for v, section in report["versions"].items() if "too_few" in section}
    report["realized"] = _realized(decisions, label, settings.monitor_min_labeled, flagged)
    if len(decisions):  # per list / rule / band, as the API decided (the same table `policy backtest` prints)
        amounts = decisions["amount"].to_numpy(dtype=np.float64, na_value=np.nan)
        report["rules"] = rule_performance(recorded_decisions(decisions), label, amounts).as_dict()
    report["max_feature_psi"] = max(
        (section["drift"]["max_feature_psi"] for section in report["versions"].values() if section.get("drift")),
        default=0.0,
    )
    report["labels_without_decision_in_window"] = len(labeled_ids - captured_ids)

    judged = any("drift" in section for section in report["versions"].values())
    counted = _count_in_a_row(report, state, since, until, judged)
    last = datetime.fromisoformat(state["last_trigger"]) if state.get("last_trigger") else None
    cooled = last is None or until - last >= timedelta(hours=settings.retrain_cooldown_hours)
    report["consecutive_act_windows"] = state["consecutive_act"]
    if counted and drifted and state["consecutive_act"] >= settings.drift_windows:
        if not cooled:
            report["retraining"] = {
                "skipped": f"cooldown: the last drift retraining started at {state['last_trigger']}"
            }
        elif trigger is not None:
            payload = {"feature_set": "engineered", "reason": "drift", "drifted": drifted[:20],
                       "window": {"since": report["since"], "until": report["until"]}}  # fmt: skip
            report["retraining"] = {"started": trigger(payload), "input": payload}
            state["last_trigger"] = until.isoformat(timespec="seconds")
            state["consecutive_act"] = 0
    for version, section in report["versions"].items():
        realized = section.get("realized") or {}
        drift = section.get("drift") or {}
        row = {
            "since": report["since"],
            "until": report["until"],
            "version": version,
            "decisions": section["count"],
            "labeled": realized.get("labeled", 0),  # settled decisions, as the realized figures count them
            "pending": section["labels"]["pending"],
            "confirmed_frauds": section["go_live"]["confirmed_frauds"],
            "confirmed_frauds_flagged": section["go_live"]["confirmed_frauds_flagged"],
            "precision": round(realized["precision"], 4) if "precision" in realized else None,
            "recall": round(realized["recall"], 4) if "recall" in realized else None,
            "amount_recall": round(realized["amount_recall"], 4) if realized.get("amount_recall") is not None else None,
            "alerts_per_1000": round(section["alerts_per_1000"], 3) if "alerts_per_1000" in section else None,
            "max_psi": round(drift["max_feature_psi"], 4) if drift else None,
        }
        if counted:  # a re-run of a window already in the trend would list it twice
            state["trend"] = [*state.get("trend", []), row][-50:]

    store = blob_store(settings)
    stamp = until.strftime("%Y%m%dT%H%M%SZ")
    report["json_key"], report["html_key"] = f"monitoring/{stamp}/report.json", f"monitoring/{stamp}/report.html"
    report["html_uri"] = store.uri(report["html_key"])
    store.put(report["json_key"], json.dumps(report, indent=2, default=float).encode())
    store.put(report["html_key"], render_html(report, state["trend"]).encode(), content_type="text/html")
    store.put(STATE_KEY, json.dumps(state).encode())
    log.info("monitor %s..%s: %d records, drifted %s", report["since"], report["until"], len(decisions), drifted)
    return report


def _count_in_a_row(report: dict[str, Any], state: dict[str, Any], since: datetime, until: datetime,
                    judged: bool) -> bool:  # fmt: skip
    """Advance the windows-in-a-row count; False when this window overlaps the last one (not counted)."""
    last = datetime.fromisoformat(state["last_until"]) if state.get("last_until") else None
    if last is not None and since < last:
        report["in_a_row"] = (f"not counted: this window overlaps the previous one (which ended at "
                              f"{state['last_until']}); windows in a row must not overlap")  # fmt: skip
        return False
    if last is not None and since > last:
        state["consecutive_act"] = 0  # a gap: the windows are not consecutive
        report["in_a_row"] = f"restarted: a gap since the previous window, which ended at {state['last_until']}"
    if judged:
        state["consecutive_act"] = state["consecutive_act"] + 1 if report["drifted"] else 0
    else:
        why = "no decisions captured in this window" if not report["records"] else "too few decisions to judge drift"
        report.setdefault("in_a_row", f"unchanged: {why}")
    state["last_until"] = until.isoformat()
    return True


def metric_points(report: dict[str, Any]) -> list[tuple[str, float, dict[str, str]]]:
    """(name, value, dimensions) for every figure, for the handler to publish as EMF metrics."""
    points: list[tuple[str, float, dict[str, str]]] = []
    for version, section in report["versions"].items():
        dims = {"ModelVersion": version}
        points.append(("Predictions", float(section["count"]), dims))
        if "flagged_rate" in section:  # judged only from monitor_min_records decisions
            points.append(("FlaggedRate", section["flagged_rate"], dims))
        if "expected_flagged_rate" in section:
            points.append(("ExpectedFlaggedRate", section["expected_flagged_rate"], dims))
        drift = section.get("drift")
        if drift:
            points.append(("ScorePSI", drift["score"]["psi"], dims))
            points.append(("FeaturePSI", drift["type"]["psi"], {**dims, "Feature": "type"}))
            points += [("FeaturePSI", f["psi"], {**dims, "Feature": name}) for name, f in drift["features"].items()]
            points.append(("MaxFeaturePSI", drift["max_feature_psi"], dims))
        realized = section.get("realized")
        if realized and "recall" in realized:
            points += [("RealizedRecall", realized["recall"], dims), ("RealizedPrecision", realized["precision"], dims),
                       ("LabeledDecisions", float(realized["labeled"]), dims),
                       ("RealizedFraudAmountCaught", realized["fraud_amount_caught"], dims)]  # fmt: skip
            if realized.get("amount_recall") is not None:
                points.append(("RealizedAmountRecall", realized["amount_recall"], dims))
        if "alerts_per_1000" in section:
            points.append(("AlertsPer1000", section["alerts_per_1000"], dims))
        # Known before anything matures (go-live): the shares of confirmed frauds flagged, and pending.
        known = section.get("go_live") or {}
        if known.get("flagged_share_of_confirmed_frauds") is not None:
            points += [("ConfirmedFraudsFlaggedShare", known["flagged_share_of_confirmed_frauds"], dims),
                       ("ConfirmedFraudAmountCaught", known["confirmed_fraud_amount_caught"], dims)]  # fmt: skip
        if (section.get("labels") or {}).get("pending_share") is not None:
            points.append(("PendingShare", section["labels"]["pending_share"], dims))
    # Window-wide figures without a version dimension: what the alarms watch.
    if report.get("consecutive_act_windows") is not None:
        points.append(("DriftActWindows", float(report["consecutive_act_windows"]), {}))
    if any("drift" in section for section in report["versions"].values()):
        points.append(("MaxFeaturePSI", float(report["max_feature_psi"]), {}))
    if report.get("realized") and "recall" in report["realized"]:
        points += [("RealizedRecall", report["realized"]["recall"], {}),
                   ("RealizedPrecision", report["realized"]["precision"], {})]  # fmt: skip
    return points


def start_retraining_execution(settings: Settings) -> Trigger:
    """In AWS: start the retrain state machine (its own guard refuses a second concurrent run)."""
    import boto3

    def start(payload: dict[str, Any]) -> str:
        if not settings.retrain_state_machine_arn:
            raise StoreError("FRAUDOPS_RETRAIN_STATE_MACHINE_ARN is not set: cannot start a retraining")
        client = boto3.client("stepfunctions", region_name=settings.aws_region)
        name = f"drift-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
        response = client.start_execution(
            stateMachineArn=settings.retrain_state_machine_arn, name=name, input=json.dumps(payload)
        )
        return str(response["executionArn"])

    return start


SUMMARY_KEYS = ("since", "until", "records", "labeled", "pending", "drifted", "not_judged", "consecutive_act_windows")
# Printed whole when present: what every label count counts, and what is known before anything matures.
SUMMARY_SECTIONS = ("labels", "go_live", "in_a_row", "skipped", "retraining")


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The few lines a person or a log reads: the window, what was (not) judged, what happened."""
    lines = {key: report.get(key) for key in SUMMARY_KEYS}
    for key in SUMMARY_SECTIONS:
        if report.get(key) is not None:
            lines[key] = report[key]
    return lines
