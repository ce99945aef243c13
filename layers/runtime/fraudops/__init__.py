"""fraudops: the runtime package every Lambda image carries. Its top level is the architecture, one family
per subpackage, listed in import order (a family imports only families above it in this list; checked by
``tests/unit/test_architecture.py``; ``docs/architecture.md`` draws the paths between them):

- ``core``: settings, errors, the PaySim schema, crash-safe files (imports nothing else of fraudops);
- ``aggregates``: what each account did before (velocity), declared once, offline and online alike;
- ``model``: the feature definition, a model's files and metrics, ``FraudModel``;
- ``store``: S3, blobs, the MLflow registry session, the serving manifest;
- ``monitoring``: decision capture, late labels, drift profiles, the report page;
- ``decisions``: the policy (bands, rules, lists), its store, reasons, money;
- ``serving``: manifest -> ``ServedModel`` -> a decision (compiled trees, C library, TreeSHAP);
- ``lake``: the Parquet lake (transactions, decisions, labels) and curation;
- ``training``: the split, XGBoost, one MLflow run and a registered version;
- ``production``: the promotion rule, Production's history and changes, the retraining lease;
- ``spark_training``: training past one Lambda (EMR Serverless; PySpark locally);
- ``stages``: what each Lambda runs: train, promote, rollback, monitor, backtest, and their inputs;
- ``api``: FastAPI (Mangum in Lambda), ``POST /predict`` and friends;
- ``batch``: one batch of the batch-scoring Distributed Map.
"""
