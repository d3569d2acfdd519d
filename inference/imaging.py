"""Small array helpers shared by the steps: luminance, HxWxC <-> NCHW tensors, edge padding.

Arrays are float32 ``HxWxC`` (or ``HxW``) numpy images, top-down rows; tensors are
``(1, C, H, W)``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

REC709_Y = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec.709 luminance ``HxW`` of an ``HxWx3`` array (same units as the input)."""
    return np.asarray(rgb, dtype=np.float32) @ REC709_Y


def to_nchw(a: np.ndarray) -> torch.Tensor:
    """``HxWxC`` -> ``(1, C, H, W)`` or ``HxW`` -> ``(1, 1, H, W)``, float32 (shares memory when it can)."""
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    return t.permute(2, 0, 1)[None] if t.ndim == 3 else t[None, None]


def from_nchw(t: torch.Tensor, like: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_nchw`, shaped like ``like`` (``HxWxC`` or ``HxW``)."""
    t = t[0]
    return (t.permute(1, 2, 0) if like.ndim == 3 else t[0]).contiguous().numpy()


def pad(t: torch.Tensor, ph: int, pw: int, wrap: bool) -> torch.Tensor:
    """Pad rows by replication and columns circularly (panoramas) or by replication."""
    if pw:
        t = F.pad(t, (pw, pw, 0, 0), mode="circular" if wrap else "replicate")
    if ph:
        t = F.pad(t, (0, 0, ph, ph), mode="replicate")
    return t
