"""Gradient-boosted regression trees as plain arrays: exported once, evaluated with numpy.

The energy estimator is trained with scikit-learn's ``HistGradientBoostingRegressor`` (a
training-only dependency); the shipped model is its trees flattened into arrays, so
inference needs neither scikit-learn nor pickles.

Layout (all trees concatenated; a node's children are indices into the same arrays):
``feature`` int32, ``threshold`` float64, ``left`` / ``right`` int32, ``leaf`` uint8,
``missing_left`` uint8, ``value`` float64 (leaf output, already multiplied by the learning
rate), ``roots`` int32 (first node of each tree) and ``baseline`` float64 (shape (1,)).
"""

from __future__ import annotations

import numpy as np

TREE_KEYS = ("feature", "threshold", "left", "right", "leaf", "missing_left", "value", "roots", "baseline")


def predict(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Sum of the trees' outputs for each row of ``x`` ((N, F) float) -> (N,) float64."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, F), got shape {x.shape}")
    feature, threshold = arrays["feature"], arrays["threshold"]
    left, right = arrays["left"], arrays["right"]
    leaf, missing_left, value = arrays["leaf"].astype(bool), arrays["missing_left"].astype(bool), arrays["value"]
    out = np.full(len(x), float(arrays["baseline"][0]))
    if len(x) == 0:
        return out
    rows = np.arange(len(x))
    for root in arrays["roots"]:
        node = np.full(len(x), root, dtype=np.int64)
        active = ~leaf[node]
        while active.any():
            n = node[active]
            v = x[rows[active], feature[n]]
            go_left = np.where(np.isnan(v), missing_left[n], v <= threshold[n])
            node[active] = np.where(go_left, left[n], right[n])
            active = ~leaf[node]
        out += value[node]
    return out


def export_sklearn(model) -> dict[str, np.ndarray]:
    """Flatten a fitted ``HistGradientBoostingRegressor`` (single output) into :data:`TREE_KEYS`."""
    parts = {k: [] for k in ("feature", "threshold", "left", "right", "leaf", "missing_left", "value")}
    roots = []
    offset = 0
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        n = len(nodes)
        roots.append(offset)
        parts["feature"].append(nodes["feature_idx"].astype(np.int32))
        parts["threshold"].append(nodes["num_threshold"].astype(np.float64))
        parts["left"].append((nodes["left"] + offset).astype(np.int32))
        parts["right"].append((nodes["right"] + offset).astype(np.int32))
        parts["leaf"].append(nodes["is_leaf"].astype(np.uint8))
        parts["missing_left"].append(nodes["missing_go_to_left"].astype(np.uint8))
        parts["value"].append(nodes["value"].astype(np.float64))
        if np.any(nodes["is_categorical"]):
            raise ValueError("categorical splits are not supported")
        offset += n
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["roots"] = np.asarray(roots, dtype=np.int32)
    out["baseline"] = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(1)
    return out
