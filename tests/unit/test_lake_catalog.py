"""The template's Glue tables are the code's lake tables: same names, columns, types, partitioning and
location, so Athena and `fraudops sql` answer the same SQL over the same files."""

from __future__ import annotations

import re
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
    template, _ = decode(str(ROOT / "template.yaml"))
    assert template is not None
    parameters = {"AWS::StackName": stack_name, "Stage": stage, "AWS::Region": "us-east-1",
                  "AWS::AccountId": "123456789012"}  # fmt: skip
    names = {}
    for logical_id, resource in template["Resources"].items():
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
