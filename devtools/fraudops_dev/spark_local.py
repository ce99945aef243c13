"""``fraudops train --engine spark`` and the emulated EMR job: the same job on PySpark in local mode,
then the register step, in one process. Laptop tooling: it lives in devtools so the images (which copy
only ``layers/runtime/fraudops``) never carry it (issue 27 item 8).

The window is planned as in AWS (the committed files of the lake's training window, frozen in an input
manifest under the run's folder), whatever its size: ``--engine spark`` asks for Spark.
"""

from __future__ import annotations

from fraudops.core.config import Settings
from fraudops.spark_training.job import spark_session, train_on_spark
from fraudops.spark_training.plan import freeze_window, read_input_manifest, training_window
from fraudops.spark_training.register import register_spark_output
from fraudops.training.tracking import TrainingResult


def run_local_spark_training(
    settings: Settings,
    feature_set: str = "engineered",
    tags: dict[str, str] | None = None,
    snapshot_id: int | None = None,
) -> TrainingResult:
    """Train on PySpark local mode (``spark_workers`` workers) and register the version."""
    input_uri, output_uri = freeze_window(settings, training_window(settings, snapshot_id))
    window = read_input_manifest(settings, input_uri)  # what the EMR job reads
    with spark_session(settings) as spark:
        train_on_spark(spark, window, settings, output_uri, feature_set)
    return register_spark_output(settings, output_uri, tags)
