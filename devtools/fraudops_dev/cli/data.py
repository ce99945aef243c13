"""Commands that bring transactions and labels into the lake, and take them out: generate, import-csv,
import, export, import-labels, append-labeled."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fraudops.core.config import Settings
from fraudops_dev.cli.common import DB_IGNORED, AddCommand, Progress, Subparsers, apply_db_and_lake, parse_time
from fraudops_dev.datagen import DRIFT_SCENARIOS


def _lake_summary(settings: Settings) -> dict[str, Any]:
    from fraudops.lake import Lake

    lake = Lake(settings)
    snapshot, files = lake.transactions.snapshot_and_files()
    return {"lake": lake.root_uri, "table": "transactions", "table_version": snapshot.version,
            "snapshot_id": snapshot.snapshot_id, "rows_in_table": snapshot.rows,
            "partitions": len({f.dt for f in files})}  # fmt: skip


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
    progress = Progress(config.n_rows, "rows written")
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
                        progress=Progress(0, "rows"), rejects_path=rejects)  # fmt: skip
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
        progress=Progress(0, "rows"), source="import", properties={"imported": Path(args.db).name},
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
    rows = write_transactions(Path(args.db), batches, progress=Progress(0, "rows"))
    print(json.dumps({"db": args.db, "rows": rows, "integrity_ok": integrity_ok(Path(args.db))}))
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

    settings = apply_db_and_lake(args, settings)
    until = parse_time(args.until) or datetime.now(UTC)
    since = parse_time(args.since) or until - timedelta(days=30)
    frame = labeled_rows(settings, since, until)
    if frame.empty:
        print(json.dumps({"appended": 0, "reason": "no labeled decisions in the window"}))
        return 0
    table = Lake(settings).transactions
    written = write_transaction_frames(table, [frame], append=True, source="curated")
    print(json.dumps({"appended": written, "fraud": int(frame["isFraud"].sum()), "rows": table.snapshot().rows}))
    return 0


def _add_generate(sub: Subparsers) -> None:
    generate = sub.add_parser("generate", help="write generated PaySim-schema transactions to the lake")
    generate.add_argument("--rows", type=int, default=200_000, help="rows to generate (PaySim: 6362620)")
    generate.add_argument("--seed", type=int, default=None, help="random seed (default FRAUDOPS_SEED)")
    generate.add_argument("--fraud-rate", type=float, default=None, help="fraud share (default PaySim's 0.129%%)")
    generate.add_argument("--drift", default="none", choices=DRIFT_SCENARIOS, help="a documented drift scenario")
    generate.add_argument("--step-offset", type=int, default=0, help="add this to every step (later traffic)")
    generate.add_argument("--append", action="store_true", help="add the rows (new steps only) instead of replacing")
    generate.add_argument("--db", help="write a SQLite file instead of the lake (the way out to other tools)")
    generate.set_defaults(func=cmd_generate)


def _add_import_csv(sub: Subparsers) -> None:
    importer = sub.add_parser("import-csv", help="import the real PaySim CSV (.csv, .csv.gz or .zip) into the lake")
    importer.add_argument("csv", help="path to the PaySim CSV, or the .csv.gz / .zip it comes in")
    importer.add_argument("--db", help="import into this SQLite file instead of the lake")
    importer.add_argument("--append", action="store_true", help="add the rows (new steps only) instead of replacing")
    importer.add_argument(
        "--max-reject-share", type=float, default=0.01, help="import nothing if more rows than this share are bad"
    )
    importer.add_argument("--strict", action="store_true", help="import nothing if any row is bad")
    importer.set_defaults(func=cmd_import_csv)


def _add_import(sub: Subparsers) -> None:
    import_db = sub.add_parser("import", help="load a SQLite fraud.db (transactions table) into the lake")
    import_db.add_argument("db", help="the SQLite file")
    import_db.add_argument("--append", action="store_true", help="add the rows (new steps only) instead of replacing")
    import_db.set_defaults(func=cmd_import_db)


def _add_export(sub: Subparsers) -> None:
    export_db = sub.add_parser("export", help="write the lake's transactions to a SQLite fraud.db")
    export_db.add_argument("db", help="the SQLite file to write (replaced only when complete)")
    export_db.add_argument("--days", type=int, default=None, help="only the newest N days")
    export_db.set_defaults(func=cmd_export_db)


def _add_import_labels(sub: Subparsers) -> None:
    labels = sub.add_parser("import-labels", help="store fraud labels (CSV or JSON Lines: transaction_id,is_fraud)")
    labels.add_argument("file", help="CSV with a header, or JSON Lines")
    labels.set_defaults(func=cmd_import_labels)


def _add_append_labeled(sub: Subparsers) -> None:
    appended = sub.add_parser("append-labeled", help="add labeled captured decisions to the training table")
    appended.add_argument("--since", help="window start, ISO time (default: 30 days before --until)")
    appended.add_argument("--until", help="window end, ISO time (default: now)")
    appended.add_argument("--db", help=DB_IGNORED)
    appended.set_defaults(func=cmd_append_labeled)


COMMANDS: dict[str, AddCommand] = {
    "generate": _add_generate,
    "import-csv": _add_import_csv,
    "import": _add_import,
    "export": _add_export,
    "import-labels": _add_import_labels,
    "append-labeled": _add_append_labeled,
}
