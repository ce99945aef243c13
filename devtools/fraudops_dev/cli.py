"""`fraudops`: the pipeline on your laptop, with the same core the Lambda functions run.

  fraudops generate --rows 1000000     write generated transactions to the lake (replaced only when complete)
  fraudops import-csv PS_2017.csv.zip  load the real PaySim CSV (.csv, .csv.gz or .zip; --append)
  fraudops train | promote             one training run / one promotion decision
  fraudops up | down | logs            the local stack in the background (MLflow UI, API)
  fraudops retrain                     the real retraining state machine, acting on your stack
  fraudops batch-score FILE            score a CSV / JSON Lines file as the batch state machine does
  fraudops policy publish FILE         validate and activate a decision policy (rollback, history, show)
  fraudops demo                        everything end to end, then a key-authenticated prediction

Everything is local unless you ask for AWS: state lives on disk under .fraudops/ (FRAUDOPS_STATE_DIR).
--aws (or FRAUDOPS_AWS=true) lets a command use real AWS with your credentials.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fraudops.core.config import Settings, get_settings
from fraudops.core.errors import FraudopsError, disk_full_cause
from fraudops.model.features import FEATURE_SETS
from fraudops_dev.datagen import DRIFT_SCENARIOS

log = logging.getLogger("fraudops.cli")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("botocore", "boto3", "urllib3", "alembic", "mlflow", "werkzeug", "s3transfer", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


class _Progress:
    """Prints "rows written" at most once a second (long jobs must show they are alive)."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.last, self.started = total, label, 0.0, time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= 1.0 or (self.total and done >= self.total):
            self.last = now
            rate = done / max(now - self.started, 1e-9)
            share = f" ({100 * done / self.total:.0f}%)" if self.total else ""
            print(f"  {self.label}: {done:,}{share}, {rate:,.0f} rows/s", file=sys.stderr, flush=True)


def _db(args: argparse.Namespace, settings: Settings) -> Settings:
    """--db overrides FRAUDOPS_DB_PATH, --lake FRAUDOPS_LAKE_URI, for this command."""
    if getattr(args, "db", None):
        settings = settings.model_copy(update={"db_path": Path(args.db)})
    if getattr(args, "lake", None):
        settings = settings.model_copy(update={"lake_uri": args.lake})
    return settings


def _require_state(settings: Settings) -> Settings:
    """A command that reads state refuses a state folder that holds none (a mistyped FRAUDOPS_STATE_DIR
    would otherwise show an empty history, or have MLflow create an empty registry there)."""
    if settings.tracking_uri or settings.registry_s3_key:
        return settings
    registry = settings.state_dir / "mlflow.db"
    if not registry.is_file():
        raise ValueError(
            f"{settings.state_dir.resolve()} holds no fraudops state (no {registry.name}): check FRAUDOPS_STATE_DIR "
            "(default .fraudops, relative to where you run the command); `fraudops train` creates it"
        )
    return settings


# --- commands --------------------------------------------------------------------------------------------


def _lake_summary(settings: Settings) -> dict[str, Any]:
    from fraudops.lake import Lake

    lake = Lake(settings)
    manifest = lake.transactions.manifest()
    return {"lake": lake.root_uri, "table": "transactions", "table_version": manifest.version,
            "rows_in_table": manifest.rows, "partitions": len(manifest.partitions)}  # fmt: skip


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.lake import Lake
    from fraudops.lake.transactions import write_transaction_frames
    from fraudops_dev.datagen import FRAUD_RATE, GeneratorConfig, generate_frames
    from fraudops_dev.sqlite_io import integrity_ok, write_transactions

    seed = settings.seed if args.seed is None else args.seed
    rate = FRAUD_RATE if args.fraud_rate is None else args.fraud_rate
    config = GeneratorConfig(
        n_rows=args.rows, seed=seed, fraud_rate=rate, drift=args.drift, step_offset=args.step_offset
    )
    started = time.perf_counter()
    progress = _Progress(config.n_rows, "rows written")
    if args.db:  # the way out: a SQLite file for other tools
        db = Path(args.db)
        print(f"generating {config.n_rows:,} PaySim-schema rows (seed {config.seed}) into {db}", file=sys.stderr)
        rows = write_transactions(db, generate_frames(config), progress=progress)
        summary: dict[str, Any] = {"db": str(db), "rows": rows, "integrity_ok": integrity_ok(db)}
    else:
        lake = Lake(settings)
        print(f"generating {config.n_rows:,} PaySim-schema rows (seed {config.seed}) into the lake at "
              f"{lake.root_uri}", file=sys.stderr)  # fmt: skip
        rows = write_transaction_frames(
            lake.transactions, generate_frames(config), append=args.append, progress=progress, source="generate"
        )
        summary = {"rows": rows, **_lake_summary(settings)}
    print(json.dumps({**summary, "seconds": round(time.perf_counter() - started, 2)}))
    return 0


def cmd_import_csv(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.lake import Lake
    from fraudops_dev.importer import import_csv
    from fraudops_dev.sqlite_io import count_rows

    share = 0.0 if args.strict else args.max_reject_share
    target: Any = Path(args.db) if args.db else Lake(settings).transactions
    rejects = (Path(args.db) if args.db else settings.state_dir / "import").with_suffix(".rejects.csv")
    report = import_csv(Path(args.csv), target, append=args.append, max_reject_share=share,
                        progress=_Progress(0, "rows"), rejects_path=rejects)  # fmt: skip
    for line, reason in report.bad_rows[:20]:
        print(f"  line {line}: {reason}", file=sys.stderr)
    if len(report.bad_rows) > 20:
        print(f"  ... and {len(report.bad_rows) - 20} more rejected rows", file=sys.stderr)
    if report.bad_rows:
        print(f"{len(report.bad_rows)} rows rejected (not imported); all listed in {rejects}", file=sys.stderr)
    summary = {"mode": "append" if args.append else "replace", "rows_imported": report.rows_imported,
               "rows_rejected": len(report.bad_rows)}  # fmt: skip
    if args.db:
        summary |= {"db": args.db, "rows_in_table": count_rows(Path(args.db))}
    else:
        summary |= _lake_summary(settings)
    print(json.dumps(summary))
    return 0


def cmd_import_db(args: argparse.Namespace, settings: Settings) -> int:
    """A SQLite fraud.db (the seed's format) into the lake, all or nothing."""
    from fraudops.lake import Lake
    from fraudops.lake.transactions import write_transaction_frames
    from fraudops_dev.sqlite_io import iter_transactions

    rows = write_transaction_frames(
        Lake(settings).transactions, iter_transactions(Path(args.db)), append=args.append,
        progress=_Progress(0, "rows"), source="import", properties={"imported": Path(args.db).name},
    )  # fmt: skip
    print(json.dumps({"rows_imported": rows, **_lake_summary(settings)}))
    return 0


def cmd_export_db(args: argparse.Namespace, settings: Settings) -> int:
    """The lake's transactions into a SQLite fraud.db (replaced only when complete)."""
    from fraudops.lake import Lake
    from fraudops_dev.sqlite_io import integrity_ok, write_transactions

    table = Lake(settings).transactions
    files = table.files(newest_days=args.days)
    batches = (table.read(files=[f]).to_pandas() for f in files)
    rows = write_transactions(Path(args.db), batches, progress=_Progress(0, "rows"))
    print(json.dumps({"db": args.db, "rows": rows, "integrity_ok": integrity_ok(Path(args.db))}))
    return 0


def cmd_sql(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.lake_sql import run_sql

    columns, rows = run_sql(settings, args.query)
    if args.format == "json":
        print(json.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=str))
    else:
        print("\t".join(columns))
        for row in rows:
            print("\t".join("" if value is None else str(value) for value in row))
    return 0


def cmd_curate(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.lake.curation import run_curation

    print(json.dumps(run_curation(settings).as_dict(), indent=2))
    return 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    settings = _db(args, settings)
    if args.engine == "spark":
        from fraudops_dev.spark_local import run_local_spark_training

        if args.workers:
            settings = settings.model_copy(update={"spark_workers": args.workers})
        print(f"training on PySpark local mode with {settings.spark_workers} XGBoost workers", file=sys.stderr)
        result = run_local_spark_training(settings, feature_set=args.feature_set)
        print(json.dumps(result.summary(), indent=2))
        return 0
    from fraudops.stages.train import run_training

    result = run_training(settings, feature_set=args.feature_set)
    print(json.dumps(result.summary(), indent=2))
    return 0


def cmd_promote(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.stages.promote import run_promotion

    _require_state(settings)
    if args.force and not args.version:
        raise ValueError("--force needs --version N: name the version a person decided to promote")
    force_reason = args.reason if args.force else None
    if args.force and not (args.reason or "").strip():
        raise ValueError("--force needs --reason TEXT: it is recorded in the history")
    decision = run_promotion(
        _db(args, settings), args.version, force_reason=force_reason,
        idempotency_key=args.idempotency_key, from_version=args.from_version,
    )  # fmt: skip
    print(json.dumps(decision.as_dict(), indent=2))
    print(f"{decision.outcome}: {decision.reason}", file=sys.stderr)
    return 0


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.stages.rollback import rollback

    _require_state(settings)
    action = rollback(settings, args.reason, args.to, from_version=args.from_version,
                      idempotency_key=args.idempotency_key)  # fmt: skip
    print(json.dumps(action.as_dict(), indent=2))
    print(f"rolled back: version {action.to_version} is Production again (was {action.from_version}); a running "
          f"API serves it within {settings.model_refresh_seconds:g} s", file=sys.stderr)  # fmt: skip
    return 0


def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.stages.rollback import reconcile

    _require_state(settings)
    action = reconcile(settings, expected_version=args.version)
    print(json.dumps(action.as_dict(), indent=2))
    print(f"{action.action}: {action.reason}", file=sys.stderr)
    return 0


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.production.history import read_history

    _require_state(settings)
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


def _policy_document(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as error:
        raise ValueError(f"cannot read the policy file {path}: {error.strerror or error}") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise ValueError(f"{path} is not JSON: {error}") from None


def cmd_policy_validate(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.decisions import DecisionPolicy

    policy = DecisionPolicy.from_dict(_policy_document(args.file))
    print(json.dumps({"valid": True, "sha256": policy.sha256, "policy": policy.to_dict()}, indent=2))
    print(f"valid: {len(policy.rules)} rule(s), bands {policy.bands.to_dict() if policy.bands else 'from the model'}",
          file=sys.stderr)  # fmt: skip
    return 0


def _policy_version(text: str) -> int:
    """``--to`` / ``--from``: a published version number, or ``builtin`` (the model's bands only)."""
    from fraudops.decisions.store import BUILTIN_NAME, BUILTIN_POLICY_VERSION

    if text.strip().lower() == BUILTIN_NAME:
        return BUILTIN_POLICY_VERSION
    try:
        version = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a policy version (a number, or builtin)") from None
    if version < 1:
        raise argparse.ArgumentTypeError(f"policy versions count from 1 ({version}); say builtin for the built-in one")
    return version


def cmd_policy_backtest(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.decisions import DecisionPolicy
    from fraudops.stages.backtest import backtest_policy, format_backtest

    draft = DecisionPolicy.from_dict(_policy_document(args.file))  # the errors `policy validate` gives
    result = backtest_policy(settings, draft, days=args.days)
    print(json.dumps(result.as_dict(), indent=2) if args.json else format_backtest(result))
    return 0


def cmd_policy_publish(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.decisions import publish_policy
    from fraudops.decisions.store import describe_version

    activation = publish_policy(settings, _policy_document(args.file), args.reason, expected_from=args.expected_from,
                                idempotency_key=args.idempotency_key)  # fmt: skip
    print(json.dumps(activation.summary(), indent=2))
    if activation.action == "unchanged":
        print(f"unchanged: this policy already is the active version {activation.version}", file=sys.stderr)
    else:
        was = describe_version(activation.from_version)
        print(f"published: policy version {activation.version} is active (was {was}); a running API decides with "
              f"it within {settings.model_refresh_seconds:g} s", file=sys.stderr)  # fmt: skip
    return 0


def cmd_policy_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.decisions import rollback_policy
    from fraudops.decisions.store import describe_version

    activation = rollback_policy(settings, args.reason, args.expected_from, args.to,
                                 idempotency_key=args.idempotency_key)  # fmt: skip
    print(json.dumps(activation.summary(), indent=2))
    now = "the built-in policy (the model's bands, no rules, no lists) is" if activation.builtin else (
        f"policy version {activation.version} is")  # fmt: skip
    print(f"rolled back: {now} active again (was {describe_version(activation.from_version)}); a running API "
          f"decides with it within {settings.model_refresh_seconds:g} s", file=sys.stderr)  # fmt: skip
    return 0


def cmd_policy_history(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.decisions import policy_history

    activations = policy_history(settings, args.limit)
    if args.json:
        print(json.dumps([a.summary() for a in activations], indent=2))
        return 0
    print(f"{'time (UTC)':<24} {'action':<12} {'from':>4} -> {'to':<4} {'name':<20} {'by':<24} reason")
    for a in activations:
        row = a.summary()
        print(f"{a.time[:23]:<24} {a.action:<12} {row['from_version'] or '-':>4} -> {row['version']:<4} "
              f"{str(a.policy.get('name'))[:20]:<20} {a.actor[:24]:<24} {a.reason}")  # fmt: skip
    return 0


def cmd_policy_show(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.decisions import active_policy, builtin_policy

    active = active_policy(settings)
    if active is None:
        print(json.dumps({"version": "builtin", "policy": builtin_policy().to_dict()}, indent=2))
        print("no policy published: the model's own bands decide", file=sys.stderr)
        return 0
    print(json.dumps({**active.summary(), "policy": active.policy}, indent=2))
    if active.builtin:
        print("rolled back to the built-in policy: the model's own bands decide", file=sys.stderr)
    return 0


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def cmd_monitor(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.stages.monitor import monitor_window, run_monitor, summary
    from fraudops_dev.emulation import retrain_trigger

    _require_state(settings)
    since, until = monitor_window(settings, datetime.now(UTC), _when(args.since), _when(args.until))
    trigger = None if args.no_retrain else retrain_trigger(settings, lambda line: print(line, file=sys.stderr))
    report = run_monitor(settings, since, until, trigger)
    print(json.dumps(summary(report) | {"report": report["html_uri"]}, indent=2, default=str))
    if report["html_uri"]:
        print(f"report: {report['html_uri']}", file=sys.stderr)
    return 0


def cmd_import_labels(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.monitoring.labels import store_labels
    from fraudops_dev.importer import read_label_file

    labels = read_label_file(Path(args.file))
    counts = store_labels(settings, labels, source=f"file:{Path(args.file).name}")
    print(json.dumps({"labels": len(labels), **counts}))
    return 0


def cmd_append_labeled(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.lake import Lake
    from fraudops.lake.transactions import write_transaction_frames
    from fraudops_dev.labeled_traffic import labeled_rows

    settings = _db(args, settings)
    until = _when(args.until) or datetime.now(UTC)
    since = _when(args.since) or until - timedelta(days=30)
    frame = labeled_rows(settings, since, until)
    if frame.empty:
        print(json.dumps({"appended": 0, "reason": "no labeled decisions in the window"}))
        return 0
    table = Lake(settings).transactions
    written = write_transaction_frames(table, [frame], append=True, source="curated")
    print(json.dumps({"appended": written, "fraud": int(frame["isFraud"].sum()), "rows": table.manifest().rows}))
    return 0


def cmd_drift_demo(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.drift_demo import run_drift_demo

    return run_drift_demo(settings, rows=args.rows, traffic=args.traffic)


def cmd_smoke(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.local import local_api_key, with_running_ports
    from fraudops_dev.smoke import retrain_in_aws, run_smoke, stack_endpoints

    settings = with_running_ports(settings)
    retrain = None
    if args.stack:
        endpoints = stack_endpoints(args.stack, settings.aws_region)
        url, key = endpoints["url"], endpoints["key"]
        if args.retrain and endpoints["state_machine"]:
            retrain = retrain_in_aws(endpoints["state_machine"], settings.aws_region)
    else:
        url = args.url or f"http://127.0.0.1:{settings.api_port}"
        key = args.key or local_api_key(settings) or ""
        if args.retrain:
            from fraudops_dev.emulation import retrain_locally

            def retrain_local() -> dict[str, Any]:
                result = retrain_locally(settings, progress=lambda line: print(line, file=sys.stderr))[0]
                return {"status": result.status, "promotion": (result.output or {}).get("promotion")}

            retrain = retrain_local
    report = run_smoke(url, key, retrain)
    for name, ok, detail in report.checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail[:200]}")
    print(f"smoke {url}: {'passed' if report.passed else 'FAILED'}")
    return 0 if report.passed else 1


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev import deploy_parameters

    return deploy_parameters.run(args)


def cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.deployed_ui import serve_deployed_ui

    return serve_deployed_ui(settings, stack=args.stack, bucket=args.bucket, port=args.port)


def serve_log_config(log_file: str | None) -> dict[str, Any]:
    """uvicorn's logging: the terminal, or (the stack's API) a file rotated at 10 MB so a million
    requests cannot fill the disk; either way credentials in a logged URL are masked."""
    import copy

    import uvicorn

    from fraudops_dev.local import LOG_BACKUPS, LOG_ROTATE_BYTES

    redact = {"redact": {"()": "fraudops.api.redact.RedactCredentials"}}
    if not log_file:
        config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
        config["filters"] = redact
        for handler in config["handlers"].values():
            handler["filters"] = ["redact"]
        return config
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": redact,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.handlers.RotatingFileHandler",
                "filename": log_file,
                "maxBytes": LOG_ROTATE_BYTES,
                "backupCount": LOG_BACKUPS,
                "formatter": "plain",
                "filters": ["redact"],
            },
        },
        "loggers": {
            name: {"handlers": ["file"], "level": "INFO", "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "fraudops")
        },
    }


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn
    from pydantic import SecretStr

    from fraudops.api import build_default_app
    from fraudops_dev.local import local_api_key

    if not settings.api_key_values() and not settings.api_keys_ssm_parameter:
        key = local_api_key(settings)
        if key:
            settings = settings.model_copy(update={"api_keys": SecretStr(key)})
            log.info("using the local API key from %s", settings.state_dir / "api-key")
    log_config = serve_log_config(args.log_file)
    host = args.host or settings.api_host
    app = build_default_app(settings)
    uvicorn.run(app, host=host, port=args.port or settings.api_port, log_level="info", log_config=log_config)
    return 0


def cmd_s3_server(args: argparse.Namespace, settings: Settings) -> int:
    from moto.server import ThreadedMotoServer

    port = args.port or settings.s3_port
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"moto S3 server on http://127.0.0.1:{port} (in memory: S3 mode keeps nothing across restarts)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.api import EXAMPLE_TRANSACTION
    from fraudops_dev.local import local_api_key, post_json, with_running_ports

    settings = with_running_ports(settings)
    url = args.url or f"http://127.0.0.1:{settings.api_port}/predict"
    body = json.loads(args.json) if args.json else EXAMPLE_TRANSACTION
    status, answer = post_json(url, body, args.api_key or local_api_key(settings))
    print(json.dumps({"status": status, "response": answer}, indent=2))
    return 0 if status == 200 else 1


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.local import (
        StackError,
        check_ports,
        local_api_key,
        local_aws_environment,
        services,
        start_service,
        stop_services,
        with_running_ports,
    )

    settings = with_running_ports(settings)  # what already runs keeps its ports
    stack = services(settings)
    check_ports(settings, stack)  # before anything starts or any file is touched
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    local_api_key(settings, create=True)
    env = {**os.environ, **local_aws_environment(settings.s3_endpoint_url, settings.aws_region)}
    print(f"starting the local stack on 127.0.0.1 (storage: {settings.storage}, state in {settings.state_dir}):")
    started: list[str] = []
    try:
        for service in stack:
            start_service(settings, service, env)
            started.append(service.name)
    except (StackError, KeyboardInterrupt):
        stop_services(settings, started)
        raise
    print(f"API: http://127.0.0.1:{settings.api_port} (key in {settings.state_dir / 'api-key'}, x-api-key header). "
          f"MLflow UI: http://127.0.0.1:{settings.mlflow_ui_port}. Stop with `make down`.")  # fmt: skip
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.local import services, stop_services

    names = [service.name for service in reversed(services(settings.model_copy(update={"storage": "s3"})))]
    for name, was_running in stop_services(settings, names).items():
        print(f"  {name:<10} {'stopped' if was_running else 'not running'}")
    return 0


def cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.local import log_file, services

    for service in services(settings):
        path = log_file(settings, service.name)
        print(f"==> {path} <==")
        if path.exists():
            print("".join(path.read_text(errors="replace").splitlines(keepends=True)[-args.lines :]))
    return 0


def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.lake import Lake
    from fraudops.production.retraining_lock import LOCK_KEY
    from fraudops_dev.emulation import retrain_locally
    from fraudops_dev.local import with_running_ports

    settings = with_running_ports(_db(args, settings))
    lake = Lake(settings)
    if lake.transactions.manifest().version == 0:
        from fraudops.lake.transactions import write_transaction_frames
        from fraudops_dev.datagen import GeneratorConfig, generate_frames

        print(f"no transactions in the lake at {lake.root_uri}: generating 200,000 rows first", file=sys.stderr)
        frames = generate_frames(GeneratorConfig(n_rows=200_000, seed=settings.seed))
        write_transaction_frames(lake.transactions, frames, source="generate")
    results = retrain_locally(
        settings, runs=args.runs, isolated=args.isolated, progress=lambda line: print(line, file=sys.stderr)
    )
    for result in results:
        summary: dict[str, Any] = {"status": result.status}
        if result.output:
            summary |= {"train": result.output.get("train"), "promotion": result.output.get("promotion")}
            lease = result.output.get("lease") or {}
            if lease.get("acquired") is False:  # skipped: say why, and how to clear a lease left by a kill
                summary |= {"skipped": lease.get("reason")}
                print(f"skipped: {lease.get('reason')}. If no retraining is running (an interrupted one left "
                      f"its lease), delete {settings.local_artifact_dir / LOCK_KEY} or wait for it to expire.",
                      file=sys.stderr)  # fmt: skip
        if result.error:
            summary |= {"error": result.error, "cause": result.cause}
        print(json.dumps(summary, indent=2))
    if not args.isolated:
        print(f"the stack's MLflow UI (http://127.0.0.1:{settings.mlflow_ui_port}) shows the new version and its "
              f"decision; a running API serves a promoted one within {settings.model_refresh_seconds:g} s "
              "(FRAUDOPS_MODEL_REFRESH_SECONDS)", file=sys.stderr)  # fmt: skip
    return 0 if all(r.status == "SUCCEEDED" for r in results) else 1


def cmd_batch_score(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import replace

    from fraudops_dev.batch_local import run_batch_locally, template_defaults

    _require_state(settings)
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


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.demo import check_demo_rows, run_demo

    check_demo_rows(args.rows)
    return run_demo(settings, rows=args.rows, seed=settings.seed if args.seed is None else args.seed)


# --- parser ----------------------------------------------------------------------------------------------


def _version() -> str:
    try:
        return version("fraudops")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraudops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"fraudops {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="debug logging, and a traceback on errors")
    parser.add_argument(
        "--aws", action="store_true", help="allow real AWS with your credentials (FRAUDOPS_AWS=true); off by default"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # These commands read and write the lake; their old --db option is accepted so scripts keep running.
    db_ignored = "no effect (kept for old scripts): this command works on the lake (FRAUDOPS_LAKE_URI)"
    lake_help = "the lake's root, a folder or s3://bucket/prefix (default FRAUDOPS_LAKE_URI, <state dir>/lake)"

    generate = sub.add_parser("generate", help="write generated PaySim-schema transactions to the lake")
    generate.add_argument("--rows", type=int, default=200_000, help="rows to generate (PaySim: 6362620)")
    generate.add_argument("--seed", type=int, default=None, help="random seed (default FRAUDOPS_SEED)")
    generate.add_argument("--fraud-rate", type=float, default=None, help="fraud share (default PaySim's 0.129%%)")
    generate.add_argument("--drift", default="none", choices=DRIFT_SCENARIOS, help="a documented drift scenario")
    generate.add_argument("--step-offset", type=int, default=0, help="add this to every step (later traffic)")
    generate.add_argument("--append", action="store_true", help="add the rows (new steps only) instead of replacing")
    generate.add_argument("--db", help="write a SQLite file instead of the lake (the way out to other tools)")
    generate.set_defaults(func=cmd_generate)

    importer = sub.add_parser("import-csv", help="import the real PaySim CSV (.csv, .csv.gz or .zip) into the lake")
    importer.add_argument("csv", help="path to the PaySim CSV, or the .csv.gz / .zip it comes in")
    importer.add_argument("--db", help="import into this SQLite file instead of the lake")
    importer.add_argument("--append", action="store_true", help="add the rows (new steps only) instead of replacing")
    importer.add_argument(
        "--max-reject-share", type=float, default=0.01, help="import nothing if more rows than this share are bad"
    )
    importer.add_argument("--strict", action="store_true", help="import nothing if any row is bad")
    importer.set_defaults(func=cmd_import_csv)

    import_db = sub.add_parser("import", help="load a SQLite fraud.db (transactions table) into the lake")
    import_db.add_argument("db", help="the SQLite file")
    import_db.add_argument("--append", action="store_true", help="add the rows (new steps only) instead of replacing")
    import_db.set_defaults(func=cmd_import_db)

    export_db = sub.add_parser("export", help="write the lake's transactions to a SQLite fraud.db")
    export_db.add_argument("db", help="the SQLite file to write (replaced only when complete)")
    export_db.add_argument("--days", type=int, default=None, help="only the newest N days")
    export_db.set_defaults(func=cmd_export_db)

    sql = sub.add_parser("sql", help="run SQL (DuckDB) over the lake: transactions, decisions, labels")
    sql.add_argument("query", help='e.g. "SELECT count(*) FROM transactions"')
    sql.add_argument("--format", choices=["tsv", "json"], default="tsv", help="output format")
    sql.set_defaults(func=cmd_sql)

    curate = sub.add_parser("curate", help="turn matured captured decisions + labels into training rows")
    curate.set_defaults(func=cmd_curate)

    train = sub.add_parser("train", help="train, log to MLflow and register a new version")
    train.add_argument("--feature-set", default="engineered", choices=list(FEATURE_SETS), help="features to use")
    train.add_argument("--lake", help=lake_help)
    train.add_argument(
        "--engine",
        default="single",
        choices=["single", "spark"],
        help="single: one process, as the train Lambda (default); spark: xgboost.spark on PySpark local mode, "
        "as the EMR Serverless job (reads the committed files of the lake's training window)",
    )
    train.add_argument("--workers", type=int, help="Spark: XGBoost workers (FRAUDOPS_SPARK_WORKERS, default 2)")
    train.set_defaults(func=cmd_train)

    key_help = "a key naming this change: running it again with the same key reports it and changes nothing"
    promote = sub.add_parser("promote", help="promote a version if it beats Production on the holdout")
    promote.add_argument("--version", help="candidate version (default: the newest)")
    promote.add_argument("--lake", help=lake_help)
    promote.add_argument("--force", action="store_true", help="promote --version whatever the rule says (manual)")
    promote.add_argument("--reason", help="why (required with --force; recorded in the history)")
    promote.add_argument("--from", dest="from_version", help="refuse unless Production is this version now")
    promote.add_argument("--idempotency-key", help=key_help)
    promote.set_defaults(func=cmd_promote)

    rollback = sub.add_parser("rollback", help="put the previous (or a given) version back into Production")
    rollback.add_argument("--from", dest="from_version",
                          help="(required) the version rolled back from; refused unless it still is Production, so a "
                               "retried or doubled rollback never rolls back twice")  # fmt: skip
    rollback.add_argument("--to", help="the version to restore (default: the one before the current Production)")
    rollback.add_argument("--reason", required=True, help="why (recorded in the history)")
    rollback.add_argument("--idempotency-key", help=key_help)
    rollback.set_defaults(func=cmd_rollback)

    reconcile = sub.add_parser(
        "reconcile", help="complete an interrupted change and make what is served follow the production alias"
    )
    reconcile.add_argument("--version", help="refuse unless the production alias names this version")
    reconcile.set_defaults(func=cmd_reconcile)

    hist = sub.add_parser("history", help="every change of Production: when, from -> to, why, by whom")
    hist.add_argument("--limit", type=int, default=None, help="only the newest N events")
    hist.add_argument("--json", action="store_true", help="JSON instead of a table")
    hist.set_defaults(func=cmd_history)

    policy = sub.add_parser("policy", help="decision policies: validate, backtest, publish, rollback, history, show")
    policy_sub = policy.add_subparsers(
        dest="policy_command",
        required=True,
        metavar="ACTION",
        help="validate | backtest | publish | rollback | history | show",
    )
    validate = policy_sub.add_parser("validate", help="check a policy file (JSON) without publishing it")
    validate.add_argument("file", help="the policy document (JSON; - for stdin)")
    validate.set_defaults(func=cmd_policy_validate)
    backtest = policy_sub.add_parser(
        "backtest", help="replay a draft policy on the lake's past decisions and labels, beside the active one"
    )
    backtest.add_argument("file", help="the draft policy document (JSON; - for stdin)")
    backtest.add_argument("--days", type=float, help="only the decisions of the newest N days (default: all)")
    backtest.add_argument("--json", action="store_true", help="JSON instead of a table")
    backtest.set_defaults(func=cmd_policy_backtest)
    publish = policy_sub.add_parser("publish", help="validate a policy and make it active as a new version")
    publish.add_argument("file", help="the policy document (JSON; - for stdin)")
    publish.add_argument("--reason", required=True, help="why (recorded in the policy history)")
    publish.add_argument("--from", dest="expected_from", type=_policy_version, metavar="N|builtin",
                         help="refuse unless this version (or builtin) is the active one (safe retries)")  # fmt: skip
    publish.add_argument("--idempotency-key", help="a retry with the same key reports the first attempt")
    publish.set_defaults(func=cmd_policy_publish)
    policy_rollback = policy_sub.add_parser("rollback", help="re-activate the previous (or a given) policy version")
    policy_rollback.add_argument("--to", type=_policy_version, metavar="N|builtin",
                                 help="the version to re-activate, or builtin (the model's bands only); default: the "
                                      "one before (the built-in policy before the first version)")  # fmt: skip
    policy_rollback.add_argument("--from", dest="expected_from", type=_policy_version, required=True,
                                 metavar="N|builtin",
                                 help="refuse unless this version is active (a retry changes nothing)")  # fmt: skip
    policy_rollback.add_argument("--reason", required=True, help="why (recorded in the policy history)")
    policy_rollback.add_argument("--idempotency-key", help="a retry with the same key reports the first attempt")
    policy_rollback.set_defaults(func=cmd_policy_rollback)
    policy_history = policy_sub.add_parser("history", help="every policy change: when, from -> to, why, by whom")
    policy_history.add_argument("--limit", type=int, default=None, help="only the newest N changes")
    policy_history.add_argument("--json", action="store_true", help="JSON instead of a table")
    policy_history.set_defaults(func=cmd_policy_history)
    policy_sub.add_parser("show", help="the active policy document and its version").set_defaults(func=cmd_policy_show)

    monitor = sub.add_parser(
        "monitor",
        help="drift, volume and realized performance of captured decisions; MAY START A RETRAINING (--no-retrain)",
        description="Measure drift, flagged rate and realized performance of the decisions captured in a window. "
        "When drift stays at the act level for FRAUDOPS_DRIFT_WINDOWS consecutive non-overlapping windows (and "
        "the cooldown has passed), this command STARTS A RETRAINING on your stack (a candidate is promoted only "
        "if it beats Production). Pass --no-retrain to only report. Drift and rates are judged only from "
        "FRAUDOPS_MONITOR_MIN_RECORDS decisions of a version (the report says when there were too few).",
    )
    monitor.add_argument(
        "--since", help="window start, ISO time (default: where the last window ended, else until minus the window)"
    )
    monitor.add_argument(
        "--until", help="window end, ISO time (default: now minus FRAUDOPS_CAPTURE_DELIVERY_DELAY_SECONDS)"
    )
    monitor.add_argument("--no-retrain", action="store_true", help="report only: never start a retraining")
    monitor.set_defaults(func=cmd_monitor)

    labels = sub.add_parser("import-labels", help="store fraud labels (CSV or JSON Lines: transaction_id,is_fraud)")
    labels.add_argument("file", help="CSV with a header, or JSON Lines")
    labels.set_defaults(func=cmd_import_labels)

    appended = sub.add_parser("append-labeled", help="add labeled captured decisions to the training table")
    appended.add_argument("--since", help="window start, ISO time (default: 30 days before --until)")
    appended.add_argument("--until", help="window end, ISO time (default: now)")
    appended.add_argument("--db", help=db_ignored)
    appended.set_defaults(func=cmd_append_labeled)

    drift = sub.add_parser("drift-demo", help="the monitoring loop end to end: drift, labels, retraining, recovery")
    drift.add_argument("--rows", type=int, default=50_000, help="training rows, and the drifted window (50,000)")
    drift.add_argument("--traffic", type=int, default=10_000, help="transactions in the other windows (10,000)")
    drift.set_defaults(func=cmd_drift_demo)

    smoke = sub.add_parser("smoke", help="health, keys, a prediction, /model (and a retraining) on a stack")
    smoke.add_argument("--url", help="the API's base URL (default: the local stack)")
    smoke.add_argument("--key", help="an API key (default: the local stack's)")
    smoke.add_argument("--stack", help="a deployed stack: URL, key and state machine from its outputs (with --aws)")
    smoke.add_argument("--retrain", action="store_true", help="also run one retraining and report its decision")
    smoke.set_defaults(func=cmd_smoke)

    from fraudops_dev import deploy_parameters

    deploy = sub.add_parser(
        "deploy", help="sam deploy with some parameters changed and the rest as samconfig.toml's environment sets them"
    )
    deploy_parameters.build_parser(deploy).set_defaults(func=cmd_deploy)

    ui = sub.add_parser("ui", help="MLflow's UI on a read-only copy of a deployed stack's registry (127.0.0.1)")
    ui.add_argument("--stack", help="CloudFormation stack name (reads its ModelBucket output)")
    ui.add_argument("--bucket", help="the model bucket, instead of --stack")
    ui.add_argument("--port", type=int, default=None, help="port (default FRAUDOPS_MLFLOW_UI_PORT, 5001)")
    ui.set_defaults(func=cmd_ui)

    serve = sub.add_parser("serve", help="serve the API with uvicorn in the foreground")
    serve.add_argument("--host", help="bind address (default FRAUDOPS_API_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default FRAUDOPS_API_PORT, 8000)")
    serve.add_argument("--log-file", help="log to this file, rotated at 10 MB (default: the terminal)")
    serve.set_defaults(func=cmd_serve)

    s3 = sub.add_parser("s3-server", help="run moto's S3 server on 127.0.0.1 (foreground)")
    s3.add_argument("--port", type=int, help="port (default FRAUDOPS_S3_PORT, 5000)")
    s3.set_defaults(func=cmd_s3_server)

    predict = sub.add_parser("predict", help="send one transaction to a running API")
    predict.add_argument("--url", help="default http://127.0.0.1:<FRAUDOPS_API_PORT>/predict")
    predict.add_argument("--api-key", help="default: FRAUDOPS_API_KEYS or .fraudops/api-key")
    predict.add_argument("--json", help="transaction JSON (default: an example account takeover)")
    predict.set_defaults(func=cmd_predict)

    sub.add_parser("up", help="start the MLflow UI and the API in the background").set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop the local stack (its state stays on disk)").set_defaults(func=cmd_down)
    logs = sub.add_parser("logs", help="show the local stack's logs")
    logs.add_argument("--lines", type=int, default=40, help="lines per log (default 40)")
    logs.set_defaults(func=cmd_logs)

    retrain = sub.add_parser(
        "retrain",
        aliases=["retrain-local"],  # the old name keeps working
        help="run the retraining state machine (moto's ASL engine) on your stack's data and registry",
    )
    retrain.add_argument("--db", help=db_ignored + "; 200,000 rows are generated into an empty lake")
    retrain.add_argument("--runs", type=int, default=1, help="executions to run one after another")
    retrain.add_argument(
        "--isolated", action="store_true", help="run in a throwaway copy of AWS instead (nothing kept)"
    )
    retrain.set_defaults(func=cmd_retrain)

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

    check = sub.add_parser("batch-check", help="send every row of a batch-score run to /predict and compare")
    check.add_argument("output", help="the run's folder (printed by batch-score)")
    check.add_argument("--workers", type=int, help="processes (default: cores)")
    check.set_defaults(func=cmd_batch_check)

    demo = sub.add_parser("demo", help="generate, train, promote, serve and predict, end to end")
    demo.add_argument("--rows", type=int, default=200_000, help="rows to generate (default 200,000)")
    demo.add_argument("--seed", type=int, default=None, help="random seed (default FRAUDOPS_SEED)")
    demo.set_defaults(func=cmd_demo)
    return parser


def _settings_problem(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        name = "FRAUDOPS_" + str(item["loc"][0]).upper() if item.get("loc") else "a setting"
        parts.append(f"{name}={item.get('input')}: {item['msg']}")
    return "invalid setting " + "; ".join(parts) + " (fix or unset the variable)"


def _reported_in_one_line(error: Exception, *expected: type[Exception]) -> bool:
    """Errors a user can act on (ours, bad input, the disk, SQLite and MLflow's storage); anything else
    is a bug and keeps its traceback."""
    import sqlite3

    if isinstance(error, (FraudopsError, ValidationError, OSError, ValueError, sqlite3.Error, *expected)):
        return True
    return disk_full_cause(error) is not None or type(error).__module__.split(".")[0] in {"sqlalchemy", "mlflow"}


def _message(error: Exception) -> str:
    """One line. A full disk is named as such, whatever layer noticed it (SQLAlchemy's own message starts
    with "Query-invoked autoflush"), and says that what was there is kept."""
    full = disk_full_cause(error)
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if full and not isinstance(error, FraudopsError):
        return f"{full}; nothing was changed: free some space and run it again ({type(error).__name__})"
    return text


def load_settings(aws: bool) -> Settings:
    """The settings for a laptop command: S3 mode with no endpoint means the local S3 server, unless
    AWS was asked for."""
    get_settings.cache_clear()
    settings = get_settings()
    if aws:
        settings = settings.model_copy(update={"aws": True})
    if settings.storage == "s3" and not settings.s3_endpoint_url and not settings.aws:
        settings = settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{settings.s3_port}"})
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    from fraudops_dev.local import StackError

    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose or args.debug)
    try:
        settings = load_settings(args.aws)
        return int(args.func(args, settings))
    except KeyboardInterrupt:
        print(f"fraudops {args.command}: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130
    except Exception as error:
        if not _reported_in_one_line(error, StackError):
            raise
        if args.debug:
            traceback.print_exc()
        message = _settings_problem(error) if isinstance(error, ValidationError) else _message(error)
        if "Could not connect to the endpoint URL" in message:
            message += "; in S3 mode the local S3 server must be up (FRAUDOPS_STORAGE=s3 make up)"
        hint = "" if args.debug else " (--debug shows the traceback)"
        print(f"fraudops {args.command}: error: {' '.join(message.split())}{hint}", file=sys.stderr)
        if getattr(error, "detail", ""):  # a StackError's log tail: what the service said before it died
            print(error.detail, file=sys.stderr)  # type: ignore[attr-defined]
        return 2


if __name__ == "__main__":
    sys.exit(main())
