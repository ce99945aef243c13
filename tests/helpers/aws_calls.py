"""A pytest plugin: every AWS call botocore makes during the run, attributed to the role whose code made
it, is checked against that role's policy in the SAM-transformed template (docs/iam.md).

moto enforces no IAM, so without this a call AWS would deny passes every test. Recording: every
botocore client (``Session.create_client`` is wrapped) gets handlers on ``provide-client-params`` (the
API parameters as the caller passed them; the event's ``context`` dict lives for one call) and
``after-call`` (the HTTP status and the parsed response, also for errors: botocore emits it before
raising ``ClientError``). Attribution is by the calling code, not by what the test intends:

- a frame of a handler module (``functions/*/<name>_function.py``) -> that function's role;
- `fraudops smoke`'s AWS code (``fraudops_dev.smoke``) -> the pipeline's SmokeRole (infra/pipeline);
- the Spark job's code (``train_on_spark``, and the emulation's stand-in for EMR reading the window)
  -> SparkJobRole;
- moto's Step Functions engine running an execution -> that state machine's role (the engine's threads
  inherit the attribution of the code that started them; so do every other thread's);
- anything else is test setup (creating buckets, seeding data, asserting on S3), explicitly no role's:
  counted in the summary, not checked.

The Spark task (``emr-serverless:startJobRun.sync``), which moto's engine does not run, is recorded as
the calls AWS documents Step Functions making for it (StartJobRun, GetJobRun, iam:PassRole of the job
role, the managed EventBridge rule: https://docs.aws.amazon.com/step-functions/latest/dg/emr-serverless-iam.html).
Likewise the batch state machine's Distributed Map, which moto's engine does not run either
(``record_batch_run``: its ItemReader and ResultWriter S3 calls, the Lambda invocations, the child
executions: https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html).

At the end of the session every attributed call is evaluated (``fraudops_dev.iam``); any denied one
fails the run, naming the role, the action, the resource and the reason, and a per-role table is printed.

Under pytest-xdist each worker records its own calls: a worker hands them, made serialisable
(``to_wire``), to the controller in ``config.workeroutput``; the controller gathers every worker's in
``pytest_testnodedown`` and runs the one check over all of them. A worker that finishes without sending its
calls (it crashed, or this plugin did not run in it) fails the run: the check never passes on calls it
did not see.
"""

from __future__ import annotations

import os
import sys
import threading
from types import FrameType
from typing import Any

import pytest
from fraudops_dev.iam.calls import Call, check, table

HANDLER_ROLES = {
    "api_function": "ApiFunctionRole",
    "train_function": "TrainFunctionRole",
    "promote_function": "PromoteFunctionRole",
    "monitor_function": "MonitorFunctionRole",
    "curate_function": "CurateFunctionRole",
    "batch_function": "BatchScoreFunctionRole",
}
CODE_ROLES = {"fraudops_dev.smoke": "SmokeRole"}  # laptop code that runs under a role of its own in AWS
SPARK_JOB_CODE = {
    ("fraudops.spark_training.job", "train_on_spark"),
    ("fraudops_dev.emulation", "_run_spark_training_locally"),
}
STATE_MACHINE_ROLES = {"retrain": "RetrainStateMachineRole", "batch-score": "BatchScoreStateMachineRole"}
EMR_SYNC_RULE = "StepFunctionsGetEventsForEMRServerlessJobRule"

RECORDED: list[Call] = []
UNATTRIBUTED = [0]
_ORIGIN = "_fraudops_role"


def _state_machine_role(frame: FrameType) -> str | None:
    owner = frame.f_locals.get("self")
    machine = getattr(owner, "state_machine", None)
    name = getattr(machine, "name", None)
    if name is None or type(owner).__name__ != "Execution":
        return None
    for marker, role in STATE_MACHINE_ROLES.items():
        if marker in str(name):
            return role
    raise KeyError(f"moto ran state machine {name}, which is none of the template's")


def attribute(frame: FrameType | None) -> str | None:
    """The role whose code is running at ``frame`` (None: test setup)."""
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module in HANDLER_ROLES:
            return HANDLER_ROLES[module]
        if module in CODE_ROLES:
            return CODE_ROLES[module]
        if (module, frame.f_code.co_name) in SPARK_JOB_CODE:
            return "SparkJobRole"
        if module.startswith("moto.stepfunctions"):
            role = _state_machine_role(frame)
            if role is not None:
                return role
        frame = frame.f_back
    return getattr(threading.current_thread(), _ORIGIN, None)


def _bucket_roles() -> dict[str, str]:
    """Concrete bucket -> the template's bucket, as the template configures the functions: the model
    bucket by FRAUDOPS_MODEL_BUCKET (!Ref ModelBucket), the data bucket by the lake and Spark URIs."""
    found: dict[str, str] = {}
    if os.environ.get("FRAUDOPS_MODEL_BUCKET"):
        found[os.environ["FRAUDOPS_MODEL_BUCKET"]] = "ModelBucket"
    for variable in ("FRAUDOPS_LAKE_URI", "FRAUDOPS_SPARK_OUTPUT_URI", "FRAUDOPS_DATA_S3_URI"):
        value = os.environ.get(variable, "")
        if value.startswith("s3://"):
            found.setdefault(value[5:].split("/", 1)[0], "DataBucket")
    return found


LAKE_DATABASE_DEFAULT = "fraudops"  # FRAUDOPS_LAKE_DATABASE's default (fraudops.core.config)


def _database_roles() -> dict[str, str]:
    """Concrete Glue database -> the template's: the lake's namespace, as the template configures the
    functions (FRAUDOPS_LAKE_DATABASE: !Ref LakeDatabase)."""
    return {os.environ.get("FRAUDOPS_LAKE_DATABASE") or LAKE_DATABASE_DEFAULT: "LakeDatabase"}


def _on_params(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    role = attribute(sys._getframe(1))
    if role is None:
        UNATTRIBUTED[0] += 1
        return
    call = Call(
        role, model.service_model.signing_name, model.name, dict(params), buckets=_bucket_roles(),
        databases=_database_roles(),
    )  # fmt: skip
    context["fraudops_call"] = call
    RECORDED.append(call)


def _on_response(http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    call = context.get("fraudops_call")
    if call is None:
        return
    call.status = getattr(http_response, "status_code", None)
    call.error_code = str(parsed.get("Error", {}).get("Code")) if parsed.get("Error") else None
    if call.operation == "DeleteObjects":
        call.per_key_errors = list(parsed.get("Errors", []))


def record_derived(role: str, service: str, operation: str, params: dict[str, Any]) -> None:
    """A call AWS makes for us that no botocore client here makes (the Step Functions EMR integration)."""
    RECORDED.append(
        Call(role, service, operation, params, status=200, buckets=_bucket_roles(), databases=_database_roles())
    )


BATCH_STATE_MACHINE = "fraudops-batch-score-local-0000"  # folded to <stack>-batch-score (fraudops_dev.iam.calls)


def record_batch_run(input_bucket: str, input_key: str, output_bucket: str, execution: str, batches: int) -> None:
    """What Step Functions itself calls, with the BatchScoreStateMachine's role, for one execution of
    batch_score.asl.json: PinModel invokes the promote function; the Distributed Map's ItemReader gets the
    input object, starts one child execution per batch (each invokes the batch function) and follows them;
    its ResultWriter writes the map run's manifest and result files under ``map_results_prefix``
    (https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html)."""
    role = "BatchScoreStateMachineRole"
    machine = f"arn:aws:states:us-east-1:123456789012:stateMachine:{BATCH_STATE_MACHINE}"
    record_derived(role, "lambda", "Invoke", {"FunctionName": "fraudops-promote-local"})
    record_derived(role, "s3", "GetObject", {"Bucket": input_bucket, "Key": input_key})
    prefix = f"batch/results/{execution}/map-run"
    for number in range(batches):
        record_derived(role, "states", "StartExecution", {"stateMachineArn": machine})
        child = f"arn:aws:states:us-east-1:123456789012:execution:{BATCH_STATE_MACHINE}/ScoreCsv:{number:08d}"
        record_derived(role, "states", "DescribeExecution", {"executionArn": child})
        record_derived(role, "lambda", "Invoke", {"FunctionName": "fraudops-batch-local"})
    for name in ("manifest.json", "SUCCEEDED_0.json"):
        record_derived(role, "s3", "PutObject", {"Bucket": output_bucket, "Key": f"{prefix}/{name}"})


def _install() -> None:
    import botocore.session
    from fraudops_dev import emulation

    original_create_client = botocore.session.Session.create_client
    if getattr(original_create_client, "_fraudops_recording", False):
        return

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original_create_client(self, *args, **kwargs)
        client.meta.events.register("provide-client-params", _on_params, unique_id="fraudops-record-params")
        client.meta.events.register("after-call", _on_response, unique_id="fraudops-record-response")
        return client

    create_client._fraudops_recording = True  # type: ignore[attr-defined]
    botocore.session.Session.create_client = create_client

    original_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        setattr(self, _ORIGIN, attribute(sys._getframe(1)))
        original_start(self)

    threading.Thread.start = start  # type: ignore[method-assign]

    original_run_spark_job = emulation.Emulation.run_spark_job

    def run_spark_job(self: Any, parameters: dict[str, Any]) -> dict[str, Any]:
        role = "RetrainStateMachineRole"
        application = "00sparkapplication"  # the template's SparkApplication (fraudops_dev.iam.roles)
        job_role = parameters.get("ExecutionRoleArn") or parameters.get("executionRoleArn")
        if job_role == emulation.CONSTANT_SUBSTITUTIONS["SparkJobRoleArn"]:
            from fraudops_dev.iam.roles import ACCOUNT, STACK

            job_role = f"arn:aws:iam::{ACCOUNT}:role/{STACK}-SparkJobRole"
        record_derived(role, "emr-serverless", "StartJobRun", {"applicationId": application})
        record_derived(
            role, "iam", "PassRole", {"RoleArn": job_role, "PassedToService": "emr-serverless.amazonaws.com"}
        )
        for operation in ("PutTargets", "PutRule", "DescribeRule"):
            record_derived(role, "events", operation, {"Rule": EMR_SYNC_RULE})
        result = original_run_spark_job(self, parameters)
        record_derived(
            role, "emr-serverless", "GetJobRun", {"applicationId": application, "jobRunId": result["JobRunId"]}
        )
        return result

    emulation.Emulation.run_spark_job = run_spark_job  # type: ignore[method-assign]


WIRE_KEY = "fraudops_aws_calls"  # the key of a worker's calls in its ``workeroutput``


def _plain(value: Any) -> Any:
    """``value`` as execnet can send it (str, numbers, lists, dicts); anything else, e.g. a Body's bytes or
    file, as a placeholder: the check reads only names, keys and ARNs."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    return f"<{type(value).__name__}>"


def to_wire(call: Call) -> dict[str, Any]:
    """One recorded call as a worker sends it to the controller."""
    return {
        "role": call.role,
        "service": call.service,
        "operation": call.operation,
        "params": _plain(call.params),
        "status": call.status,
        "error_code": call.error_code,
        "buckets": dict(call.buckets),
        "per_key_errors": _plain(call.per_key_errors),
    }


def from_wire(data: dict[str, Any]) -> Call:
    return Call(**data)


WORKERS: dict[str, int | None] = {}  # controller under xdist: worker id -> calls it sent (None: it sent none)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    _install()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """The controller (pytest-xdist): a worker finished; its calls join the controller's for the check."""
    sent = (getattr(node, "workeroutput", None) or {}).get(WIRE_KEY)
    WORKERS[str(node.gateway.id)] = None if sent is None else len(sent["calls"])
    if sent is not None:
        RECORDED.extend(from_wire(call) for call in sent["calls"])
        UNATTRIBUTED[0] += int(sent["unattributed"])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if _is_worker(config):
        # The controller checks every worker's calls at once (pytest_testnodedown); a worker only sends.
        config.workeroutput[WIRE_KEY] = {  # type: ignore[attr-defined]
            "calls": [to_wire(call) for call in RECORDED],
            "unattributed": UNATTRIBUTED[0],
        }
        return
    silent = sorted(worker for worker, sent in WORKERS.items() if sent is None)
    if silent and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not RECORDED and not silent:
        return
    from fraudops_dev.iam.roles import all_roles

    findings, checked = check(RECORDED, all_roles())
    config.stash[_RESULT] = (findings, checked)
    if findings and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_RESULT = pytest.StashKey[tuple[list[Any], dict[str, set[tuple[str, str]]]]]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _is_worker(config):
        return
    workers = WORKERS
    silent = sorted(worker for worker, sent in workers.items() if sent is None)
    result = config.stash.get(_RESULT, None)
    if result is None and not workers:
        return
    terminalreporter.section("AWS calls checked against the template's roles (docs/iam.md)")
    if workers:
        sent = ", ".join(f"{w}: {n}" for w, n in sorted(workers.items()) if n is not None)
        terminalreporter.write_line(f"calls gathered from {len(workers) - len(silent)} xdist worker(s) ({sent})")
    for worker in silent:
        terminalreporter.write_line(
            f"worker {worker} sent no record of its AWS calls: they were not checked (run failed)", red=True
        )
    if result is None:
        terminalreporter.write_line("no AWS call was made by any role's code in this run")
        return
    findings, checked = result
    terminalreporter.write_line(table(checked, findings, UNATTRIBUTED[0]))
    if findings:
        terminalreporter.write_line(f"\n{len(findings)} call(s) AWS would deny:", red=True, bold=True)
        for finding in findings:
            terminalreporter.write_line("  DENIED " + finding.describe(), red=True)
