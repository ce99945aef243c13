"""The lake in AWS is the code's lake: Iceberg tables in the template's Glue database, under the warehouse
the functions are given, with only the types Athena's Iceberg supports, so Athena, Spark on EMR and
`fraudops sql` answer the same SQL over the same committed snapshot.

The tables are not declared in the template (template.yaml's lake section says why): pyiceberg creates
them from ``fraudops.lake.schemas`` at the first write. So the guarantee the template's Hive tables had
(their columns equal the code's) becomes: the Iceberg schema pyiceberg builds from each table's Arrow
schema (``Catalog.create_table`` with a ``pa.Schema``) has the code's columns, with the Iceberg types
Athena reads, and the Glue columns pyiceberg registers beside it name them as Athena shows them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from cfnlint.decode import decode
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.glue import _IcebergSchemaToGlueType
from pyiceberg.schema import visit

from fraudops.lake import PARTITION_COLUMN, TABLES
from fraudops.lake.catalog import iceberg_schema

ROOT = Path(__file__).resolve().parents[2]
LAKE_FUNCTIONS = ("TrainFunction", "PromoteFunction", "CurateFunction", "MonitorFunction")

# "Supported data types for Iceberg tables in Athena"
# (https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-supported-data-types.html): Iceberg type ->
# Athena type. tinyint, smallint and char have no Iceberg type; time and fixed(L) Athena does not read.
ATHENA_ICEBERG_TYPES = {
    "boolean": "boolean", "int": "int", "long": "bigint", "float": "float", "double": "double",
    "string": "string", "binary": "binary", "date": "date", "timestamp": "timestamp", "timestamptz": "timestamptz",
}  # fmt: skip
GLUE_COLUMN_TYPES = {"boolean": "boolean", "int": "int", "long": "bigint", "double": "double", "string": "string",
                     "timestamptz": "timestamp"}  # fmt: skip
# Our Arrow types -> the Iceberg type pyiceberg gives them (int8 widens to int: Iceberg has no tinyint;
# millisecond timestamps become Iceberg's microsecond ones, with the zone kept).
ARROW_TO_ICEBERG = {
    pa.int8(): "int", pa.int32(): "int", pa.int64(): "long", pa.float64(): "double", pa.string(): "string",
    pa.bool_(): "boolean", pa.timestamp("ms", tz="UTC"): "timestamptz",
}  # fmt: skip


def template() -> dict[str, Any]:
    parsed, problems = decode(str(ROOT / "template.yaml"))
    assert not problems and parsed is not None
    return dict(parsed)


def test_the_template_declares_the_database_at_the_warehouse_and_no_tables() -> None:
    """The partition-projection Hive tables are gone (Athena would read folders, not snapshots), and a table
    pyiceberg creates without a location lands in <warehouse>/<table>, where the roles' S3 grants are."""
    resources = template()["Resources"]
    assert [r["Type"] for r in resources.values() if r["Type"] == "AWS::Glue::Table"] == []
    database = resources["LakeDatabase"]["Properties"]["DatabaseInput"]
    assert database["LocationUri"] == {"Fn::Sub": "s3://${DataBucket}/lake"}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_each_lake_table_has_only_types_athenas_iceberg_reads(name: str) -> None:
    schema = TABLES[name]
    iceberg = iceberg_schema(schema)  # what fraudops.lake.catalog creates the table with
    assert [field.name for field in iceberg.fields] == [*schema.column_names, PARTITION_COLUMN]
    assert iceberg.fields[-1].required and str(iceberg.fields[-1].field_type) == "string"
    # pyiceberg's own conversion of our Arrow schema agrees with the declared Iceberg types
    converted = Catalog._convert_schema_if_needed(schema.arrow_schema)
    assert [str(f.field_type) for f in converted.fields] == [str(f.field_type) for f in iceberg.fields[:-1]]
    for column, field in zip(schema.columns, iceberg.fields[:-1], strict=True):
        assert str(field.field_type) == ARROW_TO_ICEBERG[column.arrow], column.name
        assert str(field.field_type) in ATHENA_ICEBERG_TYPES, column.name
        assert field.required == (not column.nullable), column.name
    # The Glue columns pyiceberg writes with each commit (what the Glue console lists; Athena takes the types
    # from the Iceberg metadata): Hive names, a zoned timestamp listed as timestamp.
    glue = [(field.name, visit(field.field_type, _IcebergSchemaToGlueType())) for field in iceberg.fields]
    assert glue == [(f.name, GLUE_COLUMN_TYPES[str(f.field_type)]) for f in iceberg.fields]


def test_a_type_athena_cannot_read_fails_the_check() -> None:
    """The check above can fail: a time column (Iceberg time, which Athena's Iceberg tables lack) does."""
    iceberg = Catalog._convert_schema_if_needed(pa.schema([pa.field("t", pa.time64("us"))]))
    assert str(iceberg.fields[0].field_type) not in ATHENA_ICEBERG_TYPES


def test_the_functions_lake_is_the_glue_catalogs() -> None:
    """Every function that reads or writes the lake uses the Glue catalog's database and the warehouse the
    database is located at; so does the Spark job's driver, and its Spark catalog is the same warehouse."""
    resources = template()["Resources"]
    for function in LAKE_FUNCTIONS:
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert variables["FRAUDOPS_LAKE_URI"] == {"Fn::Sub": "s3://${DataBucket}/lake"}, function
        assert variables["FRAUDOPS_LAKE_CATALOG"] == "glue", function
        assert variables["FRAUDOPS_LAKE_DATABASE"] == {"Ref": "LakeDatabase"}, function
    spark = resources["RetrainStateMachine"]["Properties"]["DefinitionSubstitutions"]["SparkSubmitParameters"]
    conf = dict(re.findall(r"--conf (\S+?)=(\S+)", spark["Fn::Sub"]))
    assert conf["spark.emr-serverless.driverEnv.FRAUDOPS_LAKE_URI"] == "s3://${DataBucket}/lake"
    assert conf["spark.emr-serverless.driverEnv.FRAUDOPS_LAKE_CATALOG"] == "glue"
    assert conf["spark.emr-serverless.driverEnv.FRAUDOPS_LAKE_DATABASE"] == "${LakeDatabase}"
    assert conf["spark.sql.catalog.lake.warehouse"] == "s3://${DataBucket}/lake"
    assert conf["spark.fraudops.lake.table"] == "lake.${LakeDatabase}.transactions"


NAME_KEYS = ("Name", "UsagePlanName", "LogGroupName", "AliasName", "DashboardName", "StateMachineName")


def _resolve(value: Any, parameters: dict[str, str]) -> Any:
    """The few intrinsics the template's physical names use (Sub, Join, Split, Ref), resolved for one stack;
    a reference to another resource resolves to a marker unique per stack."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [_resolve(item, parameters) for item in value]
    ((function, argument),) = value.items()
    if function == "Ref":
        return parameters.get(argument, f"{parameters['AWS::StackName']}:{argument}")
    if function == "Fn::Sub":
        text = argument if isinstance(argument, str) else argument[0]
        for name, resolved in parameters.items():
            text = text.replace("${" + name + "}", resolved)
        return re.sub(r"\$\{([^}!]+)\}", lambda m: f"{parameters['AWS::StackName']}:{m.group(1)}", text)
    if function == "Fn::Join":
        separator, items = argument
        return separator.join(_resolve(items, parameters))
    if function == "Fn::Split":
        separator, text = argument
        return _resolve(text, parameters).split(separator)
    raise AssertionError(f"unexpected intrinsic in a name: {function}")


def physical_names(stack_name: str, stage: str) -> dict[str, str]:
    parameters = {"AWS::StackName": stack_name, "Stage": stage, "AWS::Region": "us-east-1",
                  "AWS::AccountId": "123456789012"}  # fmt: skip
    names = {}
    for logical_id, resource in template()["Resources"].items():
        properties = resource.get("Properties", {})
        for holder in (properties, properties.get("DatabaseInput", {})):
            for key in NAME_KEYS:
                if key in holder:
                    names[f"{logical_id}.{key}"] = str(_resolve(holder[key], parameters))
    return names


def test_two_stacks_with_the_same_stage_get_their_own_names() -> None:
    """docs/deploy.md promises two stacks with one Stage in one account: every name the template sets
    (the Glue database included, which is account-wide per Region) must differ between them."""
    first, second = physical_names("fraudops-dev", "dev"), physical_names("fraudops-dev-b", "dev")
    assert first["LakeDatabase.Name"] == "fraudops_dev_lake"  # Athena names: lowercase, digits, underscore
    clashes = {key: value for key, value in first.items() if second.get(key) == value}
    assert not clashes, f"named the same in two stacks with one Stage: {clashes}"
