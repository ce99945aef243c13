"""The monitor stage: read a window of captured decisions and compare them, per model version that
served them, with that version's training profile (drift), the expected flagged rate (volume), and
the labels that have arrived (realized performance). Writes a JSON and an HTML report beside the
artifacts and, when drift stays at the act level for ``drift_windows`` windows in a row (and the
cooldown has passed), starts a retraining with ``{"reason": "drift", ...}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from fraudops.artifacts import SPEC_ARTIFACT
from fraudops.capture import read_captures
from fraudops.config import Settings
from fraudops.errors import ArtifactMissingError, StoreError
from fraudops.features import FeatureSpec, build_features
from fraudops.labels import read_labels
from fraudops.metrics import MetricsError
from fraudops.profile import ACT, PROFILE_ARTIFACT, compare
from fraudops.report import render_html
from fraudops.schema import RAW_FEATURE_COLUMNS
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
    from fraudops.stages.promote import _artifact_location

    with ModelStore(settings).session() as client:
        location = _artifact_location(client, client.get_model_version(settings.model_name, version))
    spec = FeatureSpec.from_dict(json.loads(read_uri(settings, model_file_uri(location, SPEC_ARTIFACT))))
    try:
        profile = json.loads(read_uri(settings, model_file_uri(location, PROFILE_ARTIFACT)))
    except ArtifactMissingError:
        profile = None  # trained before profiles existed
    return VersionContext(spec, profile)


def _realized(records: list[dict[str, Any]], labels: dict[str, bool]) -> dict[str, Any] | None:
    joined = [(r, labels[r["transaction_id"]]) for r in records if r.get("transaction_id") in labels]
    if not joined:
        return None
    y = np.array([int(label) for _, label in joined])
    predicted = np.array([r["prediction"] >= 1.0 for r, _ in joined])
    scores = np.array([r["probability"] for r, _ in joined])
    tp = int(np.sum(predicted & (y == 1)))
    fp = int(np.sum(predicted & (y == 0)))
    fn = int(np.sum(~predicted & (y == 1)))
    # Money: what the outcomes (review/block) caught of the labeled fraud, by amount. Records captured
    # before outcomes existed count as flagged when their prediction was 1.
    flagged_outcome = np.array([_flagged(r) for r, _ in joined])
    amounts = np.array([float(r["transaction"].get("amount", 0.0)) for r, _ in joined])
    fraud_amount = float(amounts[y == 1].sum())
    caught = float(amounts[(y == 1) & flagged_outcome].sum())
    auprc = None
    if 0 < y.sum() < len(y):
        from sklearn.metrics import average_precision_score

        auprc = float(average_precision_score(y, scores))
    return {
        "labeled": len(joined),
        "fraud": int(y.sum()),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "auprc": auprc,
        "fraud_amount": fraud_amount,
        "fraud_amount_caught": caught,
        "amount_recall": caught / fraud_amount if fraud_amount else None,
    }


def _flagged(record: dict[str, Any]) -> bool:
    outcome = record.get("outcome")
    return outcome in ("review", "block") if outcome is not None else record["prediction"] >= 1.0


def _version_section(
    settings: Settings, version: str, records: list[dict[str, Any]], labels: dict[str, bool]
) -> dict[str, Any]:
    flagged = float(np.mean([r["prediction"] >= 1.0 for r in records])) if records else 0.0
    section: dict[str, Any] = {"count": len(records), "flagged_rate": flagged, "realized": _realized(records, labels)}
    if records:
        outcomes = [r.get("outcome") for r in records]
        section["outcomes"] = {name: outcomes.count(name) for name in ("approve", "review", "block")}
        section["alerts_per_1000"] = 1000.0 * section["outcomes"]["review"] / len(records)
        section["flagged_per_1000"] = 1000.0 * sum(_flagged(r) for r in records) / len(records)
    try:
        context = _version_context(settings, version)
    except (StoreError, MetricsError, KeyError, ValueError) as error:
        section["problem"] = f"cannot read version {version}'s spec or profile: {error}"
        return section
    if context.profile is None:
        return section
    transactions = [r["transaction"] for r in records]
    columns = {name: [t[name] for t in transactions] for name in RAW_FEATURE_COLUMNS}
    names = list(context.spec.feature_names)
    features = build_features(columns, names)
    scores = np.array([r["probability"] for r in records])
    section["drift"] = compare(context.profile, features, names, columns["type"], scores)
    section["expected_flagged_rate"] = context.profile["expected_flagged_rate"]
    return section


def _load_state(settings: Settings) -> dict[str, Any]:
    body = blob_store(settings).get_or_none(STATE_KEY)
    return json.loads(body) if body else {"consecutive_act": 0, "last_trigger": None, "trend": []}


def run_monitor(settings: Settings, since: datetime, until: datetime, trigger: Trigger | None = None) -> dict[str, Any]:
    """Monitor the window [since, until); returns the report (with the keys of its JSON and HTML)."""
    records = read_captures(settings, since, until)
    labels = read_labels(settings)
    by_version: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_version.setdefault(str(record["model_version"]), []).append(record)
    captured_ids = {r.get("transaction_id") for r in records}
    report: dict[str, Any] = {
        "since": since.isoformat(timespec="seconds"),
        "until": until.isoformat(timespec="seconds"),
        "records": len(records),
        "labeled": sum(1 for r in records if r.get("transaction_id") in labels),
        "versions": {v: _version_section(settings, v, rs, labels) for v, rs in by_version.items()},
        "thresholds": {"watch": 0.1, "act": ACT},
    }
    drifted = sorted({
        f"{version}:{name}"
        for version, section in report["versions"].items() if section.get("drift")
        for name in section["drift"]["drifted"] + (["score"] if section["drift"]["score"]["psi"] >= ACT else [])
    })  # fmt: skip
    report["drifted"] = drifted
    report["realized"] = _realized(records, labels)
    report["max_feature_psi"] = max(
        (section["drift"]["max_feature_psi"] for section in report["versions"].values() if section.get("drift")),
        default=0.0,
    )
    report["labels_without_decision_in_window"] = len(set(labels) - captured_ids)

    state = _load_state(settings)
    state["consecutive_act"] = state["consecutive_act"] + 1 if drifted else 0
    last = datetime.fromisoformat(state["last_trigger"]) if state.get("last_trigger") else None
    cooled = last is None or until - last >= timedelta(hours=settings.retrain_cooldown_hours)
    report["consecutive_act_windows"] = state["consecutive_act"]
    if drifted and state["consecutive_act"] >= settings.drift_windows:
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
            "until": report["until"],
            "version": version,
            "labeled": realized.get("labeled", 0),
            "precision": round(realized["precision"], 4) if realized else None,
            "recall": round(realized["recall"], 4) if realized else None,
            "amount_recall": round(realized["amount_recall"], 4) if realized.get("amount_recall") is not None else None,
            "alerts_per_1000": round(section["alerts_per_1000"], 3) if "alerts_per_1000" in section else None,
            "max_psi": round(drift["max_feature_psi"], 4) if drift else None,
        }
        state["trend"] = [*state.get("trend", []), row][-50:]

    store = blob_store(settings)
    stamp = until.strftime("%Y%m%dT%H%M%SZ")
    report["json_key"], report["html_key"] = f"monitoring/{stamp}/report.json", f"monitoring/{stamp}/report.html"
    report["html_uri"] = store.uri(report["html_key"])
    store.put(report["json_key"], json.dumps(report, indent=2, default=float).encode())
    store.put(report["html_key"], render_html(report, state["trend"]).encode(), content_type="text/html")
    store.put(STATE_KEY, json.dumps(state).encode())
    log.info("monitor %s..%s: %d records, drifted %s", report["since"], report["until"], len(records), drifted)
    return report


def metric_points(report: dict[str, Any]) -> list[tuple[str, float, dict[str, str]]]:
    """(name, value, dimensions) for every figure, for the handler to publish as EMF metrics."""
    points: list[tuple[str, float, dict[str, str]]] = []
    for version, section in report["versions"].items():
        dims = {"ModelVersion": version}
        points += [("Predictions", float(section["count"]), dims), ("FlaggedRate", section["flagged_rate"], dims)]
        if "expected_flagged_rate" in section:
            points.append(("ExpectedFlaggedRate", section["expected_flagged_rate"], dims))
        drift = section.get("drift")
        if drift:
            points.append(("ScorePSI", drift["score"]["psi"], dims))
            points.append(("FeaturePSI", drift["type"]["psi"], {**dims, "Feature": "type"}))
            points += [("FeaturePSI", f["psi"], {**dims, "Feature": name}) for name, f in drift["features"].items()]
            points.append(("MaxFeaturePSI", drift["max_feature_psi"], dims))
        realized = section.get("realized")
        if realized:
            points += [("RealizedRecall", realized["recall"], dims), ("RealizedPrecision", realized["precision"], dims),
                       ("LabeledDecisions", float(realized["labeled"]), dims),
                       ("RealizedFraudAmountCaught", realized["fraud_amount_caught"], dims)]  # fmt: skip
            if realized.get("amount_recall") is not None:
                points.append(("RealizedAmountRecall", realized["amount_recall"], dims))
        if "alerts_per_1000" in section:
            points.append(("AlertsPer1000", section["alerts_per_1000"], dims))
    # Window-wide figures without a version dimension: what the alarms watch.
    points.append(("DriftActWindows", float(report["consecutive_act_windows"]), {}))
    points.append(("MaxFeaturePSI", float(report["max_feature_psi"]), {}))
    if report.get("realized"):
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
