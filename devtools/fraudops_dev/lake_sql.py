"""`fraudops sql "SELECT …"`: DuckDB over the lake's Iceberg tables, the same tables and columns an
analyst queries in Athena (the Glue Data Catalog's Iceberg tables).

Each table is a view over exactly the data files pyiceberg plans for its current snapshot (never a
crashed writer's orphans); ``dt`` is a column of the files (Iceberg writes its partition source column).
DuckDB's Iceberg extension is not bundled (it downloads at first use, which an offline laptop and a
sealed CI cannot do), so a folder lake is read in place by DuckDB's Parquet reader over the planned
paths, and an S3 lake through the runtime's ranged-GET reader into Arrow.
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
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listing}], hive_partitioning = false, "
                "union_by_name = true)"
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
