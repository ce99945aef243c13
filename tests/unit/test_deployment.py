"""The SAM deployment, checked offline: cfn-lint, least-privilege IAM, secure buckets, Dockerfiles whose
handlers import, requirements that are the project's own, and the usage plan's keys reaching the app."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import decode
from fastapi.testclient import TestClient
from moto import mock_aws

from fraudops.api import create_app
from fraudops.api.keys import load_api_keys
from fraudops.api.schemas import EXAMPLE_TRANSACTION
from fraudops.serving.provider import ModelProvider
from tests.helpers.events import lambda_context
from tests.helpers.models import train_local_model
from tests.helpers.stack import fast_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    parsed, errors = decode(str(ROOT / "template.yaml"))
    assert not errors and parsed is not None
    return dict(parsed)


def resources_of(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


@pytest.mark.slow
def test_cfn_lint_passes() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(ROOT / "template.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def policy_statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every statement of the functions' inline policies and of the IAM roles the template declares."""
    found = []
    for name, resource in template["Resources"].items():
        for policy in resource.get("Properties", {}).get("Policies", []) or []:
            if isinstance(policy, dict) and "Statement" in policy:
                found += [(name, statement) for statement in policy["Statement"]]
            if isinstance(policy, dict) and "PolicyDocument" in policy:
                found += [(name, statement) for statement in policy["PolicyDocument"]["Statement"]]
    return found


def test_no_wildcard_actions_or_resources(template: dict[str, Any]) -> None:
    for name, statement in policy_statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), (name, statement)
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            assert resource != "*", (name, statement)
            text = json.dumps(resource)
            assert not re.search(r'Arn}/\*"', text), f"{name} may touch a whole bucket: {text}"


def test_functions_touch_only_their_prefixes(template: dict[str, Any]) -> None:
    statements = policy_statements(template)
    writes = {
        name: json.dumps(s["Resource"])
        for name, s in statements
        if "s3:PutObject" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert writes["ApiFunction"] == json.dumps({"Fn::Sub": "${ModelBucket.Arn}/mlflow/labels/*"})  # feedback only
    assert "registry/*" in writes["TrainFunction"] and "mlflow/*" in writes["TrainFunction"]
    assert "mlflow/serving/*" in writes["PromoteFunction"] and "registry/*" in writes["PromoteFunction"]
    assert '"mlflow/*"' not in writes["PromoteFunction"]  # promotion never rewrites model artifacts


def test_buckets_are_encrypted_versioned_private_and_tls_only(template: dict[str, Any]) -> None:
    buckets = resources_of(template, "AWS::S3::Bucket")
    assert set(buckets) == {"ModelBucket", "DataBucket"}
    policies = resources_of(template, "AWS::S3::BucketPolicy")
    for name, bucket in buckets.items():
        properties = bucket["Properties"]
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert properties["VersioningConfiguration"]["Status"] == "Enabled"
        assert all(properties["PublicAccessBlockConfiguration"].values())
        assert "AccessControl" not in properties
        policy = next(p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": name})
        statement = policy["Properties"]["PolicyDocument"]["Statement"][0]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_api_requires_keys_except_health_and_docs(template: dict[str, Any]) -> None:
    api = template["Resources"]["FraudApi"]["Properties"]
    assert api["Auth"]["ApiKeyRequired"] is True
    plan = api["Auth"]["UsagePlan"]
    assert plan["CreateUsagePlan"] == "PER_API"
    assert set(plan["Throttle"]) == {"RateLimit", "BurstLimit"} and set(plan["Quota"]) == {"Limit", "Period"}
    events = template["Resources"]["ApiFunction"]["Properties"]["Events"]
    open_paths = {
        e["Properties"]["Path"]
        for e in events.values()
        if e["Properties"].get("Auth", {}).get("ApiKeyRequired") is False
    }
    assert open_paths == {"/health", "/docs", "/docs/assets/{name}", "/openapi.json"}


def test_every_api_route_is_wired_in_api_gateway(template: dict[str, Any], small_db: Path) -> None:
    """A route FastAPI serves but API Gateway does not forward is a 403 in AWS and works locally."""
    from fastapi.routing import APIRoute

    app = create_app(fast_settings(db_path=small_db), ModelProvider(fast_settings(), loader=lambda _: None), [])
    served = {(m, r.path) for r in app.routes if isinstance(r, APIRoute) for m in r.methods or ()}
    served.add(("GET", "/openapi.json"))  # FastAPI's own route
    events = template["Resources"]["ApiFunction"]["Properties"]["Events"].values()
    wired = {(e["Properties"]["Method"].upper(), e["Properties"]["Path"]) for e in events}
    assert served == wired


def test_state_machine_may_invoke_only_its_three_functions(template: dict[str, Any]) -> None:
    machine = template["Resources"]["RetrainStateMachine"]["Properties"]
    invoked = [p["LambdaInvokePolicy"]["FunctionName"] for p in machine["Policies"] if "LambdaInvokePolicy" in p]
    assert invoked == [{"Ref": "TrainFunction"}, {"Ref": "PromoteFunction"}, {"Ref": "CurateFunction"}]
    assert (ROOT / machine["DefinitionUri"]).exists()
    definition = (ROOT / machine["DefinitionUri"]).read_text()
    assert set(re.findall(r"\$\{(\w+)\}", definition)) == set(machine["DefinitionSubstitutions"])


def test_batch_state_machine_is_wired_as_declared(template: dict[str, Any]) -> None:
    machine = template["Resources"]["BatchScoreStateMachine"]["Properties"]
    invoked = [p["LambdaInvokePolicy"]["FunctionName"] for p in machine["Policies"] if "LambdaInvokePolicy" in p]
    assert invoked == [{"Ref": "PromoteFunction"}, {"Ref": "BatchScoreFunction"}]
    definition_text = (ROOT / machine["DefinitionUri"]).read_text()
    assert set(re.findall(r"\$\{(\w+)\}", definition_text)) == set(machine["DefinitionSubstitutions"])
    definition = json.loads(definition_text)
    maps = [s for s in definition["States"].values() if s["Type"] == "Map"]
    assert len(maps) == 2  # CSV and JSON Lines
    for state in maps:
        assert state["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
        assert state["ItemBatcher"]["BatchInput"]["model.$"] == "$.pinned.model"  # one version for the run
        assert state["ItemBatcher"]["BatchInput"]["policy.$"] == "$.pinned.policy"  # and one decision policy
        assert {"MaxConcurrencyPath", "ToleratedFailurePercentagePath", "ItemReader", "ResultWriter"} <= set(state)
    batch_function = template["Resources"]["BatchScoreFunction"]
    assert batch_function["Metadata"]["Dockerfile"] == "functions/api/Dockerfile"  # the API image, other command


def dockerfile_facts(path: Path) -> dict[str, Any]:
    text = path.read_text().replace("\\\n", " ")  # join continuation lines
    return {
        "from": re.findall(r"^FROM\s+(\S+)", text, re.M),
        "copies": [line.split()[1:-1] for line in re.findall(r"^COPY .+$", text, re.M)],
        "cmd": json.loads(re.findall(r"^CMD\s+(\[.*\])", text, re.M)[-1]),
        "pip": re.findall(r"pip install[^\n]*", text),
    }


def image_functions(template: dict[str, Any]) -> dict[str, tuple[Path, str]]:
    """function -> (Dockerfile, handler the image runs, after the template's ImageConfig override)."""
    found = {}
    for name, resource in resources_of(template, "AWS::Serverless::Function").items():
        assert resource["Properties"]["PackageType"] == "Image"
        dockerfile = ROOT / resource["Metadata"]["Dockerfile"]
        command = resource["Properties"].get("ImageConfig", {}).get("Command") or dockerfile_facts(dockerfile)["cmd"]
        found[name] = (dockerfile, command[0])
    return found


def test_every_image_handler_resolves_to_a_callable(template: dict[str, Any]) -> None:
    functions = image_functions(template)
    assert set(functions) == {
        "ApiFunction",
        "TrainFunction",
        "PromoteFunction",
        "MonitorFunction",
        "CurateFunction",
        "BatchScoreFunction",
    }
    for name, (dockerfile, handler) in functions.items():
        module_name, attribute = handler.rsplit(".", 1)
        copied = " ".join(" ".join(c) for c in dockerfile_facts(dockerfile)["copies"])
        assert f"{module_name}.py" in copied, f"{name}: {dockerfile} does not copy {module_name}.py"
        module = importlib.import_module(module_name)
        assert callable(getattr(module, attribute)), name


def test_dockerfiles_use_the_lambda_python_base_image_and_project_files() -> None:
    for dockerfile in (ROOT / "functions/api/Dockerfile", ROOT / "functions/train/Dockerfile"):
        facts = dockerfile_facts(dockerfile)
        assert [image.split("@")[0] for image in facts["from"]] == ["public.ecr.aws/lambda/python:3.12"]
        for sources in facts["copies"]:
            for source in sources:
                assert (ROOT / source).exists(), f"{dockerfile}: COPY {source} does not exist"
        assert "-c /tmp/build/constraints.txt" in facts["pip"][0]
        assert "layers/runtime/fraudops" in [s for c in facts["copies"] for s in c]


def pinned() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


@pytest.mark.parametrize("function", ["api", "train"])
def test_image_requirements_are_pinned_project_dependencies(function: str) -> None:
    pins = pinned()
    names = [
        re.sub(r"[-_.]+", "-", line.strip()).lower()
        for line in (ROOT / f"functions/{function}/requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert names
    missing = [name for name in names if name not in pins]
    assert missing == [], f"not pinned in constraints.txt: {missing}"
    assert all("==" not in name and ">" not in name for name in names)  # versions come from constraints only


def test_api_image_leaves_mlflow_and_pandas_out() -> None:
    requirements = (ROOT / "functions/api/requirements.txt").read_text()
    for heavy in ("mlflow", "pandas", "scikit-learn", "matplotlib"):
        assert f"\n{heavy}\n" not in f"\n{requirements}\n"


def _requirement_names(path: Path) -> set[str]:
    lines = path.read_text().splitlines()
    return {re.sub(r"[-_.]+", "-", x.strip()).lower() for x in lines if x.strip() and not x.startswith("#")}


def test_pyiceberg_is_in_the_train_image_only() -> None:
    """The lake's writers and readers (train, promote, monitor, curate) run pyiceberg; the API image never
    touches the lake, and the Spark job on EMR reads the table through the release's Java Iceberg runtime
    (its import chain must not need pyiceberg: the test below)."""
    assert "pyiceberg" in _requirement_names(ROOT / "functions/train/requirements.txt")
    assert "pyiceberg" not in _requirement_names(ROOT / "functions/api/requirements.txt")
    assert "pyiceberg" not in _requirement_names(ROOT / "functions/api/requirements-nodeps.txt")
    assert "pyiceberg" not in _requirement_names(ROOT / "infra/emr/requirements.txt")


def test_the_spark_jobs_entry_point_imports_without_pyiceberg() -> None:
    """What the EMR image runs (infra/emr/spark_train.py -> fraudops.spark_training) imports with pyiceberg
    made unimportable, as in that image."""
    code = (
        "import sys; sys.modules['pyiceberg'] = None\n"
        "import fraudops.spark_training.__main__, fraudops.spark_training.job"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "runtime")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_sample_events_and_env_are_valid() -> None:
    env = json.loads((ROOT / "events/env.json").read_text())
    assert set(env) == {"ApiFunction", "TrainFunction", "PromoteFunction"}
    for name in ("train", "promote", "predict"):
        json.loads((ROOT / f"events/{name}.json").read_text())


def test_sample_step_functions_events_parse() -> None:
    from fraudops.stages.events import parse_promote_input, parse_train_input

    assert parse_train_input(json.loads((ROOT / "events/train.json").read_text())).feature_set == "engineered"
    assert parse_promote_input(json.loads((ROOT / "events/promote.json").read_text())).version == "1"


def test_sample_predict_event_through_mangum(small_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mangum import Mangum

    settings = fast_settings(db_path=small_db)
    loaded = train_local_model(settings)
    app = create_app(settings, ModelProvider(settings, loader=lambda _: loaded), ["local-dev-key"])
    event = json.loads((ROOT / "events/predict.json").read_text())
    response = Mangum(app, lifespan="off")(event, lambda_context())  # type: ignore[arg-type]
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["model_version"] == "7"


@pytest.mark.slow
def test_usage_plan_keys_from_the_template_reach_the_app(template: dict[str, Any], small_db: Path) -> None:
    """API Gateway enforces keys in AWS; locally the app checks them itself. Build the usage plan the
    template declares in moto, and check the app accepts exactly that plan's enabled keys."""
    plan_spec = template["Resources"]["FraudApi"]["Properties"]["Auth"]["UsagePlan"]
    parameters = {name: p.get("Default") for name, p in template["Parameters"].items()}
    # The function finds the plan by the name the plan is given (the stack's name), never by its id:
    # the id would be a dependency cycle after the SAM transform (test_sam_translation.py).
    variables = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert "FRAUDOPS_API_USAGE_PLAN_ID" not in variables
    assert variables["FRAUDOPS_API_USAGE_PLAN_NAME"] == {"Ref": "AWS::StackName"}
    assert plan_spec["UsagePlanName"] == {"Fn::Sub": "${AWS::StackName}"}
    plan_name = f"fraudops-{parameters['Stage']}"  # the stack's name
    with mock_aws():
        client = boto3.client("apigateway", region_name="us-east-1")
        api = client.create_rest_api(name="fraudops")
        root = client.get_resources(restApiId=api["id"])["items"][0]["id"]
        client.put_method(
            restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="NONE", apiKeyRequired=True
        )
        client.put_integration(restApiId=api["id"], resourceId=root, httpMethod="GET", type="MOCK")
        client.create_deployment(restApiId=api["id"], stageName=parameters["Stage"])
        plan = client.create_usage_plan(
            name=plan_name,
            apiStages=[{"apiId": api["id"], "stage": parameters["Stage"]}],
            throttle={"rateLimit": float(parameters[plan_spec["Throttle"]["RateLimit"]["Ref"]]),
                      "burstLimit": int(parameters[plan_spec["Throttle"]["BurstLimit"]["Ref"]])},
            quota={"limit": int(parameters[plan_spec["Quota"]["Limit"]["Ref"]]),
                   "period": parameters[plan_spec["Quota"]["Period"]["Ref"]]},
        )  # fmt: skip
        live = client.create_api_key(name="fraudops-key", enabled=True, value="plan-key-value-0123456789")
        disabled = client.create_api_key(name="old-key", enabled=False, value="revoked-key-value-0123456789")
        client.create_api_key(name="other-plan", enabled=True, value="key-of-another-plan-0123456789")
        for key in (live, disabled):
            client.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")

        settings = fast_settings(db_path=small_db, api_usage_plan_name=plan_name)  # as the template passes it
        assert load_api_keys(fast_settings(db_path=small_db, api_usage_plan_id=plan["id"])) == [live["value"]]
        keys = load_api_keys(settings)
        assert client.get_usage_plan(usagePlanId=plan["id"])["throttle"]["rateLimit"] == 50.0

    assert keys == ["plan-key-value-0123456789"]
    loaded = train_local_model(settings)
    app = TestClient(create_app(settings, ModelProvider(settings, loader=lambda _: loaded), keys))
    assert (
        app.post("/predict", json=EXAMPLE_TRANSACTION, headers={"x-api-key": "plan-key-value-0123456789"}).status_code
        == 200
    )
    assert (
        app.post(
            "/predict", json=EXAMPLE_TRANSACTION, headers={"x-api-key": "revoked-key-value-0123456789"}
        ).status_code
        == 403
    )
    assert (
        app.post(
            "/predict", json=EXAMPLE_TRANSACTION, headers={"x-api-key": "key-of-another-plan-0123456789"}
        ).status_code
        == 403
    )


def test_missing_usage_plan_fails_closed(small_db: Path) -> None:
    with mock_aws():
        keys = load_api_keys(fast_settings(db_path=small_db, api_usage_plan_name="fraudops-nowhere"))
    assert keys == []


def test_every_function_uses_s3_storage_in_aws(template: dict[str, Any]) -> None:
    """The runtime's default is the local folder; in AWS the template must say S3."""
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["FRAUDOPS_STORAGE"] == "s3"
    for function in resources_of(template, "AWS::Serverless::Function").values():
        overrides = function["Properties"].get("Environment", {}).get("Variables", {})
        assert overrides.get("FRAUDOPS_STORAGE", "s3") == "s3"
    env = json.loads((ROOT / "events" / "env.json").read_text())
    assert all(values["FRAUDOPS_STORAGE"] == "s3" for values in env.values())


def test_monitoring_resources(template: dict[str, Any]) -> None:
    """Issue 9: capture shipping, retention, the monitor and its schedule, alarms and the dashboard."""
    resources = template["Resources"]
    subscription = resources["ApiCaptureSubscription"]["Properties"]
    assert subscription["FilterPattern"] == "{ $.fraudops_capture = 1 }"
    assert subscription["LogGroupName"] == {"Ref": "ApiFunctionLogGroup"}
    destination = resources["CaptureStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    assert destination["Prefix"].startswith("mlflow/capture/") and destination["CompressionFormat"] == "GZIP"
    rules = {r["Id"]: r for r in resources["ModelBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-captured-decisions"]["Prefix"] == "mlflow/capture/"
    assert rules["expire-captured-decisions"]["ExpirationInDays"] == {"Ref": "CaptureRetentionDays"}
    assert template["Parameters"]["CaptureRetentionDays"]["Default"] == 90
    schedule = resources["MonitorFunction"]["Properties"]["Events"]["Schedule"]["Properties"]
    assert schedule["State"] == {"Fn::If": ["HasMonitorSchedule", "ENABLED", "DISABLED"]}
    statements = dict(policy_statements(template))
    monitor = [s for n, s in policy_statements(template) if n == "MonitorFunction"]
    assert any(s["Action"] == "states:StartExecution" and s["Resource"] == {"Ref": "RetrainStateMachine"}
               for s in monitor)  # fmt: skip
    assert "MonitorFunction" in statements
    alarms = {n for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms == {"Api5xxAlarm", "ApiLatencyAlarm", "DriftAlarm", "RealizedRecallAlarm"}
    assert all(resources[a]["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms)
    failed = resources["RetrainFailedRule"]["Properties"]["EventPattern"]["detail"]["status"]
    assert set(failed) == {"FAILED", "TIMED_OUT", "ABORTED"}
    body = json.dumps(resources["MonitoringDashboard"]["Properties"]["DashboardBody"])
    for metric in ("IntegrationLatency", "5XXError", "Throttles", "ColdStart", "FeaturePSI", "ScorePSI",
                   "RealizedRecall", "FlaggedRate", "ExecutionsFailed", "Promoted"):  # fmt: skip
        assert metric in body, metric


def test_sam_local_can_override_every_variable_env_json_sets(template: dict[str, Any]) -> None:
    """SAM CLI overrides only variables the template declares for that function (or in Globals):
    anything else in events/env.json would be silently ignored under `sam local`."""
    env = json.loads((ROOT / "events" / "env.json").read_text())
    globals_ = set(template["Globals"]["Function"]["Environment"]["Variables"])
    reserved = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}  # Lambda reserves these: no template may declare them
    for function, values in env.items():
        declared = globals_ | set(template["Resources"][function]["Properties"]["Environment"]["Variables"])
        assert set(values) - reserved <= declared, (function, set(values) - reserved - declared)


@pytest.mark.slow
def test_keys_added_after_a_cold_start_are_accepted_and_reloads_are_rate_limited(small_db: Path) -> None:
    from fraudops.api.keys import KeyRing

    with mock_aws():
        client = boto3.client("apigateway", region_name="us-east-1")
        plan = client.create_usage_plan(name="fraudops-test")
        first = client.create_api_key(name="first", enabled=True, value="first-key-0123456789")
        client.create_usage_plan_key(usagePlanId=plan["id"], keyId=first["id"], keyType="API_KEY")
        settings = fast_settings(db_path=small_db, api_usage_plan_id=plan["id"], api_key_reload_seconds=30)
        now = [0.0]
        calls = {"n": 0}

        def counted() -> list[str]:
            calls["n"] += 1
            return load_api_keys(settings)

        ring = KeyRing(counted, min_reload_seconds=30, clock=lambda: now[0])
        loaded = train_local_model(settings)
        app = TestClient(create_app(settings, ModelProvider(settings, loader=lambda _: loaded), ring))
        post = lambda key: app.post("/predict", json=EXAMPLE_TRANSACTION, headers={"x-api-key": key}).status_code  # noqa: E731
        assert post("first-key-0123456789") == 200
        second = client.create_api_key(name="second", enabled=True, value="second-key-0123456789")
        client.create_usage_plan_key(usagePlanId=plan["id"], keyId=second["id"], keyType="API_KEY")
        assert post("second-key-0123456789") == 403  # the cold start's read is less than 30 s old
        for _ in range(50):
            assert post("guessed-key-0123456789") == 403
        assert calls["n"] == 1  # a flood of bad keys did not hammer the control plane
        now[0] = 31.0
        assert post("second-key-0123456789") == 200  # re-read on the unknown key, once the interval passed
        assert calls["n"] == 2


def test_a_failed_key_lookup_at_cold_start_is_retried(small_db: Path) -> None:
    from fraudops.api.keys import KeyRing

    settings = fast_settings(db_path=small_db)
    # The cold start's lookup fails (load_api_keys logs the failed source and returns what it could read:
    # nothing); the next one, after the interval, succeeds.
    answers: list[list[str]] = [[], ["late-key-0123456789"]]
    now = [0.0]

    def flaky() -> list[str]:
        return answers.pop(0)

    ring = KeyRing(flaky, min_reload_seconds=5, clock=lambda: now[0])
    loaded = train_local_model(settings)
    app = TestClient(create_app(settings, ModelProvider(settings, loader=lambda _: loaded), ring))
    assert (
        app.post("/predict", json=EXAMPLE_TRANSACTION, headers={"x-api-key": "late-key-0123456789"}).status_code == 503
    )
    now[0] = 6.0
    assert (
        app.post("/predict", json=EXAMPLE_TRANSACTION, headers={"x-api-key": "late-key-0123456789"}).status_code == 200
    )


def test_docs_work_behind_the_stage_prefix(small_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through API Gateway the page lives at /dev/docs: every URL it loads must resolve under /dev/."""
    from urllib.parse import urljoin

    from mangum import Mangum

    from tests.helpers.events import api_gateway_event, lambda_context

    settings = fast_settings(db_path=small_db, api_keys="k")
    app = create_app(settings, ModelProvider(settings, loader=lambda _: None), ["k"])
    handler = Mangum(app, lifespan="off")
    page = handler(api_gateway_event("GET", "/docs", stage="dev"), lambda_context())  # type: ignore[arg-type]
    assert page["statusCode"] == 200
    html = page["body"]
    base = "https://abc123.execute-api.us-east-1.amazonaws.com/dev/docs"
    for marker in ("openapi.json", "docs/assets/swagger-ui-bundle.js", "docs/assets/swagger-ui.css"):
        assert f"'{marker}'" in html or f'"{marker}"' in html, marker
        assert urljoin(base, marker).startswith("https://abc123.execute-api.us-east-1.amazonaws.com/dev/")
    spec = handler(api_gateway_event("GET", "/openapi.json", stage="dev"), lambda_context())  # type: ignore[arg-type]
    assert spec["statusCode"] == 200 and "/predict" in spec["body"]


def test_every_skipped_static_check_has_a_written_reason() -> None:
    reasons = (ROOT / ".ci" / "skipped-checks.md").read_text()
    checkov = re.findall(r"^\s*-\s*(CKV_\w+)", (ROOT / ".checkov.yaml").read_text(), re.MULTILINE)
    serverless = re.search(r"^SERVERLESS_RULES_SKIPPED := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert checkov and serverless
    inline = [  # `# checkov:skip=CKV_...: reason` in a Dockerfile skips for that file only
        check
        for dockerfile in ROOT.glob("**/Dockerfile")
        if ".venv" not in dockerfile.parts and "node_modules" not in dockerfile.parts
        for check in re.findall(r"^#\s*checkov:skip=(CKV_\w+)", dockerfile.read_text(), re.MULTILINE)
    ]
    skipped = checkov + inline + serverless.group(1).split(",")
    assert [check for check in skipped if f"| {check} |" not in reasons] == []
    documented = re.findall(r"^\| ((?:CKV|ES)\w+) \|", reasons, re.MULTILINE)
    assert sorted(documented) == sorted(skipped)  # nothing documented as skipped that is not
