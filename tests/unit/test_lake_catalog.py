"""The template's Glue tables are the code's lake tables: same names, columns, types, partitioning and
location, so Athena and `fraudops sql` answer the same SQL over the same files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cfnlint.decode import decode

from fraudops.lake import PARTITION_COLUMN, TABLES

ROOT = Path(__file__).resolve().parents[2]


def glue_tables() -> dict[str, dict[str, Any]]:
    template, problems = decode(str(ROOT / "template.yaml"))
    assert not problems and template is not None
    tables = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Glue::Table":
            table_input = resource["Properties"]["TableInput"]
            tables[str(table_input["Name"])] = table_input
    return tables


def test_every_lake_table_is_declared_with_the_codes_columns() -> None:
    tables = glue_tables()
    assert set(tables) == set(TABLES)
    for name, schema in TABLES.items():
        declared = tables[name]
        columns = [{"Name": c["Name"], "Type": c["Type"]} for c in declared["StorageDescriptor"]["Columns"]]
        assert columns == schema.glue_columns(), name
        assert declared["PartitionKeys"] == [{"Name": PARTITION_COLUMN, "Type": "string"}]
        parameters = declared["Parameters"]
        assert parameters["fraudops.schema_version"] == str(schema.version)
        assert parameters["projection.enabled"] == "true" and parameters["projection.dt.format"] == "yyyy-MM-dd"
        location = declared["StorageDescriptor"]["Location"]["Fn::Sub"]
        assert location == f"s3://${{DataBucket}}/lake/{name}/"
        assert parameters["storage.location.template"]["Fn::Sub"] == f"{location}{PARTITION_COLUMN}=${{!dt}}/"


def test_the_lambdas_lake_is_the_catalogs() -> None:
    template, _ = decode(str(ROOT / "template.yaml"))
    assert template is not None
    resources = template["Resources"]
    for function in ("TrainFunction", "PromoteFunction", "CurateFunction", "MonitorFunction"):
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert variables["FRAUDOPS_LAKE_URI"] == {"Fn::Sub": "s3://${DataBucket}/lake"}, function
