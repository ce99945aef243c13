"""XGBoost's own C library, called through ctypes, for the API image (which has no xgboost Python package
and no scipy: those cost ~130 MB and ~220 ms of cold start).

Why: the API scores single rows with the compiled trees (``compiled``), but a 1,000-row batch and the
batch-scoring Lambda need the booster's speed, and a model the compiled form cannot express still has to
be served. ``XGBoosterPredictFromDense`` is exactly what ``Booster.inplace_predict`` calls, so the
probabilities are the booster's, bit for bit. The library is found without importing xgboost: the
installed package's ``lib/libxgboost.so`` (the API image installs xgboost-cpu without its dependencies).
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from fraudops.core.errors import ModelLoadError

_LIBRARY_ENV = "FRAUDOPS_XGBOOST_LIBRARY"
_PREDICT_CONFIG = json.dumps(
    {"type": 0, "training": False, "iteration_begin": 0, "iteration_end": 0, "missing": float("nan"),
     "strict_shape": False, "cache_id": 0}
).encode()  # fmt: skip
# Contributions (TreeSHAP, exact: type 2) need a DMatrix: in-place prediction supports values and margins
# only ("Unsupported prediction type:2" from XGBoosterPredictFromDense).
_CONTRIBUTIONS_CONFIG = json.dumps(
    {"type": 2, "training": False, "iteration_begin": 0, "iteration_end": 0, "strict_shape": False}
).encode()
_MARGIN_CONFIG = json.dumps(
    {"type": 1, "training": False, "iteration_begin": 0, "iteration_end": 0, "strict_shape": False}
).encode()
_DMATRIX_CONFIG = json.dumps({"missing": float("nan"), "nthread": 1}).encode()
_lock = threading.Lock()
_library: ctypes.CDLL | None = None


class NativeLibraryMissing(ModelLoadError):
    """No libxgboost.so next to this code: the image was built without it."""


def library_path() -> Path:
    if os.environ.get(_LIBRARY_ENV):
        return Path(os.environ[_LIBRARY_ENV])
    spec = importlib.util.find_spec("xgboost")  # locates the package without importing it (or scipy)
    if spec is None or not spec.submodule_search_locations:
        raise NativeLibraryMissing("the XGBoost library is not installed (pip install --no-deps xgboost-cpu)")
    return Path(next(iter(spec.submodule_search_locations))) / "lib" / "libxgboost.so"


def _load() -> ctypes.CDLL:
    global _library
    with _lock:
        if _library is None:
            path = library_path()
            if not path.is_file():
                raise NativeLibraryMissing(f"the XGBoost library is missing: {path}")
            library = ctypes.cdll.LoadLibrary(str(path))
            library.XGBGetLastError.restype = ctypes.c_char_p
            _library = library
        return _library


def _check(library: ctypes.CDLL, code: int) -> None:
    if code != 0:
        raise ModelLoadError(f"XGBoost: {library.XGBGetLastError().decode(errors='replace').splitlines()[0]}")


class NativeBooster:
    """A loaded booster; ``predict`` is thread-safe (XGBoost's in-place prediction is)."""

    def __init__(self, model_bytes: bytes, n_threads: int = 1) -> None:
        self._library = _load()
        self._handle = ctypes.c_void_p()
        _check(self._library, self._library.XGBoosterCreate(None, ctypes.c_uint64(0), ctypes.byref(self._handle)))
        buffer = ctypes.create_string_buffer(model_bytes, len(model_bytes))
        _check(
            self._library,
            self._library.XGBoosterLoadModelFromBuffer(self._handle, buffer, ctypes.c_uint64(len(model_bytes))),
        )
        _check(self._library, self._library.XGBoosterSetParam(self._handle, b"nthread", str(n_threads).encode()))
        features = ctypes.c_uint64()
        _check(self._library, self._library.XGBoosterGetNumFeature(self._handle, ctypes.byref(features)))
        self.num_features = int(features.value)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Fraud probability (float32, as XGBoost computes it) per row of a float32 feature matrix."""
        _kept, interface = self._interface(matrix)  # ``_kept`` keeps the buffer alive during the call
        shape = ctypes.POINTER(ctypes.c_uint64)()
        dims = ctypes.c_uint64()
        result = ctypes.POINTER(ctypes.c_float)()
        _check(
            self._library,
            self._library.XGBoosterPredictFromDense(
                self._handle, interface, _PREDICT_CONFIG, None, ctypes.byref(shape), ctypes.byref(dims),
                ctypes.byref(result),
            ),
        )  # fmt: skip
        rows = int(np.prod([shape[i] for i in range(dims.value)])) if dims.value else 0
        # XGBoost owns the buffer until the next call on this thread: copy it out.
        return np.ctypeslib.as_array(result, shape=(rows,)).copy() if rows else np.zeros(0, np.float32)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """TreeSHAP contributions, exact, as ``Booster.predict(pred_contribs=True)``: rows x (features + 1),
        the last column the bias; each row sums to the row's margin (log-odds)."""
        return self._from_dmatrix(matrix, _CONTRIBUTIONS_CONFIG).reshape(len(matrix), self.num_features + 1)

    def margins(self, matrix: np.ndarray) -> np.ndarray:
        """The untransformed score (log-odds) per row: what contributions add up to."""
        return self._from_dmatrix(matrix, _MARGIN_CONFIG)

    def model_json(self) -> dict[str, Any]:
        """The model as XGBoost's JSON document (trees with covers: what ``decisions.treeshap`` tables)."""
        length = ctypes.c_uint64()
        raw = ctypes.POINTER(ctypes.c_char)()
        _check(
            self._library,
            self._library.XGBoosterSaveModelToBuffer(
                self._handle, b'{"format": "json"}', ctypes.byref(length), ctypes.byref(raw)
            ),
        )
        document: dict[str, Any] = json.loads(ctypes.string_at(raw, length.value))
        return document

    def _interface(self, matrix: np.ndarray) -> tuple[np.ndarray, bytes]:
        data = np.ascontiguousarray(matrix, dtype=np.float32)
        if data.ndim != 2 or data.shape[1] != self.num_features:
            raise ValueError(f"expected a rows x {self.num_features} matrix, got shape {data.shape}")
        interface = json.dumps(
            {"data": [data.ctypes.data, True], "shape": list(data.shape), "typestr": "<f4", "version": 3}
        ).encode()
        return data, interface

    def _from_dmatrix(self, matrix: np.ndarray, config: bytes) -> np.ndarray:
        _kept, interface = self._interface(matrix)  # ``_kept`` keeps the buffer alive during the calls
        dmatrix = ctypes.c_void_p()
        _check(self._library, self._library.XGDMatrixCreateFromDense(interface, _DMATRIX_CONFIG, ctypes.byref(dmatrix)))
        try:
            shape = ctypes.POINTER(ctypes.c_uint64)()
            dims = ctypes.c_uint64()
            result = ctypes.POINTER(ctypes.c_float)()
            _check(
                self._library,
                self._library.XGBoosterPredictFromDMatrix(
                    self._handle, dmatrix, config, ctypes.byref(shape), ctypes.byref(dims), ctypes.byref(result)
                ),
            )
            size = int(np.prod([shape[i] for i in range(dims.value)])) if dims.value else 0
            return np.ctypeslib.as_array(result, shape=(size,)).copy() if size else np.zeros(0, np.float32)
        finally:
            self._library.XGDMatrixFree(dmatrix)

    def __del__(self) -> None:
        handle, library = getattr(self, "_handle", None), getattr(self, "_library", None)
        if handle is not None and library is not None and handle.value:
            library.XGBoosterFree(handle)
