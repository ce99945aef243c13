"""Commands that work on what the lake holds in place: sql (DuckDB over its tables) and curate."""

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


COMMANDS: dict[str, AddCommand] = {
    "sql": _add_sql,
    "curate": _add_curate,
}
