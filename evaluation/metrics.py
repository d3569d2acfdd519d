"""Metrics for judging a reconstructed HDR image against a linear reference.

Every metric here compares *relative* radiance: a single-image reconstruction
knows the scene only up to one global factor, so each metric first aligns the
prediction with :func:`align_scale` (or takes an explicit ``scale`` computed
once by the caller and shared by all metrics of one sample, which is what the
evaluation harness does).

Conventions shared by all functions:

* Images are float arrays HxWx3 (linear RGB, Rec.709 primaries), HDR values
  unbounded; they are converted to float64 internally.
* Luminance is Rec.709 ``Y = 0.2126 R + 0.7152 G + 0.0722 B``.
* An empty selection (mask with no pixels, no valid pixels) gives ``nan``;
  the harness reports it as "n/a".
* Equirectangular panoramas (width == 2 * height) are weighted by solid angle
  where a metric integrates over the sphere; flat images use uniform weights.

This module holds the pixel metrics (alignment, log error, PU21, camera curves); the
lighting metrics (irradiance, clipped energy, panorama geometry) are in :mod:`.lighting`.
"""

from __future__ import annotations

import math

import numpy as np

REC709_LUMA = np.array([0.2126, 0.7152, 0.0722])

#: PU21 banding+glare parameters (Mantiuk & Azimi 2021), see docs/REFERENCES.md.
PU21_PARAMS = (
    0.353487901,
    0.3734658629,
    8.277049286e-05,
    0.9062562627,
    0.09150303166,
    0.9099517204,
    596.3148142,
)
PU21_L_MIN = 0.005  # cd/m^2, lower end of the PU21 fit
PU21_L_MAX = 10000.0  # cd/m^2, upper end of the PU21 fit
#: Luminance (cd/m^2) the aligned reference's median luminance is mapped to before PU21.
PU21_REFERENCE_MEDIAN_CDM2 = 50.0
#: PSNR cap for identical images (dB); a finite number keeps means and JSON usable.
PSNR_CAP_DB = 100.0

#: Stops below the reference's median luminance where log errors stop counting.
LOG_FLOOR_STOPS = 10.0
#: Fraction of darkest / brightest reference pixels left out of the alignment.
ALIGN_TAIL_FRACTION = 0.05


def _as_rgb64(img: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{name} must be HxWx3, got shape {arr.shape}")
    return arr


def _check_same_shape(pred: np.ndarray, ref: np.ndarray) -> None:
    if pred.shape != ref.shape:
        raise ValueError(f"pred and ref shapes differ: {pred.shape} vs {ref.shape}")


def _as_mask(mask: np.ndarray | None, shape: tuple[int, int], name: str) -> np.ndarray:
    if mask is None:
        return np.ones(shape, dtype=bool)
    m = np.asarray(mask)
    if m.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {m.shape}")
    return m.astype(bool)


def luminance(img: np.ndarray) -> np.ndarray:
    """Rec.709 luminance of an HxWx3 linear image -> HxW float64 (same units as the input)."""
    return np.asarray(img, dtype=np.float64) @ REC709_LUMA


def align_scale(pred: np.ndarray, ref: np.ndarray, valid_mask: np.ndarray | None = None) -> float:
    """Global factor ``s`` so that ``s * pred`` best matches ``ref`` in log luminance.

    ``s = exp(median(log Y_ref - log Y_pred))`` over the *well-exposed valid*
    pixels: those inside ``valid_mask`` (HxW bool; the harness passes "not
    clipped in the LDR input"), with both luminances finite and > 0, and whose
    reference luminance lies between the 5th and 95th percentile of the
    remaining reference luminances (the darkest pixels are dominated by
    quantisation, the brightest are the uncertain highlights). The median makes
    the factor robust to local errors.

    Args:
        pred: HxWx3 linear prediction (any global scale).
        ref: HxWx3 linear reference.
        valid_mask: optional HxW bool, True where alignment may look.

    Returns:
        The scale (float > 0), or ``nan`` when no pixel qualifies.
    """
    pred = _as_rgb64(pred, "pred")
    ref = _as_rgb64(ref, "ref")
    _check_same_shape(pred, ref)
    mask = _as_mask(valid_mask, ref.shape[:2], "valid_mask")
    yp = luminance(pred)
    yr = luminance(ref)
    ok = mask & np.isfinite(yp) & np.isfinite(yr) & (yp > 0) & (yr > 0)
    if not ok.any():
        return float("nan")
    lo, hi = np.quantile(yr[ok], [ALIGN_TAIL_FRACTION, 1.0 - ALIGN_TAIL_FRACTION])
    well = ok & (yr >= lo) & (yr <= hi)
    if not well.any():
        well = ok
    return float(np.exp(np.median(np.log(yr[well]) - np.log(yp[well]))))


def _resolve_scale(pred, ref, scale, align_mask) -> float:
    return align_scale(pred, ref, align_mask) if scale is None else float(scale)


def si_log2_rmse(
    pred: np.ndarray,
    ref: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    scale: float | None = None,
    align_mask: np.ndarray | None = None,
) -> float:
    """Scale-invariant RMSE of log2 luminance, in stops.

    The prediction is multiplied by ``scale`` (default: ``align_scale(pred, ref,
    align_mask)``, computed over the *whole* image so the error inside a small
    ``mask`` still sees absolute mistakes such as a sun that is too dim). Both
    luminances are floored at ``eps = 2**-10 * median(Y_ref > 0)`` before the
    log: differences more than 10 stops below the median are below what an
    8-bit input encodes, and without a floor a single black pixel would
    dominate the mean.

    Args:
        pred, ref: HxWx3 linear images.
        mask: HxW bool, pixels to score (default all).
        scale: alignment factor for ``pred``; ``None`` computes it.
        align_mask: HxW bool passed to :func:`align_scale` when ``scale`` is None.

    Returns:
        RMSE in stops (>= 0), ``nan`` for an empty mask or failed alignment.
    """
    pred = _as_rgb64(pred, "pred")
    ref = _as_rgb64(ref, "ref")
    _check_same_shape(pred, ref)
    m = _as_mask(mask, ref.shape[:2], "mask")
    s = _resolve_scale(pred, ref, scale, align_mask)
    yr = luminance(ref)
    yp = luminance(pred) * s
    sel = m & np.isfinite(yr) & np.isfinite(yp)
    positive = yr[np.isfinite(yr) & (yr > 0)]
    if not sel.any() or not np.isfinite(s) or positive.size == 0:
        return float("nan")
    eps = np.median(positive) * 2.0 ** (-LOG_FLOOR_STOPS)
    diff = np.log2(np.maximum(yp[sel], eps)) - np.log2(np.maximum(yr[sel], eps))
    return float(np.sqrt(np.mean(diff * diff)))


def pu21_encode(luminance_cdm2: np.ndarray) -> np.ndarray:
    """PU21 (banding+glare) perceptually uniform encoding of absolute luminance.

    ``V(Y) = p7 * (((p1 + p2 Y^p4) / (1 + p3 Y^p4))^p5 - p6)``, with ``Y`` in
    cd/m^2 clamped to [0.005, 10000] and ``V`` clamped at 0. ``V(100) ~= 256.4``,
    ``V(10000) ~= 595``.
    """
    p1, p2, p3, p4, p5, p6, p7 = PU21_PARAMS
    y = np.clip(np.asarray(luminance_cdm2, dtype=np.float64), PU21_L_MIN, PU21_L_MAX)
    yp = y**p4
    v = p7 * (((p1 + p2 * yp) / (1.0 + p3 * yp)) ** p5 - p6)
    return np.maximum(v, 0.0)


PU21_PEAK = float(pu21_encode(np.array(100.0)))


def pu21_reference_encoding(
    ref: np.ndarray, reference_median_cdm2: float = PU21_REFERENCE_MEDIAN_CDM2
) -> tuple[float, np.ndarray] | None:
    """The reference side of :func:`pu21_psnr`: ``(k, V(k * ref))``, or None if undefined.

    ``k`` maps the reference's median luminance (of the positive pixels when the median
    is 0) to ``reference_median_cdm2``; ``V`` is :func:`pu21_encode` per channel, HxWx3.
    Computing it once lets a harness score many predictions of one reference cheaply.
    """
    ref = _as_rgb64(ref, "ref")
    yr = luminance(ref)
    finite = np.isfinite(yr)
    if not finite.any():
        return None
    med = float(np.median(yr[finite]))
    if med <= 0:
        positive = yr[finite & (yr > 0)]
        if positive.size == 0:
            return None
        med = float(np.median(positive))
    k = reference_median_cdm2 / med
    return k, pu21_encode(np.nan_to_num(ref * k, nan=0.0, posinf=PU21_L_MAX))


def pu21_psnr(
    pred: np.ndarray,
    ref: np.ndarray,
    *,
    reference_median_cdm2: float = PU21_REFERENCE_MEDIAN_CDM2,
    scale: float | None = None,
    align_mask: np.ndarray | None = None,
    reference_encoding: tuple[float, np.ndarray] | None = None,
) -> float:
    """PU21-PSNR (dB) between an aligned prediction and the reference.

    Luminance convention (fixed, so numbers are comparable across images):
    the prediction is first aligned (``scale``, default :func:`align_scale`);
    then *both* images are multiplied by one factor ``k`` chosen so the
    reference's median luminance becomes ``reference_median_cdm2`` (50 cd/m^2,
    about mid-grey on an HDR display whose diffuse white is ~250 cd/m^2). With
    that anchor, typical clipped regions (5-50x the median) land between ~250
    and 10000 cd/m^2, inside PU21's range, so restored highlights are scored
    rather than clamped away; the median anchor is robust where a peak anchor
    is not (a sun can be 1e5 x the median). Every RGB channel is treated as
    luminance in cd/m^2, clamped to [0.005, 10000], PU21-encoded, and the PSNR
    uses the peak ``V(100 cd/m^2) = 256.4`` (as in the PU21 paper, so values
    read like SDR PSNR). Identical encodings give :data:`PSNR_CAP_DB`.

    Args:
        pred, ref: HxWx3 linear images.
        reference_median_cdm2: target of the reference median luminance.
        scale, align_mask: see :func:`si_log2_rmse`.
        reference_encoding: precomputed :func:`pu21_reference_encoding` of ``ref``
            (same ``reference_median_cdm2``), to skip re-encoding the reference.

    Returns:
        PSNR in dB (capped at 100), ``nan`` when alignment fails or the reference
        has no positive luminance.
    """
    pred = _as_rgb64(pred, "pred")
    ref = _as_rgb64(ref, "ref")
    _check_same_shape(pred, ref)
    s = _resolve_scale(pred, ref, scale, align_mask)
    enc = reference_encoding if reference_encoding is not None else pu21_reference_encoding(
        ref, reference_median_cdm2)
    if not np.isfinite(s) or enc is None:
        return float("nan")
    k, v_ref = enc
    v_pred = pu21_encode(np.nan_to_num(pred * (s * k), nan=0.0, posinf=PU21_L_MAX))
    mse = float(np.mean((v_pred - v_ref) ** 2))
    if mse <= 0:
        return PSNR_CAP_DB
    return float(min(PSNR_CAP_DB, 20.0 * math.log10(PU21_PEAK) - 10.0 * math.log10(mse)))


def _curve_gray(curve) -> np.ndarray:
    """Accepts (1024,), (C, 1024) arrays or objects with ``.curves``; returns the (1024,) gray/mean curve."""
    arr = np.asarray(getattr(curve, "curves", curve), dtype=np.float64)
    if arr.ndim == 2:
        arr = arr.mean(axis=0)
    if arr.ndim != 1:
        raise ValueError(f"inverse curve must be (N,) or (C, N), got shape {arr.shape}")
    return arr


def crf_rmse(inv_a, inv_b) -> float:
    """RMSE between two inverse camera curves sampled at the same pixel values.

    Args:
        inv_a, inv_b: (1024,) arrays of linear values for pixel values i/1023, or
            (C, 1024) arrays / ``InverseCRF`` objects (the channel mean is used).

    Returns:
        RMSE (same units as the curves, i.e. relative irradiance in [0, 1]);
        ``nan`` if either is ``None``.
    """
    if inv_a is None or inv_b is None:
        return float("nan")
    a = _curve_gray(inv_a)
    b = _curve_gray(inv_b)
    if a.shape != b.shape:
        raise ValueError(f"curve lengths differ: {a.shape} vs {b.shape}")
    return float(np.sqrt(np.mean((a - b) ** 2)))
