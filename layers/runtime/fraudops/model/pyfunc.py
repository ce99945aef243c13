"""The registered model's MLflow pyfunc flavour: raw transactions in, fraud probability out.

It wraps the same ``FraudModel`` the API serves, so ``mlflow.pyfunc.load_model("models:/...")`` gives
the same numbers as the API (a test checks this to 1e-6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from fraudops.model.fraud_model import BOOSTER_ARTIFACT, SPEC_ARTIFACT, FraudModel


class FraudPyfunc(PythonModel):
    def load_context(self, context: Any) -> None:
        directory = Path(context.artifacts[BOOSTER_ARTIFACT]).parent
        assert Path(context.artifacts[SPEC_ARTIFACT]).parent == directory
        self.model = FraudModel.from_dir(directory, n_threads=0)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        columns = {name: model_input[name].to_numpy() for name in self.model.spec.raw_columns}
        probability = self.model.predict_proba(columns)
        return pd.DataFrame(
            {
                "probability": probability,
                "prediction": (probability >= self.model.threshold).astype(np.float64),
            }
        )
