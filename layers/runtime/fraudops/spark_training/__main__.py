"""``python -m fraudops.spark_training --input <manifest URI> --output <URI>``: the EMR Serverless job's
entry point (the job image runs it with spark-submit). Settings come from FRAUDOPS_* as everywhere."""

from __future__ import annotations

import argparse
import logging
import sys

from fraudops.core.config import Settings
from fraudops.model.features import FEATURE_SETS
from fraudops.spark_training.job import train_on_spark
from fraudops.spark_training.plan import read_input_manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fraudops.spark_training", description=__doc__)
    parser.add_argument("--input", required=True, help="input manifest (input.json) the plan step wrote")
    parser.add_argument("--output", required=True, help="where to write booster, spec and metrics")
    parser.add_argument("--feature-set", default="engineered", choices=list(FEATURE_SETS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from pyspark.sql import SparkSession

    settings = Settings()
    spark = SparkSession.builder.appName("fraudops-train").getOrCreate()  # EMR Serverless configures it
    try:
        train_on_spark(spark, read_input_manifest(settings, args.input), settings, args.output, args.feature_set)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
