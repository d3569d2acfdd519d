"""The camera-curve step (Estimate CRF, Linearize). Never imports bpy.

* ``curves``: inverse camera curves (:class:`InverseCRF`, 1024 samples per channel),
  parametric curves, curve lookup (``linearize`` / ``apply_crf``), the DoRF data and the
  PCA basis. Numpy only; its names are this package's API (``crf.InverseCRF``,
  ``crf.linearize``, ...).
* ``network``: the learned curve estimator (``estimate_crf_learned``) and its weights (torch).
* ``dequantize``: the pixel work around the curve: dequantization and the saturation mask (torch).
"""

from .curves import (
    DORF_SPLIT_SEED,
    DORF_TEST_COUNT,
    GRID,
    N_SAMPLES,
    PCA_BASIS_FILE,
    InverseCRF,
    apply_crf,
    build_pca_basis,
    crf_rmse,
    dorf_split,
    fit_inverse_crf,
    from_samples,
    gamma_inverse,
    linear_inverse,
    linear_to_srgb,
    linearize,
    load_dorf,
    load_pca_basis,
    make_monotone,
    parametric_inverse,
    srgb_inverse,
    srgb_to_linear,
)

__all__ = [
    "DORF_SPLIT_SEED", "DORF_TEST_COUNT", "GRID", "N_SAMPLES", "PCA_BASIS_FILE", "InverseCRF", "apply_crf",
    "build_pca_basis", "crf_rmse", "dorf_split", "fit_inverse_crf", "from_samples", "gamma_inverse",
    "linear_inverse", "linear_to_srgb", "linearize", "load_dorf", "load_pca_basis", "make_monotone",
    "parametric_inverse", "srgb_inverse", "srgb_to_linear",
]
