"""Display previews of HDR images (for looking, never for measuring)."""

from __future__ import annotations

import numpy as np

from .crf import linear_to_srgb
from .imaging import luminance


def preview(hdr: np.ndarray, *, key: float = 0.18) -> np.ndarray:
    """Tone-map linear HDR ``HxWx3`` to sRGB display values ``HxWx3`` in [0, 1].

    Exposure puts the log-average luminance at ``key``; an extended Reinhard curve on
    luminance (white point = the 99.9th percentile, at least 1) compresses highlights
    while keeping hue; the result is sRGB-encoded.
    """
    hdr = np.nan_to_num(np.maximum(np.asarray(hdr, dtype=np.float32), 0.0), posinf=0.0)
    y = luminance(hdr)
    positive = y[y > 0]
    if positive.size == 0:
        return np.zeros_like(hdr)
    scale = key / float(np.exp(np.mean(np.log(positive + 1e-6))))
    y_s = y * scale
    white = max(float(np.percentile(y_s, 99.9)), 1.0)
    y_d = y_s * (1.0 + y_s / white ** 2) / (1.0 + y_s)
    ratio = np.where(y > 0, y_d / np.maximum(y, 1e-12), 0.0)
    return linear_to_srgb(hdr * ratio[..., None]).astype(np.float32)
