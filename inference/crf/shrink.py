"""How far the learned camera curve is trusted over plain sRGB.

The CRF network's estimate scatters around the true curve by a few hundredths (RMSE of the
inverse curve) whatever the curve is. On a plain-sRGB image (a render, a screenshot, a web
image, many phones) that scatter is all error, and on camera curves near sRGB the estimate
gains little. So the returned curve is ``srgb + w * (estimate - srgb)``: the weight ``w``
depends on how far the estimate sits from sRGB (``d``, the RMSE between the two inverse
curves), piecewise linear in ``log2 d`` between fixed knots and constant beyond them. Where
``w`` is 0 (an estimate inside the network's own noise around sRGB) the answer is sRGB exactly.

The weights are fitted on the training split by ``training/fit_crf_shrink.py`` and shipped as
``weights/crf_shrink.safetensors`` (sha256-checked like every weights file).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..errors import WeightsError
from ..weights import WEIGHTS_DIR

FILE_NAME = "crf_shrink.safetensors"
KNOTS = (-7.0, -6.0, -5.5, -5.0, -4.5, -4.0, -3.5, -3.0)  # log2 of the RMSE between estimate and sRGB
EXACT_BELOW = 0.02  # a weight this small returns sRGB exactly

_CACHE: dict[str, np.ndarray] = {}
_LOCK = threading.Lock()


def weight(distance: np.ndarray | float, knot_weights: np.ndarray) -> np.ndarray:
    """Trust ``w`` in the estimate for estimates at RMSE ``distance`` from sRGB."""
    x = np.log2(np.maximum(np.asarray(distance, np.float64), 1e-12))
    return np.interp(x, KNOTS, np.asarray(knot_weights, np.float64))


def _load_arrays(path: str | Path | None) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    from ..weights import verify_weights_file

    path = Path(path) if path is not None else WEIGHTS_DIR / FILE_NAME
    key = str(path.resolve())
    with _LOCK:
        if key not in _CACHE:
            verify_weights_file(path)
            arrays = load_file(str(path))
            knots, w = arrays.get("knots_log2_rmse"), arrays.get("weights")
            expected = arrays.get("expected_rmse")
            if knots is None or w is None or knots.shape != (len(KNOTS),) or w.shape != knots.shape \
                    or not np.allclose(knots, KNOTS) or not np.all(np.isfinite(w)) \
                    or (expected is not None and (expected.shape != knots.shape or not np.all(np.isfinite(expected))
                                                  or np.any(expected < 0))):
                raise WeightsError("not a camera-curve trust file for this version (knots or weights do not match)", path)
            _CACHE[key] = {"weights": w.astype(np.float64),
                           **({"expected_rmse": expected.astype(np.float64)} if expected is not None else {})}
        return _CACHE[key]


def load(path: str | Path | None = None) -> np.ndarray:
    """The verified knot weights (``(len(KNOTS),)``); raises :class:`WeightsError`."""
    return _load_arrays(path)["weights"]


def load_expected(path: str | Path | None = None) -> np.ndarray | None:
    """The returned curve's expected inverse-CRF RMSE at each knot (fitted on the training
    examples with the weights), or None for a file without it."""
    return _load_arrays(path).get("expected_rmse")


#: Expected RMSE at which the confidence reaches 0 (about the error of assuming sRGB for a film curve).
CONFIDENCE_ZERO_RMSE = 0.12


def confidence(distance: float, expected_rmse: np.ndarray, network_confidence: float) -> float:
    """Confidence in [0, 1] of a returned curve: ``1 - E(d) / CONFIDENCE_ZERO_RMSE`` (``E(d)`` the
    expected RMSE of curves whose estimate lay at ``distance`` from sRGB), times the network's own
    patch agreement and coverage to the power 1/4. On the training examples (group 5-fold CV)
    its rank correlation with the error is -0.29, against -0.14 for the network's alone."""
    e = float(weight(distance, expected_rmse))  # the same piecewise-linear interpolation in log2 d
    return float(np.clip(1.0 - e / CONFIDENCE_ZERO_RMSE, 0.0, 1.0) * max(0.0, min(1.0, network_confidence)) ** 0.25)


def apply(curves: np.ndarray, srgb: np.ndarray, knot_weights: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(curves shrunk toward srgb, w, d)`` for estimated inverse curves ``(C, 1024)``;
    ``d`` is measured on the gray axis (the channels' mean)."""
    d = float(np.sqrt(np.mean((curves.mean(axis=0) - srgb) ** 2)))
    w = float(weight(d, knot_weights))
    if w < EXACT_BELOW:
        return np.repeat(srgb[None], curves.shape[0], axis=0), 0.0, d
    return srgb + w * (curves - srgb), w, d
