"""All configuration in one place: environment variables (prefix ``FRAUDOPS_``) with typed defaults.

The defaults are the embedded local setup: everything on disk under ``.fraudops/`` (MLflow's SQLite
registry, artifacts and the serving manifest in a folder), so it survives restarts. ``FRAUDOPS_STORAGE=s3``
keeps artifacts in S3 instead, as in AWS, where the template sets the same variables.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob the pipeline has. Field docs end up in docs/configuration.md's table."""

    # An empty variable counts as unset (sam local passes declared-but-empty variables as "").
    model_config = SettingsConfigDict(env_prefix="FRAUDOPS_", extra="ignore", env_ignore_empty=True)

    # Data
    db_path: Path = Field(
        Path("data/fraud.db"), description="A SQLite file of transactions: `fraudops import`/`export`'s default."
    )
    state_dir: Path = Field(Path(".fraudops"), description="Local working folder (tracking DB, logs, pids).")
    lake_uri: str | None = Field(
        None,
        description="Root of the lake (Parquet tables transactions, decisions, labels): s3://bucket/prefix in "
        "AWS (the template sets the data bucket's lake/), a folder locally. Unset: <state_dir>/lake. It is "
        "the Iceberg warehouse: each table lives at <lake root>/<table>.",
    )
    lake_catalog: Literal["sql", "glue"] = Field(
        "sql",
        description="The lake's Iceberg catalog: 'sql' (pyiceberg's SQL catalog, a SQLite file locally) or "
        "'glue' (the Glue Data Catalog; the template sets it in AWS, where Athena and EMR read the same tables).",
    )
    lake_catalog_uri: str | None = Field(
        None,
        description="The SQL catalog's database URI. Unset: sqlite:///<lake folder>/catalog.db for a local "
        "lake, sqlite:///<state_dir>/lake/catalog.db for a lake in S3.",
    )
    lake_snapshot_retention_days: float = Field(
        30.0,
        ge=0,
        description="Iceberg snapshots of the lake's tables older than this expire (the curation schedule's "
        "maintenance step); time travel and `fraudops train --snapshot` reach back this far.",
    )
    lake_database: str = Field(
        "fraudops",
        description="The Iceberg namespace of the lake's tables: the Glue database in AWS (the template sets it).",
    )
    train_window_days: int = Field(
        0, ge=0, description="Train on the newest N days (partitions) of the transactions table; 0 = all of it."
    )
    curation_settle_minutes: float = Field(
        20.0,
        ge=0,
        description="A capture hour counts as complete this long after it ends (Firehose buffers up to 900 s).",
    )
    label_maturity_days: float = Field(
        30.0,
        ge=0,
        description="A decision with no fraud label this long after it was made is curated as isFraud=0; "
        "before that it is pending (not trained on, not in the holdout, not in realized metrics).",
    )

    # Entity aggregates (docs/aggregates.md)
    aggregate_store: Literal["embedded", "dynamodb", "off"] = Field(
        "embedded",
        description="Where the API and batch scoring keep per-account counters: 'embedded' (a SQLite file, "
        "aggregate_db_path; no server), 'dynamodb' (aggregate_table; the template sets it in AWS) or 'off' "
        "(nothing counted; a model trained with aggregates then sees them as missing).",
    )
    aggregate_table: str | None = Field(
        None, description="The DynamoDB table of entity aggregates (the template sets it)."
    )
    aggregate_db_path: Path | None = Field(
        None, description="The embedded store's SQLite file. Unset: <state_dir>/aggregates.db."
    )
    aggregate_ttl_days: float = Field(
        8.0,
        gt=7.0,
        description="DynamoDB TTL of an aggregate item after its last write (longer than the 7-day lookback).",
    )
    dynamodb_endpoint_url: str | None = Field(
        None, description="DynamoDB endpoint; the moto server (http://127.0.0.1:5000) locally, unset in AWS."
    )

    # Store: MLflow tracking/registry + artifacts
    storage: Literal["local", "s3"] = Field(
        "local",
        description="Where artifacts and the serving manifest live: 'local' (<state_dir>/artifacts, the "
        "default; survives restarts) or 's3' (the model bucket; the template sets it in AWS).",
    )
    aws: bool = Field(
        False,
        description="Allow real AWS when no S3 endpoint is set (the CLI's --aws). Without it, a laptop run "
        "never falls through to the shell's AWS credentials. Implied inside Lambda.",
    )
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI. Unset: sqlite:///<state_dir>/mlflow.db (or the S3-synced registry "
        "when registry_s3_key is set). Point it at an existing MLflow server to use that instead.",
    )
    registry_s3_key: str | None = Field(
        None,
        description="When set, the MLflow SQLite registry lives as this object in the model bucket and is "
        "updated with S3 conditional writes (the serverless default in AWS).",
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint; set to the moto server (http://127.0.0.1:5000) locally, unset in AWS."
    )
    aws_region: str = Field("us-east-1", description="AWS region for S3 and API Gateway clients.")
    model_bucket: str = Field("fraudops-models", description="Bucket for MLflow artifacts and the registry.")
    artifact_prefix: str = Field("mlflow", description="Key prefix of MLflow artifacts in the model bucket.")
    experiment_name: str = Field("fraudops", description="MLflow experiment for training runs.")
    model_name: str = Field("fraud-detector", description="Registered model name.")
    production_alias: str = Field("production", description="Registry alias that marks the served model.")

    # Training
    seed: int = Field(42, description="Seed for data generation and training.")
    holdout_fraction: float = Field(0.2, gt=0, lt=0.5, description="Latest steps held out for evaluation.")
    validation_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="Steps before the holdout used for early stopping and the threshold."
    )
    n_estimators: int = Field(400, ge=1, description="Upper bound on boosting rounds (early stopping picks).")
    max_depth: int = Field(6, ge=1, le=16, description="XGBoost max_depth.")
    learning_rate: float = Field(0.1, gt=0, le=1, description="XGBoost eta.")
    early_stopping_rounds: int = Field(30, ge=1, description="Rounds without validation AUPRC gain.")
    n_threads: int = Field(0, ge=0, description="XGBoost threads; 0 = all cores.")

    # Training past one Lambda (Spark: EMR Serverless in AWS, PySpark local mode on a laptop)
    lambda_training_max_rows: int = Field(
        9_800_000,
        ge=0,
        description="Largest training window (rows) the train Lambda takes; above it the retrain state machine "
        "trains on Spark (EMR Serverless). docs/scaling.md: 9.8M rows fit the default 6,144 MB, ~17M 10,240 MB.",
    )
    spark_output_uri: str | None = Field(
        None,
        description="Where Spark training jobs write booster, spec and metrics for the register step "
        "(s3://<data bucket>/spark-training in AWS). Unset: <state_dir>/spark-training.",
    )
    spark_workers: int = Field(
        2, ge=1, description="XGBoost workers of a Spark training (num_workers; local mode uses local[N])."
    )
    spark_driver_memory: str = Field("2g", description="Local mode: the Spark driver JVM's heap (spark.driver.memory).")

    # Promotion
    promotion_margin: float = Field(
        0.002,
        ge=0,
        description="The lower confidence bound of the candidate's AUPRC gain must reach this.",
    )
    promotion_confidence: float = Field(
        0.95, gt=0.5, lt=1, description="One-sided confidence of the bootstrap lower bound on the AUPRC gain."
    )
    promotion_bootstrap_resamples: int = Field(
        200, ge=20, le=10_000, description="Paired-bootstrap resamples of the holdout for the AUPRC gain."
    )
    promotion_floor: float = Field(0.5, ge=0, le=1, description="Minimum AUPRC for the first model to be promoted.")
    guardrail_tolerance: float = Field(
        0.02, ge=0, description="Largest allowed drop in ROC AUC and recall@1%FPR versus Production."
    )

    # Serving
    api_keys: SecretStr | None = Field(
        None, description="Comma-separated API keys the app accepts (x-api-key). Unset: every call is 401/503."
    )
    api_keys_ssm_parameter: str | None = Field(
        None, description="SSM SecureString parameter holding comma-separated keys (re-read on an unknown key)."
    )
    api_usage_plan_id: str | None = Field(
        None, description="API Gateway usage plan (its id; the template sets it) whose enabled keys the app accepts."
    )
    api_usage_plan_name: str | None = Field(
        None,
        description="The same by name, searched account-wide (use the id when you can).",
    )
    api_key_reload_seconds: float = Field(
        30.0, ge=0, description="An unknown key re-reads the SSM/usage-plan keys at most this often."
    )
    model_refresh_seconds: float = Field(
        60.0, ge=0, description="How stale the served model may be: the alias is re-checked this often."
    )
    capture: bool = Field(
        True, description="Capture every decision for the monitor (a log line in AWS, a local file on a laptop)."
    )
    max_batch_size: int = Field(1000, ge=1, description="Largest /predict/batch request.")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest request body accepted (413 above).")
    batch_booster_threads: int = Field(
        0,
        ge=0,
        description="Batch scoring: XGBoost threads per process (0: all cores; the local runner uses 1 per worker).",
    )
    # Decisions (the policy itself is published data: `fraudops policy publish`)
    top_reasons: int = Field(
        3, ge=1, le=20, description="Reasons given with a review/block outcome (or ?explain=true)."
    )
    review_cost: float = Field(
        20.0, ge=0, description="Cost model: what one review (an analyst's alert) costs, in the data's currency."
    )
    friction_cost: float = Field(
        200.0, ge=0, description="Cost model: what blocking one legitimate payment costs (friction, churn)."
    )
    alert_budget_per_1000: float = Field(
        10.0,
        gt=0,
        le=1000,
        description="The alert budget: most transactions per 1,000 (reviews and blocks) the bands training "
        "chooses may flag; 1000 = no budget. docs/decisions.md says why 10.",
    )
    alert_budget_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Share of the alert budget the bands may flag on validation; the rest is room for later "
        "traffic, which flags more (docs/decisions.md: a cut at the full budget flagged 11.5-15.6 per 1,000 next).",
    )
    min_validation_frauds: int = Field(
        100,
        ge=0,
        description="Fewest validation frauds for bands chosen by savings; below it, review the top of the "
        "validation scores within the budget and block nothing. docs/decisions.md says why 100.",
    )
    # Monitoring
    monitor_window_minutes: int = Field(
        60,
        ge=1,
        description="The window a monitor run covers when no earlier window exists; later runs start where "
        "the last one ended, so consecutive runs cover time once, without gaps.",
    )
    capture_delivery_delay_seconds: int | None = Field(
        None,
        ge=0,
        description="How long a capture record may take to reach the store: a window ends this long before "
        "the run and its neighbouring hour prefixes are read. Unset: 600 in AWS (Firehose buffers up to "
        "300 s), 0 locally (files are written during the request).",
    )
    monitor_min_records: int = Field(
        500,
        ge=1,
        description="Fewest decisions of a model version in a window to judge its drift (PSI) and flagged rate; "
        "below it the report says how many there were instead. With decile bins, PSI from n decisions of an "
        "unchanged distribution is about 9/n: 0.02 at 500, 0.09 (near 'watch') at 100.",
    )
    monitor_min_labeled: int = Field(
        50,
        ge=1,
        description="Fewest settled decisions (a fraud label, or no fraud label after the maturity period) to "
        "report realized precision, recall and AUPRC; the go-live figures on confirmed frauds need none.",
    )
    drift_windows: int = Field(
        2,
        ge=1,
        description="Consecutive, non-overlapping monitor windows at the act level that start a retraining "
        "(a window that overlaps the previous one is reported but never counted).",
    )
    retrain_cooldown_hours: float = Field(
        24.0, ge=0, description="At least this long between two drift-triggered retrainings."
    )
    retrain_state_machine_arn: str | None = Field(
        None, description="The retrain state machine the monitor starts on drift (the template sets it)."
    )
    api_host: str = Field("127.0.0.1", description="Bind address of the local API server.")
    api_port: int = Field(8000, description="Port of the local API server.")
    s3_port: int = Field(5000, description="Port of the local moto S3 server.")
    mlflow_ui_port: int = Field(5001, description="Port of the local MLflow UI.")
    stack_ready_timeout_seconds: float = Field(
        180.0,
        gt=0,
        description="`make up`: how long each service may take to answer its health URL before it is stopped "
        "(the MLflow UI's imports take over 60 s on a loaded 2-core machine).",
    )

    @field_validator("artifact_prefix")
    @classmethod
    def _strip_slashes(cls, value: str) -> str:
        return value.strip("/")

    @property
    def lake_root_uri(self) -> str:
        """``lake_uri``, or the local folder ``<state_dir>/lake`` as a plain absolute path."""
        return self.lake_uri.rstrip("/") if self.lake_uri else str((self.state_dir / "lake").resolve())

    @property
    def lake_catalog_database_uri(self) -> str:
        """``lake_catalog_uri``, or a SQLite file beside a local lake (in the state dir for a lake in S3)."""
        if self.lake_catalog_uri:
            return self.lake_catalog_uri
        root = self.lake_root_uri
        local = "://" not in root or root.startswith("file://")
        folder = Path(root.removeprefix("file://")).resolve() if local else (self.state_dir / "lake").resolve()
        return f"sqlite:///{folder}/catalog.db"

    @property
    def aggregate_db_file(self) -> Path:
        return (self.aggregate_db_path or self.state_dir / "aggregates.db").resolve()

    @property
    def spark_output_root(self) -> str:
        if self.spark_output_uri:
            return self.spark_output_uri.rstrip("/")
        return str((self.state_dir / "spark-training").resolve())

    @property
    def local_artifact_dir(self) -> Path:
        return (self.state_dir / "artifacts").resolve()

    @property
    def artifact_root(self) -> str:
        """Where MLflow puts a new experiment's artifacts."""
        if self.storage == "s3":
            return f"s3://{self.model_bucket}/{self.artifact_prefix}"
        return self.local_artifact_dir.as_uri()

    def api_key_values(self) -> list[str]:
        if self.api_keys is None:
            return []
        return [key.strip() for key in self.api_keys.get_secret_value().split(",") if key.strip()]


# FRAUDOPS_* variables that are read directly, not settings (tooling and tests).
OTHER_VARIABLES = frozenset(
    {"FRAUDOPS_ACTOR", "FRAUDOPS_XGBOOST_LIBRARY", "FRAUDOPS_AUDIT_REQUIRED", "FRAUDOPS_SOAK_SECONDS"}
)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """One warning per ``FRAUDOPS_*`` variable nothing reads, naming the near match: a misspelt
    setting is otherwise silently ignored (``extra="ignore"``) and its default applies."""
    environ = os.environ if environ is None else environ
    known = {"FRAUDOPS_" + name.upper() for name in Settings.model_fields} | OTHER_VARIABLES
    warnings = []
    for name in sorted(environ):
        if not name.upper().startswith("FRAUDOPS_") or name.upper() in known:
            continue
        # Compared without the shared prefix, which would make every name look alike.
        near = difflib.get_close_matches(name.upper()[9:], sorted(k[9:] for k in known), n=1, cutoff=0.6)
        hint = f"; did you mean FRAUDOPS_{near[0]}?" if near else " (see docs/configuration.md's configuration table)"
        warnings.append(f"{name} is not a fraudops setting and is ignored{hint}")
    return warnings


def running_in_lambda() -> bool:
    return "AWS_LAMBDA_FUNCTION_NAME" in os.environ


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process (a Lambda container reads its environment once); a FRAUDOPS_*
    variable that no setting reads is logged as a warning with its near match."""
    for warning in unknown_variables():
        logging.getLogger("fraudops.config").warning(warning)
    return Settings()
