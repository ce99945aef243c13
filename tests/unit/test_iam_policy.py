"""The IAM evaluator denies what AWS denies, and the template's roles resolve to real ARN shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fraudops_dev.iam.calls import Call, check, requests_for
from fraudops_dev.iam.policy import Request, evaluate, wildcard_match
from fraudops_dev.iam.roles import STACK, all_roles
from hypothesis import given
from hypothesis import strategies as st

BUCKET = "arn:aws:s3:::data"
READ_LAKE = {"Sid": "ReadLake", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/lake/*"}
LIST_LAKE = {
    "Sid": "ListLake",
    "Effect": "Allow",
    "Action": "s3:ListBucket",
    "Resource": BUCKET,
    "Condition": {"StringLike": {"s3:prefix": ["lake/*"]}},
}


def test_allow_needs_the_action_and_the_resource() -> None:
    assert evaluate([READ_LAKE], Request("s3:GetObject", f"{BUCKET}/lake/x.parquet")).allowed
    assert evaluate([READ_LAKE], Request("S3:getobject", f"{BUCKET}/lake/x.parquet")).allowed  # actions ignore case
    assert not evaluate([READ_LAKE], Request("s3:PutObject", f"{BUCKET}/lake/x.parquet")).allowed  # wrong action
    assert not evaluate([READ_LAKE], Request("s3:GetObject", f"{BUCKET}/other/x")).allowed  # wrong prefix
    assert not evaluate([READ_LAKE], Request("s3:GetObject", f"{BUCKET}/LAKE/x")).allowed  # resources keep case
    assert not evaluate([READ_LAKE], Request("s3:GetObject", "arn:aws:s3:::data-2/lake/x")).allowed


def test_conditions_must_hold_and_a_missing_key_fails_them() -> None:
    assert evaluate([LIST_LAKE], Request("s3:ListBucket", BUCKET, {"s3:prefix": "lake/t/"})).allowed
    assert not evaluate([LIST_LAKE], Request("s3:ListBucket", BUCKET, {"s3:prefix": "mlflow/"})).allowed
    assert not evaluate([LIST_LAKE], Request("s3:ListBucket", BUCKET)).allowed  # no s3:prefix in the request
    if_exists = {**LIST_LAKE, "Condition": {"StringLikeIfExists": {"s3:prefix": ["lake/*"]}}}
    assert evaluate([if_exists], Request("s3:ListBucket", BUCKET)).allowed
    passed = {
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": "arn:aws:iam::1:role/job",
        "Condition": {"StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}},
    }
    job, emr = "arn:aws:iam::1:role/job", "emr-serverless.amazonaws.com"
    assert evaluate([passed], Request("iam:PassRole", job, {"iam:PassedToService": emr})).allowed
    assert not evaluate([passed], Request("iam:PassRole", job, {"iam:PassedToService": "ec2.amazonaws.com"})).allowed


def test_an_explicit_deny_wins_and_not_action_not_resource_invert() -> None:
    deny = {"Sid": "NoSecrets", "Effect": "Deny", "Action": "s3:*", "Resource": f"{BUCKET}/lake/secret/*"}
    decision = evaluate([READ_LAKE, deny], Request("s3:GetObject", f"{BUCKET}/lake/secret/k"))
    assert not decision.allowed and decision.reason == "explicitly denied by NoSecrets"
    everything_but_delete = {"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"}
    assert evaluate([everything_but_delete], Request("s3:PutObject", f"{BUCKET}/k")).allowed
    assert not evaluate([everything_but_delete], Request("s3:DeleteObject", f"{BUCKET}/k")).allowed
    outside = {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": f"{BUCKET}/private/*"}
    assert evaluate([outside], Request("s3:GetObject", f"{BUCKET}/public/k")).allowed
    assert not evaluate([outside], Request("s3:GetObject", f"{BUCKET}/private/k")).allowed
    assert not evaluate([], Request("s3:GetObject", f"{BUCKET}/k")).allowed  # implicit deny


@given(st.text(alphabet="ab/:.", max_size=8), st.text(alphabet="ab/:.", max_size=8))
def test_wildcards_are_only_star_and_question_mark(prefix: str, rest: str) -> None:
    assert wildcard_match(prefix, prefix + rest) == (rest == "")  # no wildcard: only itself ('.' is literal)
    assert wildcard_match(prefix + "*", prefix + rest)  # '*' spans '/' and ':'
    assert wildcard_match(prefix + "?", prefix + rest) == (len(rest) == 1)
    assert not wildcard_match(prefix + "x*", prefix + rest)  # 'x' never occurs in the values


def _call(role: str, operation: str, **params: Any) -> Call:
    return Call(role, "s3", operation, {"Bucket": "moto-models", **params}, buckets={"moto-models": "ModelBucket"})


def test_s3_operations_map_to_the_actions_aws_authorizes() -> None:
    model = f"arn:aws:s3:::{STACK}-modelbucket"
    (head,) = requests_for(_call("R", "HeadObject", Key="registry/mlflow.db"))
    assert head[0] == Request("s3:GetObject", f"{model}/registry/mlflow.db")
    (listing,) = requests_for(_call("R", "ListObjectsV2", Prefix="mlflow/history/"))
    assert listing[0] == Request("s3:ListBucket", model, {"s3:prefix": "mlflow/history/"})
    deletes = requests_for(_call("R", "DeleteObjects", Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]}))
    assert [r.action for r, _ in deletes] == ["s3:DeleteObject", "s3:DeleteObject"]
    copy = requests_for(_call("R", "CopyObject", Key="b", CopySource={"Bucket": "moto-models", "Key": "a"}))
    assert [(r.action, r.resource) for r, _ in copy] == [("s3:GetObject", f"{model}/a"), ("s3:PutObject", f"{model}/b")]
    (multipart,) = requests_for(_call("R", "UploadPart", Key="mlflow/x", UploadId="u", PartNumber=1))
    assert multipart[0].action == "s3:PutObject"


def test_the_template_roles_deny_what_they_do_not_grant() -> None:
    roles = all_roles()
    assert {"ApiFunctionRole", "TrainFunctionRole", "PromoteFunctionRole", "MonitorFunctionRole",
            "CurateFunctionRole", "BatchScoreFunctionRole", "RetrainStateMachineRole",
            "BatchScoreStateMachineRole", "SparkJobRole", "SmokeRole"} <= set(roles)  # fmt: skip
    api_writes_registry = _call("ApiFunctionRole", "PutObject", Key="registry/mlflow.db")
    findings, checked = check([api_writes_registry], roles)
    assert [f.request.action for f in findings] == ["s3:PutObject"]
    assert checked == {"ApiFunctionRole": {("s3:PutObject", f"arn:aws:s3:::{STACK}-modelbucket/registry/mlflow.db")}}
    reads_feedback = _call("ApiFunctionRole", "GetObject", Key="mlflow/serving/manifest.json")
    assert check([reads_feedback], roles)[0] == []


def test_a_missing_key_without_list_permission_is_a_403_and_unknown_buckets_are_denied() -> None:
    roles = all_roles()
    missing = _call("BatchScoreFunctionRole", "GetObject", Key="mlflow/serving/manifest.json")
    missing.status = 404
    findings, _ = check([missing], roles)
    assert [f.request.action for f in findings] == ["s3:ListBucket"] and "403" in findings[0].note
    stranger = Call("ApiFunctionRole", "s3", "GetObject", {"Bucket": "someone-else", "Key": "mlflow/x"})
    assert check([stranger], roles)[0]


def test_per_key_errors_of_a_batch_delete_are_findings() -> None:
    delete = _call("CurateFunctionRole", "DeleteObjects", Delete={"Objects": [{"Key": "lake/x"}]})
    delete.per_key_errors = [{"Key": "lake/x", "Code": "AccessDenied"}]
    findings, _ = check([delete], all_roles())
    assert any("AccessDenied" in f.decision.reason for f in findings)


def test_an_unknown_role_is_an_error() -> None:
    with pytest.raises(KeyError):
        check([_call("NoSuchRole", "GetObject", Key="k")], all_roles())


def test_only_denials_the_code_handles_are_let_through() -> None:
    """store.s3.ensure_bucket takes a 403 on HeadBucket as "the bucket exists"; any other denial is a finding."""
    roles = all_roles()
    head_bucket = _call("TrainFunctionRole", "HeadBucket")
    assert check([head_bucket], roles)[0] == []
    writes_intent = _call("ApiFunctionRole", "PutObject", Key="mlflow/intents/fraud-detector/x.json")
    assert [f.request.action for f in check([writes_intent], roles)[0]] == ["s3:PutObject"]


def _glue(role: str, operation: str, **params: Any) -> Call:
    """A Glue call on the database the code was configured with ("fraudops"), the template's LakeDatabase."""
    return Call(role, "glue", operation, params, databases={"fraudops": "LakeDatabase"})


def test_glue_operations_need_the_catalog_the_database_and_the_table() -> None:
    """pyiceberg's GlueCatalog calls, authorized on each level of the Data Catalog they touch."""
    database = f"{STACK}_lake".replace("-", "_")
    base = "arn:aws:glue:us-east-1:123456789012"
    (catalog, on_database, table) = requests_for(_glue("R", "GetTable", DatabaseName="fraudops", Name="labels"))
    assert [catalog[0], on_database[0], table[0]] == [
        Request("glue:GetTable", f"{base}:catalog"),
        Request("glue:GetTable", f"{base}:database/{database}"),
        Request("glue:GetTable", f"{base}:table/{database}/labels"),
    ]
    update = requests_for(_glue("R", "UpdateTable", DatabaseName="fraudops", TableInput={"Name": "decisions"},
                                VersionId="3", SkipArchive=True))  # fmt: skip
    assert update[-1][0] == Request("glue:UpdateTable", f"{base}:table/{database}/decisions")
    assert [r.resource for r, _ in requests_for(_glue("R", "GetDatabase", Name="fraudops"))] == [
        f"{base}:catalog", f"{base}:database/{database}"
    ]  # fmt: skip
    (*_, every_table) = requests_for(_glue("R", "GetTables", DatabaseName="fraudops"))
    assert every_table[0].resource == f"{base}:table/{database}/*"


def test_the_template_roles_allow_their_own_lake_tables_and_deny_the_others() -> None:
    roles = all_roles()
    reads = _glue("TrainFunctionRole", "GetTable", DatabaseName="fraudops", Name="transactions")
    commits = _glue("CurateFunctionRole", "UpdateTable", DatabaseName="fraudops", TableInput={"Name": "labels"})
    creates = _glue("MonitorFunctionRole", "CreateTable", DatabaseName="fraudops", TableInput={"Name": "decisions"})
    job_reads = _glue("SparkJobRole", "GetTable", DatabaseName="fraudops", Name="transactions")
    assert check([reads, commits, creates, job_reads], roles)[0] == []
    train_commits = _glue("TrainFunctionRole", "UpdateTable", DatabaseName="fraudops",
                          TableInput={"Name": "transactions"})  # fmt: skip
    monitor_reads = _glue("MonitorFunctionRole", "GetTable", DatabaseName="fraudops", Name="transactions")
    curate_drops = _glue("CurateFunctionRole", "DeleteTable", DatabaseName="fraudops", Name="labels")
    other_database = Call("PromoteFunctionRole", "glue", "GetTable",
                          {"DatabaseName": "someone_else", "Name": "transactions"})  # fmt: skip
    findings, _ = check([train_commits, monitor_reads, curate_drops, other_database], roles)
    denied = {(f.role, f.request.action, f.request.resource.rsplit(":", 1)[-1]) for f in findings}
    database = f"{STACK}_lake".replace("-", "_")
    assert denied == {
        ("TrainFunctionRole", "glue:UpdateTable", f"table/{database}/transactions"),
        ("TrainFunctionRole", "glue:UpdateTable", "catalog"),
        ("TrainFunctionRole", "glue:UpdateTable", f"database/{database}"),
        ("MonitorFunctionRole", "glue:GetTable", f"table/{database}/transactions"),
        ("CurateFunctionRole", "glue:DeleteTable", "catalog"),
        ("CurateFunctionRole", "glue:DeleteTable", f"database/{database}"),
        ("CurateFunctionRole", "glue:DeleteTable", f"table/{database}/labels"),
        ("PromoteFunctionRole", "glue:GetTable", "database/someone_else"),
        ("PromoteFunctionRole", "glue:GetTable", "table/someone_else/transactions"),
    }


def _pyiceberg_glue_calls(tmp_path: Path) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """What pyiceberg 0.12's GlueCatalog really calls (against moto's Glue, metadata in a folder): to
    create a table, to commit an append to it, and to load it."""
    from datetime import UTC, datetime

    import boto3
    import pyarrow as pa
    from moto import mock_aws
    from pyiceberg.catalog.glue import GlueCatalog

    from fraudops.lake.schemas import LABELS

    recorded: list[tuple[str, dict[str, Any]]] = []
    phases: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    with mock_aws():
        boto3.client("glue", region_name="us-east-1").create_database(DatabaseInput={"Name": "fraudops"})
        catalog = GlueCatalog("fraudops", **{"warehouse": tmp_path.as_uri(), "glue.region": "us-east-1"})
        catalog.glue.meta.events.register(
            "provide-client-params.glue", lambda params, model, **_: recorded.append((model.name, dict(params)))
        )
        table = catalog.create_table(("fraudops", "labels"), LABELS.arrow_schema, location=(tmp_path / "l").as_uri())
        phases["create"], recorded[:] = list(recorded), []
        row = {"transaction_id": "t", "is_fraud": True, "received_at": datetime(2026, 1, 1, tzinfo=UTC), "source": "s"}
        table.append(pa.Table.from_pylist([row], schema=LABELS.arrow_schema))
        phases["append"], recorded[:] = list(recorded), []
        catalog.load_table(("fraudops", "labels"))
        phases["load"] = list(recorded)
    return phases


def test_pyicebergs_real_glue_calls_are_what_the_roles_grant(tmp_path: Path) -> None:
    """The template's grants against the calls pyiceberg makes, not against our reading of its source: the
    monitor may create, commit to and load its labels table; the train role may load a table, not commit."""
    phases = _pyiceberg_glue_calls(tmp_path)
    assert [name for name, _ in phases["create"]] == ["GetDatabase", "CreateTable"]
    assert [name for name, _ in phases["append"]] == ["GetTable", "GetDatabase", "UpdateTable"]
    assert [name for name, _ in phases["load"]] == ["GetTable"]
    assert phases["append"][-1][1]["VersionId"]  # optimistic locking: the version it read
    roles = all_roles()
    databases = {"fraudops": "LakeDatabase"}

    def calls(role: str, phase: str) -> list[Call]:
        return [Call(role, "glue", name, params, databases=databases) for name, params in phases[phase]]

    everything = [*calls("MonitorFunctionRole", "create"), *calls("MonitorFunctionRole", "append")]
    assert check([*everything, *calls("MonitorFunctionRole", "load")], roles)[0] == []
    assert check(calls("CurateFunctionRole", "append"), roles)[0] == []
    (load,) = calls("TrainFunctionRole", "load")
    transactions = Call(load.role, "glue", load.operation, {**load.params, "Name": "transactions"}, databases=databases)
    assert check([transactions], roles)[0] == []  # a reader loads the transactions table ...
    findings, _ = check([load, *calls("TrainFunctionRole", "append")], roles)  # ... not labels, and commits nothing
    assert {(f.request.action, f.request.resource.rsplit(":", 1)[-1].split("/")[0]) for f in findings} == {
        ("glue:GetTable", "table"), ("glue:UpdateTable", "catalog"), ("glue:UpdateTable", "database"),
        ("glue:UpdateTable", "table"),
    }  # fmt: skip
