"""Commands on model versions: train, promote, rollback, reconcile, history, and scoring a file with a
version (batch-score, batch-check)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fraudops.core.config import Settings
from fraudops.model.features import FEATURE_SETS
from fraudops_dev.cli.common import LAKE_HELP, AddCommand, Subparsers, apply_db_and_lake, require_state

KEY_HELP = "a key naming this change: running it again with the same key reports it and changes nothing"


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    settings = apply_db_and_lake(args, settings)
    if args.engine == "spark":
        from fraudops_dev.spark_local import run_local_spark_training

        if args.workers:
            settings = settings.model_copy(update={"spark_workers": args.workers})
        print(f"training on PySpark local mode with {settings.spark_workers} XGBoost workers", file=sys.stderr)
        result = run_local_spark_training(settings, feature_set=args.feature_set, snapshot_id=args.snapshot)
        print(json.dumps(result.summary(), indent=2))
        return 0
    from fraudops.stages.train import run_training

    result = run_training(settings, feature_set=args.feature_set, snapshot_id=args.snapshot)
    print(json.dumps(result.summary(), indent=2))
    return 0


def cmd_promote(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.stages.promote import run_promotion

    require_state(settings)
    if args.force and not args.version:
        raise ValueError("--force needs --version N: name the version a person decided to promote")
    force_reason = args.reason if args.force else None
    if args.force and not (args.reason or "").strip():
        raise ValueError("--force needs --reason TEXT: it is recorded in the history")
    decision = run_promotion(
        apply_db_and_lake(args, settings), args.version, force_reason=force_reason,
        idempotency_key=args.idempotency_key, from_version=args.from_version,
    )  # fmt: skip
    print(json.dumps(decision.as_dict(), indent=2))
    print(f"{decision.outcome}: {decision.reason}", file=sys.stderr)
    return 0


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.stages.rollback import rollback

    require_state(settings)
    action = rollback(settings, args.reason, args.to, from_version=args.from_version,
                      idempotency_key=args.idempotency_key)  # fmt: skip
    print(json.dumps(action.as_dict(), indent=2))
    print(f"rolled back: version {action.to_version} is Production again (was {action.from_version}); a running "
          f"API serves it within {settings.model_refresh_seconds:g} s", file=sys.stderr)  # fmt: skip
    return 0


def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.stages.rollback import reconcile

    require_state(settings)
    action = reconcile(settings, expected_version=args.version)
    print(json.dumps(action.as_dict(), indent=2))
    print(f"{action.action}: {action.reason}", file=sys.stderr)
    return 0


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.production.history import read_history

    require_state(settings)
    changes = read_history(settings, args.limit)
    if args.json:
        print(json.dumps([change.as_dict() for change in changes], indent=2))
        return 0
    # The actor is never cut: a Step Functions execution ARN ends with the execution's name.
    width = max([len("by"), *(len(change.actor) for change in changes)])
    print(f"{'time (UTC)':<24} {'action':<12} {'from':>4} -> {'to':<4} {'AUPRC gain [interval]':<28} "
          f"{'by':<{width}} reason")  # fmt: skip
    for change in changes:
        gain = change.gain
        interval = f"{gain['gain']:+.4f} [{gain['lower']:+.4f}, {gain['upper']:+.4f}]" if gain else ""
        print(f"{change.time[:23]:<24} {change.action:<12} {change.from_version or '-':>4} -> "
              f"{change.to_version or '-':<4} {interval:<28} {change.actor:<{width}} {change.reason}")  # fmt: skip
    return 0


def cmd_batch_score(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import replace

    from fraudops_dev.batch_local import run_batch_locally, template_defaults

    require_state(settings)
    options = template_defaults()
    if args.rows_per_batch is not None:
        options = replace(options, rows_per_batch=args.rows_per_batch)
    if args.tolerated_failure_percentage is not None:
        options = replace(options, tolerated_failure_percentage=args.tolerated_failure_percentage)
    run = run_batch_locally(
        settings, Path(args.file), args.output, args.model_version, args.format, options, args.workers,
        progress=lambda line: print(line, file=sys.stderr),
    )  # fmt: skip
    print(json.dumps(run.as_dict(), indent=2))
    print(f"results: {run.output}/results/ (each valid row + probability, decision, threshold, model_version); "
          f"{run.rejected:,} rejected rows, by line, under {run.output}/errors/", file=sys.stderr)  # fmt: skip
    return 0


def cmd_batch_check(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.batch_check import check_against_predict

    report = check_against_predict(settings, args.output, args.workers, lambda line: print(line, file=sys.stderr))
    print(json.dumps(report, indent=2, default=str))
    return 0 if report["mismatches"] == 0 and report["rows_checked"] > 0 else 1


def _add_train(sub: Subparsers) -> None:
    train = sub.add_parser("train", help="train, log to MLflow and register a new version")
    train.add_argument("--feature-set", default="engineered", choices=list(FEATURE_SETS), help="features to use")
    train.add_argument("--lake", help=LAKE_HELP)
    train.add_argument(
        "--engine",
        default="single",
        choices=["single", "spark"],
        help="single: one process, as the train Lambda (default); spark: xgboost.spark on PySpark local mode, "
        "as the EMR Serverless job (reads the committed files of the lake's training window)",
    )
    train.add_argument("--workers", type=int, help="Spark: XGBoost workers (FRAUDOPS_SPARK_WORKERS, default 2)")
    train.add_argument(
        "--snapshot",
        type=int,
        help="train on this Iceberg snapshot of the transactions table (a run's dataset input names it: "
        "the same rows again after later appends and replaces), not the current one",
    )
    train.set_defaults(func=cmd_train)


def _add_promote(sub: Subparsers) -> None:
    promote = sub.add_parser("promote", help="promote a version if it beats Production on the holdout")
    promote.add_argument("--version", help="candidate version (default: the newest)")
    promote.add_argument("--lake", help=LAKE_HELP)
    promote.add_argument("--force", action="store_true", help="promote --version whatever the rule says (manual)")
    promote.add_argument("--reason", help="why (required with --force; recorded in the history)")
    promote.add_argument("--from", dest="from_version", help="refuse unless Production is this version now")
    promote.add_argument("--idempotency-key", help=KEY_HELP)
    promote.set_defaults(func=cmd_promote)


def _add_rollback(sub: Subparsers) -> None:
    rollback = sub.add_parser("rollback", help="put the previous (or a given) version back into Production")
    rollback.add_argument("--from", dest="from_version",
                          help="(required) the version rolled back from; refused unless it still is Production, so a "
                               "retried or doubled rollback never rolls back twice")  # fmt: skip
    rollback.add_argument("--to", help="the version to restore (default: the one before the current Production)")
    rollback.add_argument("--reason", required=True, help="why (recorded in the history)")
    rollback.add_argument("--idempotency-key", help=KEY_HELP)
    rollback.set_defaults(func=cmd_rollback)


def _add_reconcile(sub: Subparsers) -> None:
    reconcile = sub.add_parser(
        "reconcile", help="complete an interrupted change and make what is served follow the production alias"
    )
    reconcile.add_argument("--version", help="refuse unless the production alias names this version")
    reconcile.set_defaults(func=cmd_reconcile)


def _add_history(sub: Subparsers) -> None:
    hist = sub.add_parser("history", help="every change of Production: when, from -> to, why, by whom")
    hist.add_argument("--limit", type=int, default=None, help="only the newest N events")
    hist.add_argument("--json", action="store_true", help="JSON instead of a table")
    hist.set_defaults(func=cmd_history)


def _add_batch_score(sub: Subparsers) -> None:
    batch = sub.add_parser(
        "batch-score", help="score a CSV or JSON Lines file: the batch state machine's steps, run locally"
    )
    batch.add_argument("file", help="PaySim columns (transaction_id optional); .jsonl/.ndjson read as JSON Lines")
    batch.add_argument("--model-version", help="score with this registered version (back-test); default Production")
    batch.add_argument("--format", choices=["csv", "jsonl"], help="default: from the file's extension")
    batch.add_argument("--output", help="folder for results/ and errors/ (default .fraudops/batch/results/<run>)")
    batch.add_argument("--rows-per-batch", type=int, help="default: the template's BatchRowsPerBatch")
    batch.add_argument("--workers", type=int, help="processes at once (default: cores, at most BatchMaxConcurrency)")
    batch.add_argument("--tolerated-failure-percentage", type=float, help="default: the template's parameter")
    batch.set_defaults(func=cmd_batch_score)


def _add_batch_check(sub: Subparsers) -> None:
    check = sub.add_parser("batch-check", help="send every row of a batch-score run to /predict and compare")
    check.add_argument("output", help="the run's folder (printed by batch-score)")
    check.add_argument("--workers", type=int, help="processes (default: cores)")
    check.set_defaults(func=cmd_batch_check)


COMMANDS: dict[str, AddCommand] = {
    "train": _add_train,
    "promote": _add_promote,
    "rollback": _add_rollback,
    "reconcile": _add_reconcile,
    "history": _add_history,
    "batch-score": _add_batch_score,
    "batch-check": _add_batch_check,
}
