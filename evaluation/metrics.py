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


# ----------------------------------------------------------------------------- helpers


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


def is_equirect(shape: tuple[int, ...]) -> bool:
    """True when an image of ``shape`` (H, W, ...) is a 2:1 equirectangular panorama (within 1 %)."""
    h, w = int(shape[0]), int(shape[1])
    return h > 0 and abs(w - 2 * h) <= max(1, round(0.01 * w))


def equirect_solid_angle(height: int, width: int) -> np.ndarray:
    """Solid angle (steradians) of each pixel of an equirect map -> HxW float64, sums to 4*pi.

    Row 0 is the top (zenith). Pixel ``(i, j)`` covers latitudes
    ``[pi/2 - (i+1) pi/H, pi/2 - i pi/H]`` and a longitude span of ``2 pi / W``;
    its exact solid angle is ``(sin(lat_top) - sin(lat_bottom)) * 2 pi / W``.
    """
    edges = np.pi / 2 - np.arange(height + 1) * (np.pi / height)
    band = np.sin(edges[:-1]) - np.sin(edges[1:])
    return np.repeat((band * (2 * np.pi / width))[:, None], width, axis=1)


def equirect_directions(height: int, width: int) -> np.ndarray:
    """Unit direction of each pixel centre of an equirect map -> HxWx3 float64.

    Convention: +Y up (row 0 = zenith); longitude grows with the column, the
    centre column looks along -Z. Metrics that integrate over all directions do
    not depend on this choice.
    """
    lat = np.pi / 2 - (np.arange(height) + 0.5) * (np.pi / height)
    lon = (np.arange(width) + 0.5) * (2 * np.pi / width) - np.pi
    clat = np.cos(lat)[:, None]
    x = clat * np.sin(lon)[None, :]
    y = np.repeat(np.sin(lat)[:, None], width, axis=1)
    z = -clat * np.cos(lon)[None, :]
    return np.stack([x, y, z], axis=-1)


def fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly uniform unit vectors on the sphere (golden-angle spiral) -> (n, 3) float64."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    k = np.arange(n) + 0.5
    y = 1.0 - 2.0 * k / n
    r = np.sqrt(np.maximum(0.0, 1.0 - y * y))
    phi = k * math.pi * (3.0 - math.sqrt(5.0))
    return np.stack([r * np.cos(phi), y, r * np.sin(phi)], axis=1)


def area_downsample(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Box-filter (area-averaging) resize of an HxWxC image to ``height`` x ``width``.

    Exact area weights for arbitrary ratios (a pixel partly covered by an output
    cell contributes by its covered fraction), so energy is preserved:
    ``out.mean() == img.mean()`` up to rounding. Upsampling is not supported.
    """
    arr = np.asarray(img, dtype=np.float64)
    h, w = arr.shape[:2]
    if height > h or width > w or height < 1 or width < 1:
        raise ValueError(f"area_downsample: cannot resize {h}x{w} to {height}x{width}")
    if (h, w) == (height, width):
        return arr.copy()
    ry = _area_matrix(h, height)
    rx = _area_matrix(w, width)
    # out[i, j] = sum_a sum_b ry[i, a] arr[a, b] rx[j, b]
    return np.einsum("ia,ab...,jb->ij...", ry, arr, rx, optimize=True)


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix whose rows average the input cells covered by each output cell."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    lo = edges[:-1, None]
    hi = edges[1:, None]
    cells = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, cells + 1) - np.maximum(lo, cells), 0.0, None)
    return overlap / (n_in / n_out)


# ----------------------------------------------------------------------------- alignment


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


# ----------------------------------------------------------------------------- log error


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


# ----------------------------------------------------------------------------- PU21


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


# ----------------------------------------------------------------------------- lighting


def irradiance_map(pano: np.ndarray, normals: np.ndarray, *, size: tuple[int, int] = (64, 128)) -> np.ndarray:
    """Diffuse irradiance of an equirect environment at given normals.

    ``E_c(n) = sum_pixels L_c(w) * max(0, n . w) * dOmega(w)`` (W/m^2 per unit
    radiance; a constant map of radiance ``L`` gives ``pi * L``), computed on the
    map area-downsampled to ``size`` = (H, W) (default 64x128) for speed; area
    averaging preserves the energy, which is all irradiance depends on.

    Args:
        pano: HxWx3 linear equirect map (2:1).
        normals: (N, 3) unit vectors.
        size: (H, W) working resolution, clipped to the input resolution.

    Returns:
        (N, 3) float64 irradiance per RGB channel.
    """
    arr = _as_rgb64(pano, "pano")
    h, w = arr.shape[:2]
    th, tw = min(size[0], h), min(size[1], w)
    small = area_downsample(arr, th, tw)
    dirs = equirect_directions(th, tw).reshape(-1, 3)
    weights = equirect_solid_angle(th, tw).reshape(-1)
    cos = np.maximum(0.0, np.asarray(normals, dtype=np.float64) @ dirs.T)  # (N, P)
    return (cos * weights[None, :]) @ small.reshape(-1, 3)


def irradiance_error(
    pred_pano: np.ndarray,
    ref_pano: np.ndarray,
    n_normals: int = 64,
    *,
    scale: float | None = None,
    align_mask: np.ndarray | None = None,
) -> float:
    """Mean relative error of diffuse (cosine-weighted) irradiance over the sphere.

    After alignment (``scale``, default :func:`align_scale`), irradiance is
    computed per RGB channel at ``n_normals`` Fibonacci-sphere normals (see
    :func:`irradiance_map`), and the error is the mean over normals of
    ``||E_pred(n) - E_ref(n)||_2 / ||E_ref(n)||_2`` (Euclidean norms over RGB),
    so 0.1 means the lighting of a diffuse object is off by about 10 %.
    Normals where the reference irradiance is zero are skipped.

    Args:
        pred_pano, ref_pano: HxWx3 linear equirect maps (2:1).
        n_normals: number of normals.
        scale, align_mask: see :func:`si_log2_rmse`.

    Returns:
        Relative error (>= 0), ``nan`` if alignment fails or all irradiance is 0.
    """
    pred = _as_rgb64(pred_pano, "pred_pano")
    ref = _as_rgb64(ref_pano, "ref_pano")
    _check_same_shape(pred, ref)
    s = _resolve_scale(pred, ref, scale, align_mask)
    if not np.isfinite(s):
        return float("nan")
    normals = fibonacci_sphere(n_normals)
    e_ref = irradiance_map(ref, normals)
    e_pred = irradiance_map(pred * s, normals)
    den = np.linalg.norm(e_ref, axis=1)
    ok = den > 0
    if not ok.any():
        return float("nan")
    return float(np.mean(np.linalg.norm(e_pred - e_ref, axis=1)[ok] / den[ok]))


def clipped_energy_log2_ratio(
    pred: np.ndarray,
    ref: np.ndarray,
    clip_mask: np.ndarray,
    *,
    scale: float | None = None,
    align_mask: np.ndarray | None = None,
    panorama: bool | None = None,
) -> float:
    """Signed energy error inside the clipped region, in stops.

    ``log2( sum_{clip} w * s*Y_pred / sum_{clip} w * Y_ref )`` where ``w`` is the
    pixel solid angle for equirect panoramas (``panorama=None`` detects 2:1) and
    1 for flat images. Negative means the reconstruction has too little energy
    in the highlights (the usual failure: a clipped sun).

    Returns:
        Stops (float), ``nan`` for an empty mask, failed alignment, or a
        non-positive energy on either side.
    """
    pred = _as_rgb64(pred, "pred")
    ref = _as_rgb64(ref, "ref")
    _check_same_shape(pred, ref)
    m = _as_mask(clip_mask, ref.shape[:2], "clip_mask")
    if not m.any():
        return float("nan")
    s = _resolve_scale(pred, ref, scale, align_mask)
    if not np.isfinite(s):
        return float("nan")
    pano = is_equirect(ref.shape) if panorama is None else panorama
    h, w = ref.shape[:2]
    weights = equirect_solid_angle(h, w) if pano else np.ones((h, w))
    yp = np.nan_to_num(luminance(pred) * s, nan=0.0)
    yr = np.nan_to_num(luminance(ref), nan=0.0)
    e_pred = float(np.sum(weights[m] * yp[m]))
    e_ref = float(np.sum(weights[m] * yr[m]))
    if e_pred <= 0 or e_ref <= 0:
        return float("nan")
    return math.log2(e_pred / e_ref)


def clipped_energy_error_stops(
    pred: np.ndarray,
    ref: np.ndarray,
    clip_mask: np.ndarray,
    *,
    scale: float | None = None,
    align_mask: np.ndarray | None = None,
    panorama: bool | None = None,
) -> float:
    """Absolute value of :func:`clipped_energy_log2_ratio` (stops, >= 0 or ``nan``)."""
    return abs(
        clipped_energy_log2_ratio(
            pred, ref, clip_mask, scale=scale, align_mask=align_mask, panorama=panorama
        )
    )


# ----------------------------------------------------------------------------- camera curves


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
