"""The Linearize step's pixel work besides the curve lookup: the saturation mask and dequantization.

* :func:`soft_saturation_mask` marks clipped pixels (what the highlight step restores).
* :func:`dequantize` removes 8-bit banding by smoothing *inside the quantization cell*: the
  result never moves a pixel by more than half a code value, so edges stay where they are
  while the staircase of a smooth gradient becomes a ramp (a projection onto the set of
  images consistent with the observed 8-bit values).

The curve itself is applied by :func:`.curves.linearize`. Arrays are float32 ``HxWx3``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..imaging import from_nchw, pad, to_nchw


def soft_saturation_mask(ldr: np.ndarray, threshold: float = 0.95) -> np.ndarray:
    """Soft mask of clipped pixels, ``HxW`` float32 in [0, 1].

    0 where every channel is below ``threshold`` (reliable), rising linearly to 1 where the
    brightest channel reaches 1 (clipped). Input: pixel values in [0, 1].
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    peak = np.asarray(ldr, dtype=np.float32).max(axis=-1)
    return np.clip((peak - threshold) / (1.0 - threshold), 0.0, 1.0)


def dequantize(ldr: np.ndarray, bits: int = 8, iterations: int = 4, radius: int = 2,
               strip_rows: int = 512) -> np.ndarray:
    """Remove quantization steps in smooth regions without touching edges or texture.

    Only *flat* pixels change: those whose ``(2r+1)^2`` neighbourhood spans at most one
    code value, which is what a banded gradient looks like after 8-bit rounding. There, a
    normalized box filter over flat neighbours is iterated, and every pixel is clamped back
    into its quantization cell ``[v - 0.5 q, v + 0.5 q]`` (``q = 1 / (2**bits - 1)``), so no
    pixel moves by more than half a code value. Edges and texture (neighbourhoods spanning
    more than one code) and clipped code values (0 and the top value) are returned exactly.
    Works in horizontal strips with a halo, so memory stays bounded on huge panoramas.

    Args:
        ldr: float32 ``HxWx3`` in [0, 1], values on the ``bits`` grid.
    Returns:
        float32 ``HxWx3`` in [0, 1].
    """
    x = np.asarray(ldr, dtype=np.float32)
    if bits >= 16 or min(x.shape[:2]) < 2:
        return x.copy()
    q = 1.0 / (2 ** bits - 1)
    k = 2 * radius + 1
    halo = halo_rows(iterations, radius)
    h = x.shape[0]
    out = np.empty_like(x)

    def pad_by_radius(a):
        return pad(a, radius, radius, False)

    with torch.no_grad():
        for top in range(0, h, strip_rows):
            bottom = min(h, top + strip_rows)
            a, b = max(0, top - halo), min(h, bottom + halo)
            t = to_nchw(x[a:b])
            span = _max_filter(pad_by_radius(t), k) + _max_filter(pad_by_radius(-t), k)
            flat = ((span <= q * 1.001) & (t > 0.0) & (t < 1.0)).float()
            lo, hi = t - 0.5 * q, t + 0.5 * q
            den = _mean_filter(pad_by_radius(flat), k)
            y = t
            for _ in range(iterations):
                num = _mean_filter(pad_by_radius(y * flat), k)
                smooth = torch.where(den > 0, num / den.clamp_min(1e-8), y)
                y = torch.where(flat > 0, torch.minimum(torch.maximum(smooth, lo), hi), t)
            out[top:bottom] = from_nchw(y, x)[top - a: top - a + (bottom - top)]
    return out


def halo_rows(iterations: int = 4, radius: int = 2) -> int:
    """Rows on each side of a strip that decide its :func:`dequantize` result: the dequantized
    rows ``r0:r1`` of an image are those of ``dequantize(image[r0 - halo:r1 + halo])`` (clamped
    at the image's edges), exactly."""
    return (iterations + 1) * radius


def _max_filter(t: torch.Tensor, k: int) -> torch.Tensor:
    """``k x k`` maximum over an already padded NCHW tensor (valid), as a column then a row pass."""
    return F.max_pool2d(F.max_pool2d(t, (k, 1), stride=1), (1, k), stride=1)


def _mean_filter(t: torch.Tensor, k: int) -> torch.Tensor:
    """``k x k`` mean over an already padded NCHW tensor (valid), as a column then a row pass."""
    return F.avg_pool2d(F.avg_pool2d(t, (k, 1), stride=1), (1, k), stride=1)
