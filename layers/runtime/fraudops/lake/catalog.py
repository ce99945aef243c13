"""The one place that builds the lake's Iceberg catalog and its tables (pyiceberg is imported only in
``fraudops.lake``, which the API image never imports).

- ``sql`` (the default): pyiceberg's SQL catalog in a SQLite file beside a local lake (or in the state
  dir for a lake in S3); its commits are optimistic (``UPDATE … WHERE metadata_location = <old>``), so
  two writers racing for one table both land, one after a retry.
- ``glue``: the Glue Data Catalog in AWS, the database the template declares; Athena and EMR read the
  same tables. The warehouse is the lake URI either way (``s3://<DataBucket>/lake`` in AWS), each table
  at ``<lake>/<table>``.

Tables are created at their first write (format version 2, partitioned by ``identity(dt)``, the schema from
``fraudops.lake.schemas``), tolerant of a concurrent creator. pyiceberg's own commit retry is switched
off on our tables (``commit.retry.num-retries = 0``): it would re-apply a commit onto a newer snapshot
without re-running our checks (a curation checkpoint, --append's newer-steps rule); our writer retries
itself, re-checking first (``fraudops.lake.table``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fraudops.core.config import Settings
from fraudops.core.errors import DataError
from fraudops.lake.schemas import PARTITION_COLUMN, TableSchema

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table

log = logging.getLogger(__name__)

CATALOG_NAME = "fraudops"
SCHEMA_VERSION_PROPERTY = "fraudops.schema_version"
# Table properties of every lake table: what Athena and Spark need to agree with pyiceberg on, and ours.
TABLE_PROPERTIES = {
    "format-version": "2",
    "write.format.default": "parquet",
    "write.parquet.compression-codec": "zstd",
    "write.parquet.row-group-limit": str(256 * 1024),  # the row groups of the old layout: same read speed
    "commit.retry.num-retries": "0",  # our writer retries, re-running its checks (see the module doc)
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}


def _file_io_properties(settings: Settings) -> dict[str, str]:
    """The FileIO of the tables: for a lake in S3 ours over boto3 (``fraudops.lake.fileio``: the endpoint,
    region and credentials of every other S3 call, ``FRAUDOPS_S3_ENDPOINT_URL`` for moto); for a folder,
    pyiceberg's own."""
    if not settings.lake_root_uri.startswith("s3://"):
        return {}
    from fraudops.lake.fileio import Boto3FileIO

    io_impl = f"{Boto3FileIO.__module__}.{Boto3FileIO.__name__}"
    properties = {"py-io-impl": io_impl, "s3.region": settings.aws_region}
    if settings.s3_endpoint_url:
        properties["s3.endpoint"] = settings.s3_endpoint_url
    return properties


def lake_catalog(settings: Settings) -> Catalog:
    """The lake's catalog (one per process and configuration: a SQL catalog holds a connection pool)."""
    from fraudops.store.s3 import check_aws_is_intended

    if settings.lake_root_uri.startswith("s3://") or settings.lake_catalog == "glue":
        check_aws_is_intended(settings)  # a laptop never falls through to the shell's AWS credentials
    if settings.lake_catalog == "sql":
        return _catalog("sql", settings.lake_catalog_database_uri, settings.lake_root_uri,
                        tuple(sorted(_file_io_properties(settings).items())))  # fmt: skip
    glue = {"glue.region": settings.aws_region}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_GLUE")  # moto's Glue in tests; unset in AWS
    if endpoint:
        glue["glue.endpoint"] = endpoint
    return _catalog(
        "glue", "", settings.lake_root_uri, tuple(sorted({**_file_io_properties(settings), **glue}.items()))
    )


def reset_lake_catalogs() -> None:
    """Forget cached catalogs (tests that change endpoints within one process)."""
    _catalog.cache_clear()


@lru_cache(maxsize=16)
def _catalog(kind: str, uri: str, warehouse: str, extra: tuple[tuple[str, str], ...]) -> Catalog:
    properties = {"warehouse": _as_uri(warehouse), **dict(extra)}
    if kind == "sql":
        from pyiceberg.catalog.sql import SqlCatalog

        if uri.startswith("sqlite:///"):
            os.makedirs(os.path.dirname(uri.removeprefix("sqlite:///")) or ".", exist_ok=True)
        for attempt in range(3):  # two processes creating the catalog's own tables at once: one loses
            try:
                return SqlCatalog(CATALOG_NAME, uri=uri, **properties)
            except Exception as error:  # sqlalchemy.exc.OperationalError ("table ... already exists")
                if attempt == 2 or "already exists" not in str(error):
                    raise
        raise AssertionError("unreachable")
    from pyiceberg.catalog.glue import GlueCatalog

    return GlueCatalog(CATALOG_NAME, **properties)


def _as_uri(location: str) -> str:
    return location if "://" in location else f"file://{os.path.abspath(location)}"


def iceberg_schema(schema: TableSchema) -> Schema:
    """The table's Iceberg schema: the declared columns (field ids 1..n in declaration order), then ``dt``."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField

    fields = [
        NestedField(i, c.name, _iceberg_type(c.iceberg), required=not c.nullable, doc=c.comment)
        for i, c in enumerate(schema.columns, start=1)
    ]
    dt = NestedField(len(fields) + 1, PARTITION_COLUMN, _iceberg_type("string"), required=True, doc="the partition")
    return Schema(*fields, dt)


def _iceberg_type(name: str) -> Any:
    from pyiceberg import types

    known = {
        "int": types.IntegerType(),
        "long": types.LongType(),
        "double": types.DoubleType(),
        "string": types.StringType(),
        "boolean": types.BooleanType(),
        "timestamptz": types.TimestamptzType(),
    }
    return known[name]


def partition_spec(schema: TableSchema) -> PartitionSpec:
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import IdentityTransform

    return PartitionSpec(
        PartitionField(len(schema.columns) + 1, 1000, IdentityTransform(), PARTITION_COLUMN), spec_id=0
    )


def table_exists(settings: Settings, name: str) -> bool:
    return bool(lake_catalog(settings).table_exists((settings.lake_database, name)))


def load_table(settings: Settings, schema: TableSchema) -> Table | None:
    """The lake table ``schema.name`` as committed, or None before its first write (reads never create)."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        table = lake_catalog(settings).load_table((settings.lake_database, schema.name))
    except NoSuchTableError:
        return None
    _check_schema_version(table, schema)
    return table


def _check_schema_version(table: Table, schema: TableSchema) -> None:
    written = int(table.metadata.properties.get(SCHEMA_VERSION_PROPERTY, "0"))
    if written > schema.version:
        raise DataError(
            f"the lake's {schema.name} table was written with schema version {written}, newer than this code's "
            f"{schema.version}: upgrade fraudops"
        )


def load_or_create_table(
    settings: Settings, schema: TableSchema, location: str, before_create: Callable[[], None] | None = None
) -> Table:
    """The lake table ``schema.name``, created (empty) at first use (``before_create`` may refuse); a
    concurrent creator's table is loaded instead. Refuses data written by a newer schema version than
    this code's."""
    from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError

    catalog = lake_catalog(settings)
    identifier = (settings.lake_database, schema.name)
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        if before_create is not None:
            before_create()
        if settings.lake_catalog == "sql":
            catalog.create_namespace_if_not_exists(settings.lake_database)
        try:
            table = catalog.create_table(
                identifier,
                iceberg_schema(schema),
                location=_as_uri(location),
                partition_spec=partition_spec(schema),
                properties={**TABLE_PROPERTIES, SCHEMA_VERSION_PROPERTY: str(schema.version)},
            )
            log.info("created the lake table %s.%s at %s", *identifier, location)
        except TableAlreadyExistsError:
            table = catalog.load_table(identifier)
    _check_schema_version(table, schema)
    return table
