"""MLflow "models from code" entry point: MLflow runs this file to build the pyfunc model, so the
registered model carries no pickled Python object."""

import mlflow.models

from fraudops.model.pyfunc import FraudPyfunc

mlflow.models.set_model(FraudPyfunc())
