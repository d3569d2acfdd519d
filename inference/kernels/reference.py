"""Float32 pure-torch references for the fused kernels.

These define the math. The Triton kernels in :mod:`.triton_kernels` must agree with them
to within float32 rounding, and they run anywhere torch runs (CPU, CUDA, MPS), so the
dispatcher uses them whenever Triton cannot run. Inputs are assumed already validated by
the public functions in :mod:`ldr2hdr.inference.kernels`.
"""

from __future__ import annotations

import torch

N_SAMPLES = 1024
"""Samples per inverse camera curve (the DoRF convention used by :mod:`..crf`)."""

LOG_EPS = 1e-4
"""Added before the log: ``log_linear = log(linear + LOG_EPS)``.

The same offset as the highlight network's input transform (``highlights.network.LOG_EPS``;
a test keeps the two equal): black stays finite (log(1e-4) ~ -9.2, about 13 stops below
the clip level) and the darkest 8-bit sRGB step (1/255 -> 3.0e-4 linear) is still resolved.
"""

Y_MAX = 30.0
"""Largest network log-radiance used by :func:`blend_reference`; larger values are clamped.

The same bound as the highlight network's ``MAX_LOG`` (a test keeps them equal):
``exp(30)`` is ~43 stops above the clip level, beyond any real scene, and even times the
largest exposure scale the pipeline allows (``2**32``) it stays far below the float32
maximum (4.6e22 vs 3.4e38). Without the clamp a float32 ``exp`` overflows to ``inf`` above
~88.7, and ``0 * inf`` would turn pixels with mask 0 into NaN.
"""

DEFAULT_THRESHOLD = 0.95
"""LDR value where the soft saturation mask starts (as in ``crf.dequantize.soft_saturation_mask``)."""


def linearize_reference(
    ldr: torch.Tensor,
    curves: torch.Tensor,
    threshold: float = DEFAULT_THRESHOLD,
    eps: float = LOG_EPS,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse-curve lookup, soft saturation mask and log transform (reference).

    Args:
        ldr: ``(B, 3, H, W)`` float32 or float16 pixel values in [0, 1].
        curves: ``(3, 1024)`` float32 inverse curves on ``ldr``'s device; ``curves[c, i]``
            is the linear irradiance for pixel value ``i / 1023`` in channel ``c``.
        threshold: mask start in (0, 1).
        eps: positive offset inside the log.

    Returns:
        ``(linear, log_linear, mask)``, all float32: ``linear`` ``(B, 3, H, W)`` in [0, 1]
        (piecewise-linear interpolation of the curve, input clipped to [0, 1]),
        ``log_linear = log(linear + eps)`` ``(B, 3, H, W)``, and ``mask`` ``(B, 1, H, W)``
        in [0, 1] = ``clip((max_c ldr - threshold) / (1 - threshold), 0, 1)``.
    """
    x = ldr.to(torch.float32)
    n = curves.shape[-1]
    t = x.clamp(0.0, 1.0) * (n - 1)
    # t >= 0, so truncation is floor; the last interval also serves t == n - 1. The lower
    # bound only matters for NaN pixels, which then stay NaN through frac.
    i = t.to(torch.int64).clamp_(0, n - 2)
    frac = t - i.to(torch.float32)
    i += (torch.arange(3, device=x.device) * n).view(1, 3, 1, 1)
    flat = curves.reshape(-1)
    lo = flat[i]
    linear = lo + frac * (flat[i + 1] - lo)
    peak = x.amax(dim=1, keepdim=True)
    mask = ((peak - threshold) / (1.0 - threshold)).clamp(0.0, 1.0)
    return linear, torch.log(linear + eps), mask


def blend_reference(
    linear: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    scale: float = 1.0,
    y_max: float = Y_MAX,
) -> torch.Tensor:
    """Mask blend of the linearized input and the network's prediction (reference).

    ``hdr = ((1 - mask) * linear + mask * exp(min(y, y_max))) * scale``, computed in float32.

    Args:
        linear: ``(B, 3, H, W)`` float32 relative radiance (>= 0).
        y: ``(B, 3, H, W)`` float32/float16/bfloat16 network output: natural-log radiance.
        mask: ``(B, 1, H, W)`` float32 in [0, 1]; 1 where the network's value is used.
        scale: exposure scale (``2 ** stops``).
        y_max: clamp for ``y`` before ``exp`` (see :data:`Y_MAX`).

    Returns:
        float32 ``(B, 3, H, W)`` HDR radiance, never clamped above.
    """
    y = y.to(torch.float32)
    # torch.clamp keeps NaN as NaN, so a broken prediction stays visible.
    predicted = torch.exp(y.clamp(max=y_max))
    mask = mask.to(torch.float32)
    return ((1.0 - mask) * linear.to(torch.float32) + mask * predicted) * scale
