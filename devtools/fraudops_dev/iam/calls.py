"""Recorded AWS calls -> the IAM requests AWS authorizes for them -> allowed or denied by the role.

The operation -> action mapping follows the Service Authorization Reference's "API operations" tables
(S3: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html: HeadObject
and GetObject need s3:GetObject; ListObjectsV2 s3:ListBucket on the bucket, with ``s3:prefix`` the
request's Prefix; DeleteObjects s3:DeleteObject for each key; CopyObject s3:GetObject on the source and
s3:PutObject on the target; multipart uploads s3:PutObject; conditional writes need nothing more).

403 is not 404: "If the object you request doesn't exist, the error that Amazon S3 returns depends on
whether you also have the s3:ListBucket permission ... If you don't have the s3:ListBucket permission,
Amazon S3 returns an HTTP status code 403" (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html). moto answers 404 whatever the
role; for each read of a missing key the check asks whether the role may list that key's prefix
(``s3:ListBucket`` with ``s3:prefix`` = the key: AWS does not document which prefix it evaluates, so
this is the strictest reading a prefix-conditioned statement can satisfy) and reports the read as
AWS's 403 otherwise.

Glue Data Catalog calls (pyiceberg's GlueCatalog: GetDatabase, GetTable, CreateTable, UpdateTable, ...)
are authorized on every level of the catalog's hierarchy the operation touches: the catalog
(``arn:aws:glue:region:account:catalog``), the database (``database/<db>``) and, for a table operation,
the table (``table/<db>/<table>``); GetTables on every table of the database (``table/<db>/*``)
("Specifying AWS Glue resource ARNs", https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html;
the Service Authorization Reference lists catalog, database and table as required resource types of
these actions: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsglue.html).
A recorded database name is the template's ``LakeDatabase`` when it is the one the code was configured
with (FRAUDOPS_LAKE_DATABASE), as a concrete bucket is the template's bucket.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fraudops_dev.iam.policy import Decision, Request, evaluate
from fraudops_dev.iam.roles import ACCOUNT, PARTITION, REGION, STACK, physical_name

S3_OBJECT_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "GetObjectAttributes": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObject": "s3:DeleteObject",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectTagging": "s3:PutObjectTagging",
}
S3_BUCKET_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "GetBucketLocation": "s3:GetBucketLocation",
    "CreateBucket": "s3:CreateBucket",
    "GetBucketVersioning": "s3:GetBucketVersioning",
}
GLUE_DATABASE_OPERATIONS = {"GetDatabase", "UpdateDatabase", "DeleteDatabase"}
GLUE_TABLE_OPERATIONS = {"GetTable", "CreateTable", "UpdateTable", "DeleteTable", "GetTableVersions"}
GLUE_ALL_TABLES_OPERATIONS = {"GetTables"}
# Calls that need no IAM permission at all.
UNAUTHORIZED_OPERATIONS = {("sts", "GetCallerIdentity")}
EMULATED_FUNCTIONS = {  # the emulation's function names (fraudops_dev.emulation.FUNCTIONS) -> template ids
    "fraudops-train-local": "TrainFunction",
    "fraudops-promote-local": "PromoteFunction",
    "fraudops-curate-local": "CurateFunction",
    "fraudops-batch-local": "BatchScoreFunction",
}


@dataclass
class Call:
    """One AWS API call as botocore made it, and who made it."""

    role: str | None  # a role's logical id, or None: test setup, not any role's
    service: str  # the IAM service prefix (botocore's signing name): s3, states, lambda, ...
    operation: str
    params: dict[str, Any]
    status: int | None = None
    error_code: str | None = None
    buckets: dict[str, str] = field(default_factory=dict)  # concrete bucket -> the template's bucket id
    databases: dict[str, str] = field(default_factory=dict)  # concrete Glue database -> the template's id
    per_key_errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Finding:
    role: str
    call: str
    request: Request
    decision: Decision
    note: str = ""

    def describe(self) -> str:
        context = f" with {dict(self.request.context)}" if self.request.context else ""
        note = f" ({self.note})" if self.note else ""
        return (
            f"{self.role}: {self.call} needs {self.request.action} on {self.request.resource}{context}: "
            f"{self.decision.reason}{note}"
        )


def bucket_arn(call: Call, bucket: str) -> str:
    logical = call.buckets.get(bucket)
    name = physical_name(logical, "AWS::S3::Bucket") if logical else bucket
    return f"arn:{PARTITION}:s3:::{name}"


def glue_database(call: Call, database: str) -> str:
    """The Glue database's name as the template names it (the configured one), else the name as called."""
    logical = call.databases.get(database)
    return physical_name(logical, "AWS::Glue::Database") if logical else database


def _glue_requests(call: Call) -> list[tuple[Request, str]]:
    p = call.params
    base = f"arn:{PARTITION}:glue:{REGION}:{ACCOUNT}"
    action = f"glue:{call.operation}"
    catalog = Request(action, f"{base}:catalog")
    if call.operation == "GetDatabases":
        return [(catalog, "")]
    if call.operation == "CreateDatabase":
        name = glue_database(call, str(p["DatabaseInput"]["Name"]))
        return [(catalog, ""), (Request(action, f"{base}:database/{name}"), "")]
    database = glue_database(call, str(p.get("DatabaseName") or p.get("Name")))
    on_database = Request(action, f"{base}:database/{database}")
    if call.operation in GLUE_DATABASE_OPERATIONS:
        return [(catalog, ""), (on_database, "")]
    if call.operation in GLUE_ALL_TABLES_OPERATIONS:
        return [(catalog, ""), (on_database, ""), (Request(action, f"{base}:table/{database}/*"), "")]
    if call.operation in GLUE_TABLE_OPERATIONS:
        table = str(p["TableInput"]["Name"]) if "TableInput" in p else str(p.get("Name") or p.get("TableName"))
        return [(catalog, ""), (on_database, ""), (Request(action, f"{base}:table/{database}/{table}"), "")]
    return [(Request(action, "*"), "no resource mapping for this Glue operation")]


def _state_machine_name(name: str) -> str:
    """moto's state machine and execution names -> the template's (``${AWS::StackName}-retrain``)."""
    return re.sub(r"^fraudops-(retrain|batch-score)-local-[0-9a-f]+(?=/|$)", rf"{STACK}-\1", name)


def _states_arn(arn: str) -> str:
    parts = arn.split(":")
    if len(parts) >= 7 and parts[5] in ("stateMachine", "execution"):
        parts[6] = _state_machine_name(parts[6])
        parts[3], parts[4] = REGION, ACCOUNT
    return ":".join(parts)


def _function_arn(name: str) -> str:
    bare = name.split(":function:")[-1].split(":")[0] if ":function:" in name else name
    logical = EMULATED_FUNCTIONS.get(bare)
    resolved = physical_name(logical, "AWS::Lambda::Function") if logical else bare
    return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{resolved}"


def requests_for(call: Call) -> list[tuple[Request, str]]:
    """The IAM requests AWS evaluates for one call (with a note each, e.g. which key of a batch)."""
    p = call.params
    if (call.service, call.operation) in UNAUTHORIZED_OPERATIONS:
        return []
    if call.service == "s3":
        bucket = str(p.get("Bucket", ""))
        base = bucket_arn(call, bucket)
        if call.operation in S3_OBJECT_ACTIONS:
            return [(Request(S3_OBJECT_ACTIONS[call.operation], f"{base}/{p['Key']}"), "")]
        if call.operation == "DeleteObjects":
            return [(Request("s3:DeleteObject", f"{base}/{o['Key']}"), "") for o in p["Delete"]["Objects"]]
        if call.operation in ("CopyObject", "UploadPartCopy"):
            source = p["CopySource"]
            if isinstance(source, str):
                source_bucket, _, source_key = source.lstrip("/").partition("/")
            else:
                source_bucket, source_key = source["Bucket"], source["Key"]
            return [
                (Request("s3:GetObject", f"{bucket_arn(call, source_bucket)}/{source_key}"), "copy source"),
                (Request("s3:PutObject", f"{base}/{p['Key']}"), "copy target"),
            ]
        if call.operation in S3_BUCKET_ACTIONS:
            context: dict[str, str | list[str]] = {}
            if "Prefix" in p:
                context["s3:prefix"] = str(p["Prefix"])
            if "Delimiter" in p:
                context["s3:delimiter"] = str(p["Delimiter"])
            return [(Request(S3_BUCKET_ACTIONS[call.operation], base, context), "")]
    if call.service == "glue":
        return _glue_requests(call)
    if call.service == "lambda" and call.operation == "Invoke":
        return [(Request("lambda:InvokeFunction", _function_arn(str(p["FunctionName"]))), "")]
    if call.service == "states":
        if "stateMachineArn" in p:
            return [(Request(f"states:{call.operation}", _states_arn(str(p["stateMachineArn"]))), "")]
        if "executionArn" in p:
            return [(Request(f"states:{call.operation}", _states_arn(str(p["executionArn"]))), "")]
    if call.service == "apigateway":
        paths = {
            "GetUsagePlans": "/usageplans",
            "GetUsagePlanKeys": f"/usageplans/{p.get('usagePlanId')}/keys",
            "GetApiKey": f"/apikeys/{p.get('apiKey')}",
            "GetApiKeys": "/apikeys",
        }
        if call.operation in paths:
            return [(Request("apigateway:GET", f"arn:{PARTITION}:apigateway:{REGION}::{paths[call.operation]}"), "")]
    if call.service == "cloudformation" and call.operation == "DescribeStacks":
        stack = str(p.get("StackName", "*"))
        arn = f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{stack}/0a1b2c3d-0000-0000-0000-000000000000"
        return [(Request("cloudformation:DescribeStacks", arn), "")]
    if call.service == "emr-serverless":
        application = f"arn:{PARTITION}:emr-serverless:{REGION}:{ACCOUNT}:/applications/{p['applicationId']}"
        if call.operation == "StartJobRun":
            return [(Request("emr-serverless:StartJobRun", application), "")]
        return [(Request(f"emr-serverless:{call.operation}", f"{application}/jobruns/{p.get('jobRunId', '*')}"), "")]
    if call.service == "iam" and call.operation == "PassRole":
        context = {"iam:PassedToService": str(p["PassedToService"])}
        return [(Request("iam:PassRole", str(p["RoleArn"]), context), "")]
    if call.service == "events":
        rule = f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/{p.get('Rule') or p.get('Name')}"
        return [(Request(f"events:{call.operation}", rule), "")]
    # Anything else: the action by its operation name on "*": a call this table does not know yet fails
    # loudly (no Allow names it) rather than passing unchecked.
    return [(Request(f"{call.service}:{call.operation}", "*"), "no resource mapping for this operation")]


# Denials the code expects and handles, so AWS's refusal changes nothing: (service:operation) -> why.
HANDLED_DENIALS = {
    # store.s3.ensure_bucket creates the model bucket on a fresh local setup; a role that may not list the
    # bucket gets 403 and the code takes it as "exists" (in AWS the template creates the bucket).
    "s3:HeadBucket": "store.s3.ensure_bucket treats 403 as an existing bucket",
    # ...and creates it only after a 404, which a role without s3:ListBucket never gets in AWS (403 first).
    "s3:CreateBucket": "store.s3.ensure_bucket creates only after HeadBucket's 404, never reached in AWS",
}


def check(
    calls: Iterable[Call], roles: dict[str, list[dict[str, Any]]]
) -> tuple[list[Finding], dict[str, set[tuple[str, str]]]]:
    """(denied requests, role -> distinct (action, resource) requests checked)."""
    findings: list[Finding] = []
    checked: dict[str, set[tuple[str, str]]] = {}
    seen: set[tuple[str, str, str, str]] = set()

    def report(call: Call, request: Request, decision: Decision, note: str) -> None:
        key = (str(call.role), request.action, request.resource, decision.reason + note)
        if key not in seen:
            seen.add(key)
            findings.append(Finding(str(call.role), f"{call.service}:{call.operation}", request, decision, note))

    for call in calls:
        if call.role is None:
            continue
        statements = roles.get(call.role)
        if statements is None:
            raise KeyError(f"a call was attributed to {call.role}, which is no role of the template")
        bucket = checked.setdefault(call.role, set())
        for request, note in requests_for(call):
            bucket.add((request.action, _pattern_of(request.resource)))
            decision = evaluate(statements, request)
            if not decision.allowed and f"{call.service}:{call.operation}" not in HANDLED_DENIALS:
                report(call, request, decision, note)
        missing = call.service == "s3" and call.operation in ("GetObject", "HeadObject") and call.status == 404
        if missing:
            listing = Request(
                "s3:ListBucket", bucket_arn(call, str(call.params["Bucket"])), {"s3:prefix": str(call.params["Key"])}
            )
            decision = evaluate(statements, listing)
            if not decision.allowed:
                report(
                    call,
                    listing,
                    decision,
                    f"the key {call.params['Key']} was missing: AWS answers 403 AccessDenied, not 404, without it",
                )
        for error in call.per_key_errors:
            report(
                call,
                Request("s3:DeleteObject", f"{bucket_arn(call, str(call.params['Bucket']))}/{error.get('Key')}"),
                Decision(False, f"DeleteObjects answered {error.get('Code')} for this key inside a 200"),
                "",
            )
    return findings, checked


def _pattern_of(resource: str) -> str:
    """A resource with its run-specific parts (ids, hashes, timestamps) folded, for counting distinct calls."""
    folded = re.sub(r"[0-9a-f]{12,}|[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", resource)
    folded = re.sub(r"\d{4}-\d{2}-\d{2}[T ]?[\d:.\-]*", "<time>", folded)
    return re.sub(r"(?<=[/_=.-])\d+(?=[/_.-]|$)", "<n>", folded)


def table(checked: dict[str, set[tuple[str, str]]], findings: list[Finding], unattributed: int) -> str:
    denied: dict[str, int] = {}
    for finding in findings:
        denied[finding.role] = denied.get(finding.role, 0) + 1
    lines = [f"{'role':34} {'distinct calls checked':>22} {'denied':>7}"]
    for role in sorted(set(checked) | set(denied)):
        lines.append(f"{role:34} {len(checked.get(role, ())):>22} {denied.get(role, 0):>7}")
    lines.append(f"(calls made by test setup, not any role's, not checked: {unattributed})")
    return "\n".join(lines)


Attribution = Callable[[], str | None]
