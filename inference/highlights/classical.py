"""Classical (non-learned) highlight expansion.

* :func:`expand_kovaleski_oliveira` is the expand-map method of Kovaleski & Oliveira (2014):
  a cross-bilateral filter (guided by luminance) spreads the binary saturation mask into a
  smooth expand map E, and radiance is boosted by ``1 + (gain - 1) * E``. Their formulation
  scales the image by ``(3E + 1) / 4`` of the display peak, which is the same up to the
  unknown global scale with ``gain = 4``.
* :func:`expand_masia` is the gamma expansion of Masia et al. (2017).

All functions take and return float32 ``HxWx3`` numpy arrays; linear HDR is never clamped.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..imaging import luminance, pad, to_nchw


def _pad_wide(t: torch.Tensor, ph: int, pw: int, wrap: bool) -> torch.Tensor:
    """Like :func:`.imaging.pad` but for pads wider than the image (tiles it when wrapping)."""
    w = t.shape[-1]
    if wrap and pw > w:
        reps = -(-pw // w)
        t = torch.cat([t] * (2 * reps + 1), dim=-1)[..., reps * w - pw: reps * w + w + pw]
        pw = 0
    return pad(t, ph, pw, wrap)


def _gaussian_blur(t: torch.Tensor, sigma: float, wrap: bool) -> torch.Tensor:
    """Separable Gaussian blur of ``(1, C, H, W)`` with ``sigma`` in pixels; rows are
    replicated at the top and bottom, columns wrap around for panoramas."""
    if sigma < 0.3:
        return t
    r = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    c = t.shape[1]
    t = F.conv2d(_pad_wide(t, 0, r, wrap), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(_pad_wide(t, r, 0, False), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _smooth(img: np.ndarray, sigma: float, wrap: bool) -> torch.Tensor:
    """Gaussian blur with a large ``sigma`` done on a downsampled grid (bilateral-grid style)."""
    t = to_nchw(img)
    h, w = t.shape[-2:]
    f = max(1, int(sigma / 3))
    small = F.adaptive_avg_pool2d(t, (max(1, math.ceil(h / f)), max(1, math.ceil(w / f))))
    small = _gaussian_blur(small, sigma / f, wrap)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)


def cross_bilateral(signal: np.ndarray, guide: np.ndarray, sigma_s: float, sigma_r: float,
                    wrap: bool = False) -> np.ndarray:
    """Cross-bilateral filter of ``signal`` (``HxW``) guided by ``guide`` (``HxW`` in [0, 1]).

    Approximated on a bilateral grid: the guide range is cut into levels ``sigma_r`` apart;
    each level's weighted signal and weights are blurred spatially and the result is
    interpolated between levels at each pixel's guide value.
    """
    signal = np.asarray(signal, dtype=np.float32)
    guide = np.clip(np.asarray(guide, dtype=np.float32), 0.0, 1.0)
    levels = np.arange(0.0, 1.0 + sigma_r, sigma_r, dtype=np.float32)
    out = np.zeros_like(signal)
    pos = guide / sigma_r
    for k, level in enumerate(levels):
        hat = np.clip(1.0 - np.abs(pos - k), 0.0, 1.0)  # linear interpolation between levels
        if not hat.any():
            continue
        w = np.exp(-0.5 * ((guide - level) / sigma_r) ** 2).astype(np.float32)
        num = _smooth(signal * w, sigma_s, wrap)[0, 0].numpy()
        den = _smooth(w, sigma_s, wrap)[0, 0].numpy()
        out += hat * (num / np.maximum(den, 1e-8))
    return out


def expand_map_kovaleski_oliveira(ldr: np.ndarray, *, threshold: float = 254.0 / 255.0,
                                  sigma_s: float | None = None, sigma_r: float = 25.0 / 255.0,
                                  wrap: bool = False) -> np.ndarray:
    """The smooth expand map E (``HxW`` in [0, 1]) of Kovaleski & Oliveira (2014).

    ``sigma_s`` defaults to 150 px at 1024 px width, scaled with the image width so the
    result does not depend on resolution.
    """
    ldr = np.asarray(ldr, dtype=np.float32)
    mask = (ldr.max(axis=-1) > threshold).astype(np.float32)
    if not mask.any():
        return np.zeros(ldr.shape[:2], dtype=np.float32)
    if sigma_s is None:
        sigma_s = 150.0 * ldr.shape[1] / 1024.0
    e = cross_bilateral(mask, luminance(ldr), sigma_s, sigma_r, wrap=wrap)
    return np.clip(np.maximum(e, mask), 0.0, 1.0)


def expand_kovaleski_oliveira(linear: np.ndarray, ldr: np.ndarray, *, gain: float = 4.0,
                              wrap: bool = False, **kwargs) -> np.ndarray:
    """Kovaleski-Oliveira highlight expansion.

    Args:
        linear: float32 ``HxWx3`` linearized radiance (relative, clip level 1).
        ldr: the original pixel values ``HxWx3`` in [0, 1] (drives the mask and the guide).
        gain: radiance multiplier where the expand map is 1 (4 = the paper's (3E + 1) / 4).
        wrap: treat the image as a 360 panorama (the filter wraps around horizontally).
    Returns:
        float32 ``HxWx3`` HDR, not clamped.
    """
    e = expand_map_kovaleski_oliveira(ldr, wrap=wrap, **kwargs)
    return (np.asarray(linear, dtype=np.float32) * (1.0 + (gain - 1.0) * e)[..., None]).astype(np.float32)


def masia_gamma(linear: np.ndarray, ldr: np.ndarray) -> float:
    """The image-dependent exponent of Masia et al. (2017).

    ``g = 2.4379 + 0.2319 ln(L_avg) - 1.1228 k + 0.0085 p_ov`` with ``L_avg`` the log-mean
    luminance, ``k`` the key (position of log L_avg between the robust 1st/99th percentile
    log luminances) and ``p_ov`` the percentage of pixels at or above 254/255.
    """
    y = np.maximum(luminance(linear), 1e-6)
    log_y = np.log(y)
    l_avg = float(np.exp(log_y.mean()))
    lo, hi = np.percentile(log_y, [1, 99])
    key = float((np.log(l_avg) - lo) / max(hi - lo, 1e-6))
    p_ov = 100.0 * float(np.mean(np.asarray(ldr).max(axis=-1) >= 254.0 / 255.0))
    return 2.4379 + 0.2319 * math.log(l_avg) - 1.1228 * key + 0.0085 * p_ov


def expand_masia(linear: np.ndarray, ldr: np.ndarray) -> np.ndarray:
    """Masia 2017 gamma expansion of luminance, colour ratios kept. Returns ``HxWx3``."""
    linear = np.asarray(linear, dtype=np.float32)
    g = max(masia_gamma(linear, ldr), 0.1)
    y = np.maximum(luminance(linear), 1e-8)
    scale = y ** (g - 1.0)
    return (linear * scale[..., None]).astype(np.float32)
