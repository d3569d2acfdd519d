"""Lighting metrics: what a reconstruction does to the light a scene casts.

* :func:`irradiance_error`: cosine-weighted irradiance of panoramas at 64 Fibonacci
  normals, the quantity a 3D renderer lights with;
* :func:`clipped_energy_log2_ratio`: how much energy came back inside the clipped region;
* the equirectangular geometry they need (area downsampling, Fibonacci normals; pixel solid
  angles and directions come from :mod:`ldr2hdr.inference.imaging`, which the energy step shares).

Conventions are those of :mod:`.metrics` (float HxWx3 linear Rec.709, one global
alignment ``scale`` per sample, ``nan`` for an empty selection).
"""

from __future__ import annotations

import math

import numpy as np

from ..inference.imaging import equirect_directions, equirect_solid_angle  # noqa: F401 (re-exported)
from .metrics import _as_mask, _as_rgb64, _check_same_shape, _resolve_scale, luminance


def is_equirect(shape: tuple[int, ...]) -> bool:
    """True when an image of ``shape`` (H, W, ...) is a 2:1 equirectangular panorama (within 1 %)."""
    h, w = int(shape[0]), int(shape[1])
    return h > 0 and abs(w - 2 * h) <= max(1, round(0.01 * w))


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


def clipped_energy_error_stops(pred: np.ndarray, ref: np.ndarray, clip_mask: np.ndarray, **options) -> float:
    """Absolute value of :func:`clipped_energy_log2_ratio` (stops, >= 0 or ``nan``); same options."""
    return abs(clipped_energy_log2_ratio(pred, ref, clip_mask, **options))


# ----------------------------------------------------------------------------- sphere renders

GLOSSY_EXPONENT = 50  # Phong lobe, about 10 deg half-width: a glossy, not mirror, sphere


def sphere_normals(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Normals of a unit sphere seen orthographically along -Z (the camera at +Z), ``size`` px
    across: ``(normals (M, 3), mask (size, size))``, rows top-down, +Y up."""
    c = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    x, y = np.meshgrid(c, -c)
    r2 = x * x + y * y
    mask = r2 < 1.0
    n = np.stack([x[mask], y[mask], np.sqrt(1.0 - r2[mask])], axis=1)
    return n, mask


def render_spheres(pano: np.ndarray, size: int = 32, *, map_size: tuple[int, int] = (64, 128)) -> dict[str, np.ndarray]:
    """Linear RGB ``(M, 3)`` of the visible pixels of two spheres lit by an equirect map, the
    objects lighting-estimation papers render: ``"diffuse"`` (white Lambertian: irradiance / pi)
    and ``"glossy"`` (a normalised Phong lobe of exponent :data:`GLOSSY_EXPONENT` about the
    mirror direction). Computed on the map area-downsampled to ``map_size``; no shadows."""
    arr = _as_rgb64(pano, "pano")
    th, tw = min(map_size[0], arr.shape[0]), min(map_size[1], arr.shape[1])
    small = area_downsample(arr, th, tw).reshape(-1, 3)
    dirs = equirect_directions(th, tw).reshape(-1, 3)
    omega = equirect_solid_angle(th, tw).reshape(-1)
    normals, _ = sphere_normals(size)
    diffuse = (np.maximum(normals @ dirs.T, 0.0) * omega) @ small / math.pi
    view = np.array([0.0, 0.0, 1.0])
    mirror = 2.0 * (normals @ view)[:, None] * normals - view
    lobe = np.maximum(mirror @ dirs.T, 0.0) ** GLOSSY_EXPONENT * omega * ((GLOSSY_EXPONENT + 1) / (2 * math.pi))
    return {"diffuse": diffuse, "glossy": lobe @ small}


def render_errors(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """``(relative RMSE, scale-invariant relative RMSE)`` of a render against the reference
    render (RMSE over pixels and channels divided by the reference's RMS; the second after
    the least-squares scale of ``pred``)."""
    pred, ref = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    rms = math.sqrt(float(np.mean(ref ** 2)))
    if rms <= 0 or not np.all(np.isfinite(pred)):
        return float("nan"), float("nan")
    rel = math.sqrt(float(np.mean((pred - ref) ** 2))) / rms
    den = float(np.sum(pred * pred))
    alpha = float(np.sum(pred * ref)) / den if den > 0 else 0.0
    return rel, math.sqrt(float(np.mean((alpha * pred - ref) ** 2))) / rms
