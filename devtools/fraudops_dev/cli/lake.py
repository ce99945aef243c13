"""Commands that work on what the lake holds in place: sql (DuckDB over its tables), curate, and lake
(migrate: the old layout to Iceberg tables; maintain: snapshot expiry and orphan cleanup)."""

from __future__ import annotations

import argparse
import json

from fraudops.core.config import Settings
from fraudops_dev.cli.common import AddCommand, Subparsers


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


def _add_sql(sub: Subparsers) -> None:
    sql = sub.add_parser("sql", help="run SQL (DuckDB) over the lake: transactions, decisions, labels")
    sql.add_argument("query", help='e.g. "SELECT count(*) FROM transactions"')
    sql.add_argument("--format", choices=["tsv", "json"], default="tsv", help="output format")
    sql.set_defaults(func=cmd_sql)


def _add_curate(sub: Subparsers) -> None:
    curate = sub.add_parser("curate", help="turn matured captured decisions + labels into training rows")
    curate.set_defaults(func=cmd_curate)


def cmd_lake_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.lake_migrate import migrate_lake

    print(json.dumps(migrate_lake(settings), indent=2))
    return 0


def cmd_lake_maintain(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.lake.maintenance import maintain_lake

    print(json.dumps(maintain_lake(settings), indent=2))
    return 0


def _add_lake(sub: Subparsers) -> None:
    lake = sub.add_parser("lake", help="the lake's tables: migrate (old layout -> Iceberg), maintain")
    lake_sub = lake.add_subparsers(dest="lake_command", required=True, metavar="ACTION", help="migrate | maintain")
    migrate = lake_sub.add_parser(
        "migrate",
        help="turn a lake of the old layout (_manifests, before issue 29) into Iceberg tables: once, after "
        "upgrading; idempotent and crash-safe (docs/lake.md)",
    )
    migrate.set_defaults(func=cmd_lake_migrate)
    maintain = lake_sub.add_parser(
        "maintain", help="expire old snapshots and delete orphan files now (each curation run does it too)"
    )
    maintain.set_defaults(func=cmd_lake_maintain)


COMMANDS: dict[str, AddCommand] = {
    "sql": _add_sql,
    "curate": _add_curate,
    "lake": _add_lake,
}
