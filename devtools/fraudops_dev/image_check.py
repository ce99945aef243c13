"""`make image-check`: each Lambda image's packages, installed for the Lambda platform (CPython 3.12,
manylinux x86_64, as the AWS base image installs them), and each handler run in its own 3.12 process
that sees only those packages and a read-only copy of the code the Dockerfile copies, with HOME and
TMPDIR in one scratch folder whose size is reported, on a small end-to-end scenario (train, promote,
predict, monitor) against moto's S3 server on 127.0.0.1. No Docker needed.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fraudops_dev.emulation import REPO_ROOT

IMAGES = {
    "api": ["api_function"],
    "train": ["train_function", "promote_function", "monitor_function", "curate_function"],
}
PLATFORM = ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
            "--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.12",
            "--only-binary=:all:"]  # fmt: skip
CHILD = """
import json, sys, time, types
started = time.perf_counter()
module = __import__(sys.argv[1])
context = types.SimpleNamespace(function_name=sys.argv[1], aws_request_id="image-check", memory_limit_in_mb=3008,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:" + sys.argv[1],
    function_version="$LATEST", log_group_name="/aws/lambda/x", log_stream_name="x",
    get_remaining_time_in_millis=lambda: 900000)
result = module.handler(json.loads(sys.argv[2]), context)
heavy = sorted(m for m in ("xgboost", "scipy", "pandas", "mlflow", "sklearn") if m in sys.modules)
print("IMAGE-CHECK-RESULT " + json.dumps({"result": result, "seconds": time.perf_counter() - started,
                                          "heavy_modules": heavy}, default=str))
"""


def copies(image: str) -> list[tuple[list[str], str]]:
    """(sources, destination) of the Dockerfile's COPY lines for project files."""
    result = []
    for line in (REPO_ROOT / "functions" / image / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "/tmp/build" not in line:
            *sources, destination = line.split()[1:]
            result.append((sources, destination))
    return result


def stage(image: str, into: Path) -> Path:
    """${LAMBDA_TASK_ROOT} laid out as the Dockerfile lays it out."""
    for sources, destination in copies(image):
        target = into / destination.replace("${LAMBDA_TASK_ROOT}", "").strip("/")
        for source in sources:
            path = REPO_ROOT / source
            if path.is_dir():
                shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target / path.name)
    return into


def install(image: str, target: Path) -> None:
    """As the Dockerfile does: requirements.txt, then requirements-nodeps.txt (if any) with --no-deps."""
    for name, extra in (("requirements.txt", []), ("requirements-nodeps.txt", ["--no-deps"])):
        requirements = REPO_ROOT / "functions" / image / name
        if requirements.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                 "--target", str(target), "-c", str(REPO_ROOT / "constraints.txt"), "-r", str(requirements),
                 *extra, *PLATFORM],
                check=True,
            )  # fmt: skip


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def read_only(path: Path) -> None:
    for item in [path, *path.rglob("*")]:
        mode = item.stat().st_mode
        item.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def python312() -> str:
    candidates = sorted((Path.home() / ".pyenv" / "versions").glob("3.12*/bin/python3.12"))
    found = shutil.which("python3.12")
    for candidate in [*map(str, candidates), found]:
        if candidate and subprocess.run([candidate, "-c", "import sys"], capture_output=True).returncode == 0:
            return candidate
    raise SystemExit("image-check needs CPython 3.12 (pyenv install 3.12, or python3.12 on the PATH)")


def run_handler(
    python: str, code: Path, packages: Path, module: str, event: dict[str, Any], env: dict[str, str]
) -> dict[str, Any]:
    child_env = {**env, "PYTHONPATH": f"{code}{os.pathsep}{packages}", "PYTHONNOUSERSITE": "1",
                 "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    process = subprocess.run(
        [python, "-S", "-c", CHILD, module, json.dumps(event)], env=child_env, capture_output=True, text=True,
        timeout=900, cwd=code,
    )  # fmt: skip
    line = next((x for x in process.stdout.splitlines() if x.startswith("IMAGE-CHECK-RESULT ")), None)
    if process.returncode != 0 or line is None:
        raise SystemExit(f"{module} failed in its image:\n{process.stderr[-3000:]}")
    return dict(json.loads(line.removeprefix("IMAGE-CHECK-RESULT ")))


def main() -> int:
    import boto3

    from fraudops.api.schemas import EXAMPLE_TRANSACTION
    from fraudops.core.config import Settings
    from fraudops.lake import Lake
    from fraudops.lake.transactions import write_transaction_frames
    from fraudops_dev.datagen import GeneratorConfig, generate_frames
    from fraudops_dev.local import local_aws_environment, moto_s3_server

    python = python312()
    work = Path(tempfile.mkdtemp(prefix="fraudops-image-check-"))
    images: dict[str, dict[str, Path]] = {}
    for image in IMAGES:
        started = time.perf_counter()
        packages, code = work / image / "packages", work / image / "code"
        print(f"==> {image} image: installing its requirements for cp312 manylinux x86_64", flush=True)
        install(image, packages)
        stage(image, code)
        read_only(code)
        images[image] = {"packages": packages, "code": code}
        print(f"    {size_mb(packages):.0f} MB of packages, {size_mb(code):.1f} MB of code "
              f"({time.perf_counter() - started:.0f}s)", flush=True)  # fmt: skip

    with moto_s3_server() as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        for bucket in ("fraudops-models", "fraudops-data"):
            s3.create_bucket(Bucket=bucket)
        # one Iceberg catalog for the writer here and the functions in their images (AWS: the Glue catalog)
        catalog_uri = f"sqlite:///{work}/lake-catalog.db"
        lake = Settings(s3_endpoint_url=endpoint, lake_uri="s3://fraudops-data/lake", lake_catalog_uri=catalog_uri)
        write_transaction_frames(
            Lake(lake).transactions, generate_frames(GeneratorConfig(60_000, seed=7, fraud_rate=0.01))
        )
        scratch = work / "tmp"
        scratch.mkdir()
        env = {
            "PATH": "/usr/bin:/bin", "HOME": str(scratch), "TMPDIR": str(scratch), "LANG": "C.UTF-8",
            "MPLCONFIGDIR": str(scratch / "matplotlib"), "AWS_LAMBDA_FUNCTION_NAME": "image-check",
            **local_aws_environment(endpoint), "FRAUDOPS_STORAGE": "s3", "FRAUDOPS_MODEL_BUCKET": "fraudops-models",
            "FRAUDOPS_REGISTRY_S3_KEY": "registry/mlflow.db", "FRAUDOPS_LAKE_URI": "s3://fraudops-data/lake",
            "FRAUDOPS_LAKE_CATALOG_URI": catalog_uri,
            "FRAUDOPS_STATE_DIR": str(scratch / "fraudops"), "FRAUDOPS_N_ESTIMATORS": "60",
            "FRAUDOPS_PROMOTION_FLOOR": "0.3", "FRAUDOPS_API_KEYS": "image-check-key",
            "MLFLOW_ENABLE_ASYNC_LOGGING": "false", "GIT_PYTHON_REFRESH": "quiet",
            "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true",
        }  # fmt: skip
        train, api = images["train"], images["api"]
        steps: list[tuple[dict[str, Path], str, dict[str, Any]]] = [
            (train, "train_function", {"feature_set": "engineered"}),
            (train, "promote_function", {}),
            (api, "api_function", _predict_event("/predict", EXAMPLE_TRANSACTION)),
            # 100 rows: scored by XGBoost's C library, which the image carries without the xgboost package.
            (api, "api_function", _predict_event("/predict/batch", {"transactions": [EXAMPLE_TRANSACTION] * 100})),
            (train, "monitor_function", {}),
            (train, "curate_function", {}),
            (train, "promote_function", {"action": "pin"}),  # the batch state machine's first step
            (api, "batch_function", {}),  # one Map batch, with the model pinned by the step before
        ]
        pinned: dict[str, Any] = {}
        for paths, module, event in steps:
            if module == "batch_function":
                event = _batch_event(pinned["model"], EXAMPLE_TRANSACTION)
            result = run_handler(python, paths["code"], paths["packages"], module, event, env)
            summary = result["result"]
            if event == {"action": "pin"}:
                pinned = summary
            if module == "batch_function":
                assert (summary["scored"], summary["rejected"]) == (99, 1), summary
            if module in {"api_function", "batch_function"}:
                if module == "api_function":
                    assert summary["statusCode"] == 200, summary
                    summary = json.loads(summary["body"])
                if result["heavy_modules"]:
                    raise SystemExit(f"the API imported {result['heavy_modules']}: its image must not need them")
            print(f"    {module}: {json.dumps(summary, default=str)[:160]} ({result['seconds']:.1f}s, "
                  f"scratch {size_mb(scratch):.0f} MB)", flush=True)  # fmt: skip
    print("image-check: every handler ran in its image's package set on CPython 3.12")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _batch_event(model: dict[str, Any], transaction: dict[str, Any]) -> dict[str, Any]:
    """What the Distributed Map hands one child: 100 CSV rows (one bad), the pinned model, the output."""
    rows = [{k: str(v) for k, v in transaction.items()} for _ in range(100)]
    rows[7]["amount"] = "-1"
    items = [{"index": i, "row": row} for i, row in enumerate(rows)]
    output = "s3://fraudops-data/batch/results/image-check"
    return {"Items": items, "BatchInput": {"model": model, "format": "csv", "output": output}}


def _predict_event(path: str, body: Any) -> dict[str, Any]:
    sample = json.loads((REPO_ROOT / "tests" / "events" / "apiGatewayProxyEvent.json").read_text())
    headers = {**sample["headers"], "x-api-key": "image-check-key"}
    sample["requestContext"]["path"] = f"/prod{path}"
    sample |= {"path": path, "body": json.dumps(body), "headers": headers,
               "multiValueHeaders": {k: [v] for k, v in headers.items()}}  # fmt: skip
    return dict(sample)


if __name__ == "__main__":
    sys.exit(main())
