"""The lake's tables, declared once: columns, Arrow types, the Iceberg and Glue/Athena types, the
partition rule.

Every reader and writer (training, curation, the monitor, ``fraudops sql``, the Glue tables, a Spark
job) takes the layout from here. Each table is an Apache Iceberg table (format version 2) at

    <lake root>/<table>/data/dt=YYYY-MM-DD/<file>.parquet     (zstd Parquet, partitioned by identity(dt))
    <lake root>/<table>/metadata/…                            (Iceberg metadata: snapshots, manifests)

Types are those Athena's Iceberg supports (no tinyint/smallint: the int8 flags are Iceberg ``int``,
read back as int8). A schema change bumps the table's ``version``; it is a table property, and a reader
refuses a table written by a newer schema than it knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

import pyarrow as pa

from fraudops.core.schema import COLUMNS

PARTITION_COLUMN: Final = "dt"
DATE_FORMAT: Final = "%Y-%m-%d"
# PaySim's ``step`` is the hour since the start of the simulation: step 0 is this day's first hour, so a
# transaction's partition is EPOCH + step // 24 days. Fixed (not a setting): it is part of the layout.
TRANSACTIONS_EPOCH: Final = date(2026, 1, 1)
COMPRESSION: Final = "zstd"
SCHEMA_VERSION_KEY: Final = b"fraudops.schema_version"
TABLE_KEY: Final = b"fraudops.table"


@dataclass(frozen=True)
class Column:
    name: str
    arrow: pa.DataType
    glue: str  # the Hive DDL type of the template's partition-projection Glue tables (until they go)
    comment: str
    nullable: bool = False

    @property
    def iceberg(self) -> str:
        """The Iceberg type, one Athena's Iceberg supports (no tinyint: int8 is stored as ``int``;
        https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-supported-data-types.html)."""
        if pa.types.is_timestamp(self.arrow):
            return "timestamptz" if self.arrow.tz else "timestamp"
        return _ICEBERG_TYPES[str(self.arrow)]


_ICEBERG_TYPES: Final = {
    "int8": "int",
    "int32": "int",
    "int64": "long",
    "double": "double",
    "string": "string",
    "bool": "boolean",
}


@dataclass(frozen=True)
class TableSchema:
    name: str
    version: int
    columns: tuple[Column, ...]
    description: str
    dictionary_columns: tuple[str, ...] = ()  # read back dictionary-encoded (few distinct values)

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        fields = [pa.field(c.name, c.arrow, nullable=c.nullable) for c in self.columns]
        metadata = {SCHEMA_VERSION_KEY: str(self.version).encode(), TABLE_KEY: self.name.encode()}
        return pa.schema(fields, metadata=metadata)

    def glue_columns(self) -> list[dict[str, str]]:
        """The ``Columns`` of the Glue table (the template's declaration is tested against this)."""
        return [{"Name": c.name.lower(), "Type": c.glue} for c in self.columns]


def _transaction_columns() -> tuple[Column, ...]:
    money = "double"
    types: dict[str, tuple[pa.DataType, str, str]] = {
        "step": (pa.int32(), "int", "hours since the start of the data (PaySim's step); the partition comes from it"),
        "type": (pa.string(), "string", "CASH_IN, CASH_OUT, DEBIT, PAYMENT or TRANSFER"),
        "amount": (pa.float64(), money, "amount of the transaction"),
        "nameOrig": (pa.string(), "string", "origin account"),
        "oldbalanceOrg": (pa.float64(), money, "origin balance before"),
        "newbalanceOrig": (pa.float64(), money, "origin balance after"),
        "nameDest": (pa.string(), "string", "destination account"),
        "oldbalanceDest": (pa.float64(), money, "destination balance before"),
        "newbalanceDest": (pa.float64(), money, "destination balance after"),
        "isFraud": (pa.int8(), "tinyint", "the label: 1 fraud, 0 not"),
        "isFlaggedFraud": (pa.int8(), "tinyint", "PaySim's rule flag"),
    }
    assert tuple(types) == COLUMNS  # the PaySim columns, in the PaySim order
    return (
        *(Column(name, arrow, glue, comment) for name, (arrow, glue, comment) in types.items()),
        Column("source", pa.string(), "string", "where the row came from: import, generate or curated"),
        Column("transaction_id", pa.string(), "string", "the client's id (curated rows only)", nullable=True),
    )


_TIME = pa.timestamp("ms", tz="UTC")

TRANSACTIONS: Final = TableSchema(
    name="transactions",
    version=1,
    columns=_transaction_columns(),
    description="Training history: imported or generated PaySim rows and curated (matured, labeled) traffic.",
    dictionary_columns=("type", "source"),
)

DECISIONS: Final = TableSchema(
    name="decisions",
    version=1,
    columns=(
        Column("decision_time", _TIME, "timestamp", "when the API decided (UTC); the partition comes from it"),
        Column("request_id", pa.string(), "string", "the API request"),
        Column("transaction_id", pa.string(), "string", "the client's transaction id", nullable=True),
        Column("model_version", pa.string(), "string", "the registry version that scored it"),
        Column("probability", pa.float64(), "double", "the model's fraud probability"),
        Column("prediction", pa.float64(), "double", "1.0 flagged, 0.0 not"),
        Column("threshold", pa.float64(), "double", "the decision threshold in force"),
        *(
            Column(c.name, c.arrow, c.glue, c.comment, nullable=True)
            for c in _transaction_columns()
            if c.name in COLUMNS and c.name not in ("isFraud", "isFlaggedFraud")
        ),
        Column("details", pa.string(), "string", "any other fields of the capture record, as JSON", nullable=True),
    ),
    description="Captured decisions, compacted from the capture files (Firehose objects in AWS).",
)

LABELS: Final = TableSchema(
    name="labels",
    version=1,
    columns=(
        Column("transaction_id", pa.string(), "string", "the transaction the label is about"),
        Column("is_fraud", pa.bool_(), "boolean", "the label"),
        Column("received_at", _TIME, "timestamp", "when it arrived (UTC); the newest word per transaction wins"),
        Column("source", pa.string(), "string", "who sent it (feedback, import, ...)"),
    ),
    description="Label events, append-only; the newest per transaction_id wins.",
)

TABLES: Final = {table.name: table for table in (TRANSACTIONS, DECISIONS, LABELS)}


def table_schema(name: str) -> TableSchema:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"no lake table {name!r}; the tables are {', '.join(TABLES)}") from None


# --- partitions ------------------------------------------------------------------------------------


def dt_of_step(step: int) -> str:
    return (TRANSACTIONS_EPOCH + timedelta(days=int(step) // 24)).strftime(DATE_FORMAT)


def first_step_of(dt: str) -> int:
    """The first PaySim step of a transactions partition."""
    return (datetime.strptime(dt, DATE_FORMAT).date() - TRANSACTIONS_EPOCH).days * 24


def dt_of_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime(DATE_FORMAT)


def partition_dir(table: str, dt: str) -> str:
    """The key prefix of one partition's data files, relative to the lake root (pyiceberg's layout)."""
    return f"{table}/data/{PARTITION_COLUMN}={dt}"
