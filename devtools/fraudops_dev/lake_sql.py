"""`fraudops sql "SELECT …"`: DuckDB over the lake's committed files, the same tables and columns an
analyst queries in Athena (the template's Glue tables).

Each table is a view over exactly the files of its newest manifest (never a crashed writer's
orphans), with ``dt`` from the Hive path. A folder lake is read in place by DuckDB's Parquet reader
(``read_parquet`` with ``hive_partitioning``); an S3 lake is read through the runtime's ranged-GET
reader into Arrow (DuckDB's httpfs extension is downloaded at first use, which an offline laptop and a
sealed CI cannot do).
"""

from __future__ import annotations

from typing import Any

from fraudops.core.config import Settings
from fraudops.core.errors import DataError
from fraudops.lake import TABLES, Lake


def connect(settings: Settings) -> Any:
    """A DuckDB connection with one view per lake table."""
    import duckdb

    lake = Lake(settings)
    connection = duckdb.connect()
    for name in TABLES:
        table = lake.table(name)
        files = table.files()
        paths = [table.storage.local_path(f.key) for f in files]
        if files and all(paths):
            listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
            connection.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listing}], hive_partitioning = true, "
                "hive_types = {'dt': VARCHAR})"
            )
        else:
            arrow = table.read(files=files)
            connection.register(f"_{name}_arrow", arrow)
            connection.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}_arrow")
    return connection


def run_sql(settings: Settings, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    import duckdb

    connection = connect(settings)
    try:
        result = connection.execute(query)
        columns = [d[0] for d in result.description] if result.description else []
        return columns, result.fetchall()
    except duckdb.Error as error:
        raise DataError(f"the query failed: {error}") from None
    finally:
        connection.close()
