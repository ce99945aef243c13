"""EMR Serverless entry point (the job's ``EntryPoint``, local:///opt/fraudops/spark_train.py in the image):
``fraudops.spark_training``'s command line, with the arguments the state machine passes."""

import sys

from fraudops.spark_training.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
