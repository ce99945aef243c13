"""Issue 27 item 7: what `fraudops --help` and `make sql` do is what they say."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fraudops_dev.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    subparsers = build_parser()._subparsers
    assert subparsers is not None
    action = subparsers._group_actions[0]
    return dict(action.choices or {})


def test_the_help_says_generate_writes_the_lake() -> None:
    main_help = build_parser().format_help()
    generate_line = next(line for line in main_help.splitlines() if "fraudops generate" in line)
    assert "lake" in generate_line and "fraud.db" not in generate_line
    naming = [line.split()[0] for line in main_help.splitlines() if "fraud.db" in line]
    assert set(naming) == {"import", "export"}, naming  # the SQLite ways in and out, and nothing else


def test_only_the_sqlite_ways_in_and_out_name_a_sqlite_file_in_their_help() -> None:
    """`import`/`export` (and `--db` of generate/import-csv) move a SQLite file; every other command
    works on the lake, and its help must not say otherwise."""
    naming = {name for name, parser in _subcommands().items() if "fraud.db" in parser.format_help()}
    assert naming <= {"import", "export"}, naming
    for name in ("append-labeled", "retrain"):
        assert "lake" in _subcommands()[name].format_help()


QUERIES = [
    "SELECT json_extract_string('{\"a\": \"b\"}', '$.a') AS v",  # DuckDB's JSON path starts with $
    "SELECT '$HOME $(USER) $$ ${x}' AS v",  # neither make nor the shell may expand any of these
    "SELECT '`echo injected`' AS v",  # nor run a command the query contains
]


@pytest.mark.slow
@pytest.mark.parametrize("query", QUERIES)
def test_make_sql_passes_the_query_through_as_typed(query: str, tmp_path: Path) -> None:
    import duckdb

    expected = duckdb.connect().execute(query).fetchall()[0][0]
    stamp = tmp_path / ".installed"  # stands in for the venv's stamp, newer than pyproject.toml: no install
    stamp.touch()
    env = {**os.environ, "FRAUDOPS_STATE_DIR": str(tmp_path / "state"), "HOME": str(tmp_path), "USER": "someone"}
    result = subprocess.run(
        ["make", "-s", "sql", f"VENV={Path(sys.executable).parent.parent}", f"STAMP={stamp}", f"Q={query}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["v", expected], result.stdout


def test_make_sql_without_a_query_says_how(tmp_path: Path) -> None:
    stamp = tmp_path / ".installed"
    stamp.touch()
    result = subprocess.run(["make", "-s", "sql", f"STAMP={stamp}"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0 and "usage: make sql Q='SELECT" in result.stdout


def test_make_fmt_formats_and_fixes_what_it_finds(tmp_path: Path) -> None:
    """The README's `make fmt`: ruff formats the files under the folder it runs in, then fixes what
    `ruff check` can fix (here an unused import)."""
    for name in ("pyproject.toml", "constraints.txt"):  # the stamp's prerequisites, older than the stamp
        (tmp_path / name).write_text("")
    stamp = tmp_path / ".installed"
    stamp.touch()
    messy = tmp_path / "messy.py"
    messy.write_text("import os\nx = {  'a':1 }\n")
    result = subprocess.run(
        ["make", "-s", "-f", str(ROOT / "Makefile"), "fmt", f"VENV={Path(sys.executable).parent.parent}",
         f"STAMP={stamp}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert messy.read_text().strip() == 'x = {"a": 1}'


def test_make_clean_data_deletes_each_table_and_names_it(tmp_path: Path) -> None:
    """The README's `make clean-data`: every data/*.db (and its rejects file) goes, each one named first."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("fraud.db", "fraud.rejects.csv", "other.db", "notes.txt"):
        (data / name).write_text("x")
    result = subprocess.run(["make", "-f", str(ROOT / "Makefile"), "clean-data"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in data.iterdir()) == ["notes.txt"]
    assert "deleting data/fraud.db" in result.stdout and "deleting data/other.db" in result.stdout
