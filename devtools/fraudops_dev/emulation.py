"""Local AWS emulation of the retraining workflow, for `make retrain` and the tests.

moto's Step Functions backend (a real ASL interpreter, run with its ``execute_state_machine`` setting)
executes the project's own ``infra/statemachine/retrain.asl.json`` with the template's
``DefinitionSubstitutions`` applied. Its Lambda tasks reach moto's Lambda backend, whose ``invoke`` is
replaced here by a dispatcher that calls this project's train and promote handlers in process, with
the event Step Functions built and Lambda's error contract (``errorType``/``errorMessage``).

The Spark branch's ``emr-serverless:startJobRun.sync`` task (which moto's engine does not run) is
resolved locally: the job's own entry point arguments go to the same ``train_on_spark`` on PySpark in
local mode, the window's committed files (the input manifest's) copied from (moto's) S3 first, since
local Spark has no S3 connector.

Two modes. On the stack (``make retrain``): the handlers work on your local store and data, so the new
version and its decision appear in the stack's MLflow UI and a promoted one is served by the running
API. Isolated (``--isolated``, and the tests): S3 is moto's too, configured as in AWS (the lake in a data
bucket, registry as an S3 object), and everything is thrown away afterwards.

Logs: each handler is imported with the ``POWERTOOLS_SERVICE_NAME`` its function has in the template
(``fraudops-train``, ``fraudops-promote``, ...) and routes the core ``fraudops`` loggers to its own
Powertools logger when invoked, as in its Lambda; when the emulation ends they are put back as they
were, so a process that also serves the API (``make drift-demo``) logs the API's lines as before.

Needs the ``local`` extra (moto). Nothing here is used in AWS.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from fraudops.core.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = REPO_ROOT / "infra" / "statemachine" / "retrain.asl.json"
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"

# Function name in the emulation -> (handler module, folder under functions/)
FUNCTIONS = {
    "fraudops-train-local": ("train_function", "train"),
    "fraudops-promote-local": ("promote_function", "promote"),
    "fraudops-curate-local": ("curate_function", "curate"),
}
SUBSTITUTION_TARGETS = {
    "TrainFunctionArn": "fraudops-train-local",
    "PromoteFunctionArn": "fraudops-promote-local",
    "CurateFunctionArn": "fraudops-curate-local",
}
# The Spark task's values: what the template's DefinitionSubstitutions resolve to in a stack (the job's
# submit parameters only matter to EMR; the local job reads the same arguments).
CONSTANT_SUBSTITUTIONS = {
    "Partition": "aws",
    "SparkApplicationId": "00fraudopslocal",
    "SparkJobRoleArn": f"arn:aws:iam::{ACCOUNT}:role/fraudops-spark-job-local",
    "SparkEntryPoint": "local:///opt/fraudops/spark_train.py",
    "SparkLogUri": "s3://fraudops-data-local/spark-training/logs/",
    "SparkSubmitParameters": "--conf spark.executor.cores=4",
}


@dataclass
class LambdaContext:
    """What the Lambda runtime passes as ``context`` (the attributes Powertools reads)."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 3008
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


@dataclass(frozen=True)
class Invocation:
    function: str
    event: Any
    outcome: str  # "ok" | "error" | "service_error"


@dataclass(frozen=True)
class ExecutionResult:
    status: str
    output: Any
    error: str | None
    cause: str | None
    events: list[dict[str, Any]]


def definition_substitutions(template_path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The state machine's DefinitionSubstitutions exactly as template.yaml declares them."""
    from cfnlint.decode import decode

    template, errors = decode(str(template_path))
    if errors or template is None:
        raise ValueError(f"cannot parse {template_path}: {errors}")
    properties = template["Resources"]["RetrainStateMachine"]["Properties"]
    return dict(properties["DefinitionSubstitutions"])


@functools.cache
def function_service_names(template_path: Path = TEMPLATE_PATH) -> dict[str, str]:
    """Handler module -> the ``POWERTOOLS_SERVICE_NAME`` its function has in template.yaml (each
    function's logs carry its own service name, locally as in AWS)."""
    from cfnlint.decode import decode

    template, errors = decode(str(template_path))
    if errors or template is None:
        raise ValueError(f"cannot parse {template_path}: {errors}")
    names: dict[str, str] = {}
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        command = properties.get("ImageConfig", {}).get("Command") or []
        service = properties.get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
        if command and isinstance(service, str):
            names[str(command[0]).split(".")[0]] = service
    return names


_handler_lock = threading.Lock()


def _handler_module(module_name: str) -> Any:
    """A handler's module, imported as its Lambda would be: ``POWERTOOLS_SERVICE_NAME`` from the
    template while its ``Logger()`` is made, and the core ``fraudops`` loggers routed to that logger
    for the invocation (another handler imported since may have taken them). ``emulated_retraining``
    puts the core loggers back as they were when it ends: in AWS each function is its own process;
    here the API may share this one (``make drift-demo``), and its lines came out as the last imported
    handler's JSON ever after."""
    from fraudops.core.observability import route_core_logs

    service = function_service_names().get(module_name)
    with _handler_lock:  # executions run in threads: one import and routing at a time
        with _environment({"POWERTOOLS_SERVICE_NAME": service} if service else {}):
            module = importlib.import_module(module_name)
        route_core_logs(module.logger)
    return module


@contextlib.contextmanager
def _core_logging_restored() -> Iterator[None]:
    core = logging.getLogger("fraudops")
    handlers, level, propagate = list(core.handlers), core.level, core.propagate
    try:
        yield
    finally:
        core.handlers, core.propagate = handlers, propagate
        core.setLevel(level)


def render_definition(arns: dict[str, str], template_path: Path = TEMPLATE_PATH) -> str:
    """retrain.asl.json with ${Name} replaced for every substitution the template declares."""
    text = ASL_PATH.read_text()
    for name in definition_substitutions(template_path):
        if name not in arns:
            raise KeyError(f"the emulation has no value for substitution {name}")
        text = text.replace("${" + name + "}", arns[name])
    if "${" in text:
        raise ValueError("retrain.asl.json uses a substitution the template does not declare")
    json.loads(text)
    return text


class _LambdaServiceError(Exception):
    """Stands in for a Lambda service failure (HTTP 500 ServiceException)."""


@dataclass
class Emulation:
    sfn: Any
    s3: Any
    state_machine_arn: str
    data_bucket: str
    model_bucket: str
    invocations: list[Invocation] = field(default_factory=list)
    # function name -> number of upcoming invocations to fail with Lambda.ServiceException
    service_errors: dict[str, int] = field(default_factory=dict)

    def upload_data(self, source: Settings) -> None:
        """Copy the committed transactions of ``source``'s lake into the data bucket's lake (as AWS has it),
        through the emulated functions' own settings: the same Iceberg catalog (in their state folder) as
        the Lambdas read, whatever ``source``'s state folder is."""
        from fraudops.core.config import Settings
        from fraudops.lake import Lake
        from fraudops.lake.transactions import write_transaction_frames

        table = Lake(source).transactions
        functions = Settings().model_copy(update={"lake_uri": f"s3://{self.data_bucket}/lake", "aws": True})
        target = Lake(functions).transactions
        batches = (table.read(files=[f]).to_pandas() for f in table.files())
        write_transaction_frames(target, batches, source="import")

    def start(self, payload: dict[str, Any] | None = None) -> str:
        response = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=f"retrain-{uuid.uuid4().hex[:12]}",
            input=json.dumps(payload or {"feature_set": "engineered"}),
        )
        return str(response["executionArn"])

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return list(self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"])

    def wait(self, execution_arn: str, timeout: float = 600.0) -> ExecutionResult:
        deadline = time.monotonic() + timeout
        while True:
            description = self.sfn.describe_execution(executionArn=execution_arn)
            if description["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_arn} still RUNNING after {timeout:.0f}s")
            time.sleep(0.1)
        events = self.history(execution_arn)
        output = json.loads(description["output"]) if description.get("output") else None
        return ExecutionResult(
            description["status"], output, description.get("error"), description.get("cause"), events
        )

    def run(self, payload: dict[str, Any] | None = None, timeout: float = 600.0) -> ExecutionResult:
        return self.wait(self.start(payload), timeout)

    def run_spark_job(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """What EMR Serverless does with the StartJobRun the state machine sends: run the entry point's
        arguments through ``train_on_spark``, here on PySpark local mode."""
        arguments = _spark_arguments(parameters)
        job_run_id = uuid.uuid4().hex[:16]
        try:
            _run_spark_training_locally(arguments)
        except Exception:
            self.invocations.append(Invocation("emr-serverless", parameters, "error"))
            raise
        self.invocations.append(Invocation("emr-serverless", parameters, "ok"))
        return {"ApplicationId": CONSTANT_SUBSTITUTIONS["SparkApplicationId"], "JobRunId": job_run_id}

    def _dispatch(self, function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
        name = str(function_name).split(":function:")[-1].split(":")[0]
        if name not in FUNCTIONS:
            raise KeyError(f"no local handler for Lambda function {name}")
        event = json.loads(body) if body else {}
        if self.service_errors.get(name, 0) > 0:
            self.service_errors[name] -= 1
            self.invocations.append(Invocation(name, event, "service_error"))
            raise _LambdaServiceError(f"injected Lambda service failure for {name}")
        module = _handler_module(FUNCTIONS[name][0])
        try:
            result = module.handler(event, LambdaContext(function_name=name))
        except Exception as error:  # the Lambda runtime's contract for an unhandled error
            self.invocations.append(Invocation(name, event, "error"))
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorMessage": str(error),
                    "errorType": type(error).__name__,
                    "requestId": str(uuid.uuid4()),
                    "stackTrace": traceback.format_exception(error)[-5:],
                }
            ).encode()
        self.invocations.append(Invocation(name, event, "ok"))
        return json.dumps(result).encode()


def _spark_arguments(parameters: dict[str, Any]) -> list[str]:
    """``JobDriver.SparkSubmit.EntryPointArguments``, whichever casing the engine left the keys in."""

    def get(mapping: dict[str, Any], name: str) -> Any:
        for key, value in mapping.items():
            if key.lower() == name.lower():
                return value
        raise KeyError(f"StartJobRun has no {name}")

    return [str(a) for a in get(get(get(parameters, "JobDriver"), "SparkSubmit"), "EntryPointArguments")]


def _run_spark_training_locally(arguments: list[str]) -> None:
    """The job's entry point on local PySpark: input files on S3 are copied to a temporary folder first."""
    import argparse

    from fraudops.core.config import Settings
    from fraudops.spark_training.job import spark_session, train_on_spark
    from fraudops.spark_training.plan import read_input_manifest
    from fraudops.store.s3 import s3_client, split_s3_uri

    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--feature-set", default="engineered")
    args = parser.parse_args(arguments)
    settings = Settings()
    window = read_input_manifest(settings, args.input)
    with tempfile.TemporaryDirectory(prefix="fraudops-emr-local-") as folder:
        local_files = []
        for uri in window.uris:  # exactly the committed files the plan froze, nothing else under the prefix
            if not uri.startswith("s3://"):
                local_files.append(uri)
                continue
            bucket, key = split_s3_uri(uri)
            target = Path(folder) / key
            target.parent.mkdir(parents=True, exist_ok=True)
            s3_client(settings).download_file(bucket, key, str(target))
            local_files.append(str(target))
        with spark_session(settings) as spark:
            train_on_spark(spark, window, settings, args.output, args.feature_set, read_uris=local_files)


@contextlib.contextmanager
def _local_emr_serverless(run_job: Callable[[dict[str, Any]], dict[str, Any]]) -> Iterator[None]:
    """moto's engine forwards unsupported integrations to the service API and knows no ``.sync`` for
    EMR Serverless: make ``emr-serverless:startJobRun.sync`` run the job and return when it ends (a
    failed job fails the task with States.TaskFailed, as a FAILED job run does in AWS)."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    class LocalEmrServerless(StateTaskServiceCallback):
        def __init__(self) -> None:
            super().__init__(supported_integration_patterns={ResourceCondition.Sync})  # type: ignore[arg-type]

        def _get_supported_parameters(self) -> set[str] | None:
            """StartJobRun's request fields as Step Functions takes them (anything else is a definition
            error, as in AWS); other EMR Serverless actions are not emulated."""
            if self.resource.api_action.lower() != "startjobrun":
                return None
            return {
                "ApplicationId", "ExecutionRoleArn", "Name", "JobDriver", "ConfigurationOverrides",
                "ClientToken", "Tags", "ExecutionTimeoutMinutes",
            }  # fmt: skip

        def _eval_service_task(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
        ) -> None:
            try:
                env.stack.append(run_job(normalised_parameters))
            except Exception as error:
                cause = json.dumps({"State": "FAILED", "StateDetails": f"{type(error).__name__}: {error}"})
                raise FailureEventException(
                    FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(  # type: ignore[typeddict-item]
                            taskFailedEventDetails=TaskFailedEventDetails(
                                resource=self._get_sfn_resource(),
                                resourceType=self._get_sfn_resource_type(),
                                error=StatesErrorNameType.StatesTaskFailed.to_name(),
                                cause=cause,
                            )
                        ),
                    )
                ) from error

        def _eval_integration_pattern(self, env: Any, *args: Any, **kwargs: Any) -> None:
            started = env.stack.pop()  # the job ran to its end in _eval_service_task
            env.stack.append({**started, "JobRun": {**started, "State": "SUCCESS"}})

    original = state_task_factory.state_task_service_for

    def service_for(service_name: str) -> Any:
        return LocalEmrServerless() if service_name == "emr-serverless" else original(service_name)

    with mock.patch.object(state_task_factory, "state_task_service_for", service_for):
        yield


def _lambda_service_exception(message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    class ServiceException(JsonRESTError):
        code = 500

        def __init__(self) -> None:
            super().__init__("ServiceException", message)

    return ServiceException()


@contextlib.contextmanager
def _aws_sdk_casing() -> Iterator[None]:
    """Step Functions' aws-sdk integrations take and return PascalCase names (``StateMachineArn``,
    ``Executions``) and convert them to and from the API's own casing; moto's engine ships the
    conversion helpers but leaves that step out. Fill the gap in the test double, not in our ASL."""
    import botocore.session
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )

    def operation(task: Any) -> Any:
        model = botocore.session.get_session().get_service_model(task._get_boto_service_name())
        action = task.resource.api_action
        return model.operation_model(action[0].upper() + action[1:])

    def normalise_parameters(task: Any, parameters: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        task._to_boto_request(parameters, operation(task).input_shape)

    def normalise_response(task: Any, response: Any, *args: Any, **kwargs: Any) -> None:
        task._from_boto_response(response, operation(task).output_shape)

    with (
        mock.patch.object(StateTaskServiceAwsSdk, "_normalise_parameters", normalise_parameters),
        mock.patch.object(StateTaskServiceAwsSdk, "_normalise_response", normalise_response),
    ):
        yield


def set_environment(values: dict[str, str | None]) -> None:
    """Set each variable; None removes it."""
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@contextlib.contextmanager
def _environment(values: dict[str, str | None]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    try:
        set_environment(values)
        yield
    finally:
        set_environment(saved)


def _stack_environment(settings: Settings) -> dict[str, str | None]:
    """The handlers see the stack's own settings (absolute paths: the same files as the CLI and API)."""
    return {
        "FRAUDOPS_STORAGE": settings.storage,
        "FRAUDOPS_DB_PATH": str(settings.db_path.resolve()),
        "FRAUDOPS_LAKE_URI": settings.lake_root_uri,
        "FRAUDOPS_LABEL_MATURITY_DAYS": str(settings.label_maturity_days),
        "FRAUDOPS_CURATION_SETTLE_MINUTES": str(settings.curation_settle_minutes),
        "FRAUDOPS_STATE_DIR": str(settings.state_dir.resolve()),
        "FRAUDOPS_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "MLFLOW_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "FRAUDOPS_DATA_S3_URI": None,
        "FRAUDOPS_SPARK_OUTPUT_URI": settings.spark_output_uri,
        "FRAUDOPS_TRACKING_URI": settings.tracking_uri,
        "FRAUDOPS_REGISTRY_S3_KEY": settings.registry_s3_key,
        "FRAUDOPS_MODEL_BUCKET": settings.model_bucket,
        "FRAUDOPS_MODEL_NAME": settings.model_name,
    }


def _reset_cached_clients() -> None:
    """boto3 clients made outside the mock must not be reused inside it (and vice versa)."""
    from fraudops.core.config import get_settings
    from fraudops.store import reset_s3_clients

    get_settings.cache_clear()
    reset_s3_clients()


@contextlib.contextmanager
def emulated_retraining(
    settings_env: dict[str, str] | None = None, stack: Settings | None = None
) -> Iterator[Emulation]:
    """moto's AWS in process with the retrain state machine deployed as the template declares it.
    With ``stack``, the Lambda tasks act on that local stack's store and data instead of moto's S3."""
    import boto3
    from moto import mock_aws
    from moto.awslambda_simple.models import LambdaSimpleBackend

    for _, folder in FUNCTIONS.values():
        path = str(REPO_ROOT / "functions" / folder)
        if path not in sys.path:
            sys.path.insert(0, path)

    workdir = Path(tempfile.mkdtemp(prefix="fraudops-emulation-"))
    suffix = uuid.uuid4().hex[:8]
    model_bucket, data_bucket = f"fraudops-models-{suffix}", f"fraudops-data-{suffix}"
    env: dict[str, str | None] = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "MLFLOW_S3_ENDPOINT_URL": None,
        "FRAUDOPS_S3_ENDPOINT_URL": None,
        "FRAUDOPS_TRACKING_URI": None,
        "FRAUDOPS_DB_PATH": None,
        "FRAUDOPS_MODEL_BUCKET": model_bucket,
        "FRAUDOPS_REGISTRY_S3_KEY": "registry/mlflow.db",
        "FRAUDOPS_DATA_S3_URI": None,
        "FRAUDOPS_LAKE_URI": f"s3://{data_bucket}/lake",  # as the template sets it
        "FRAUDOPS_SPARK_OUTPUT_URI": f"s3://{data_bucket}/spark-training",
        "FRAUDOPS_STATE_DIR": str(workdir / "state"),
        "FRAUDOPS_AWS_REGION": REGION,
        "FRAUDOPS_STORAGE": "s3",
        "FRAUDOPS_AWS": "true",  # every AWS call below goes to moto, in process
        "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),  # no EMF on a laptop
        **(_stack_environment(stack) if stack is not None else {}),
        **(settings_env or {}),
    }
    config = {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}
    with _core_logging_restored(), _environment(env), mock_aws(config=config):  # type: ignore[call-overload]
        _reset_cached_clients()
        try:
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket=model_bucket)
            s3.create_bucket(Bucket=data_bucket)
            iam = boto3.client("iam", region_name=REGION)
            role = iam.create_role(
                RoleName=f"fraudops-local-{suffix}",
                AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
            )["Role"]["Arn"]
            awslambda = boto3.client("lambda", region_name=REGION)
            arns: dict[str, str] = {}
            for name, (module, _) in FUNCTIONS.items():
                archive = io.BytesIO()
                with zipfile.ZipFile(archive, "w") as zipped:
                    zipped.writestr(f"{module}.py", "# dispatched in process by fraudops.emulation\n")
                arns[name] = awslambda.create_function(
                    FunctionName=name,
                    Runtime="python3.12",
                    Role=role,
                    Handler=f"{module}.handler",
                    Code={"ZipFile": archive.getvalue()},
                    Timeout=900,
                )["FunctionArn"]
            definition = render_definition(
                {**{key: arns[fn] for key, fn in SUBSTITUTION_TARGETS.items()}, **CONSTANT_SUBSTITUTIONS}
            )
            sfn = boto3.client("stepfunctions", region_name=REGION)
            state_machine_arn = sfn.create_state_machine(
                name=f"fraudops-retrain-local-{suffix}", definition=definition, roleArn=role
            )["stateMachineArn"]
            emulation = Emulation(sfn, s3, state_machine_arn, data_bucket, model_bucket)

            def invoke(
                backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
            ) -> bytes:
                try:
                    return emulation._dispatch(function_name, body, response_headers)
                except _LambdaServiceError as error:
                    raise _lambda_service_exception(str(error)) from None

            with (
                mock.patch.object(LambdaSimpleBackend, "invoke", invoke),
                _aws_sdk_casing(),
                _local_emr_serverless(emulation.run_spark_job),
            ):
                yield emulation
        finally:
            _reset_cached_clients()
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


def retrain_trigger(settings: Settings, progress: Callable[[str], None] = print) -> Callable[[dict[str, Any]], str]:
    """What the monitor calls on drift, locally: one execution of the real state machine on the stack."""

    def start(payload: dict[str, Any]) -> str:
        result = retrain_locally(settings, payload=payload, progress=progress)[0]
        if result.status != "SUCCEEDED":
            raise RuntimeError(f"the drift retraining failed: {result.error}: {result.cause}")
        if result.output.get("lease", {}).get("acquired") is False:
            return f"local execution skipped: {result.output['lease']['reason']}"
        return f"local execution: {result.status}, promotion {result.output['promotion']['outcome']}"

    return start


def retrain_locally(
    settings: Settings,
    runs: int = 1,
    isolated: bool = False,
    progress: Callable[[str], None] = print,
    payload: dict[str, Any] | None = None,
) -> list[ExecutionResult]:
    """`make retrain`: deploy the state machine into the emulation and run it ``runs`` times, on the
    stack's store (default) or in a throwaway copy of AWS (``isolated``)."""
    results = []
    with emulated_retraining(stack=None if isolated else settings) as emulation:
        if isolated:
            emulation.upload_data(settings)
        where = "isolated, nothing kept" if isolated else f"on the stack in {settings.state_dir}"
        progress(f"state machine {emulation.state_machine_arn.split(':')[-1]} (moto ASL engine, {where})")
        for number in range(1, runs + 1):
            started = time.perf_counter()
            result = emulation.run(payload)
            progress(f"execution {number}: {result.status} in {time.perf_counter() - started:.1f}s")
            results.append(result)
    return results
