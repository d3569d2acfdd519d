"""Small array helpers shared by the steps: luminance, equirect pixel geometry, HxWxC <-> NCHW
tensors, edge padding.

Arrays are float32 ``HxWxC`` (or ``HxW``) numpy images, top-down rows; tensors are
``(1, C, H, W)``.
"""

from __future__ import annotations

import numpy as np

# torch is imported inside the tensor helpers only: the numpy geometry here also serves code
# that runs in Blender's own Python, which has no torch (the sun extraction).

REC709_Y = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def unit_float(pixels: np.ndarray) -> np.ndarray:
    """Pixel values in [0, 1] as float32: 8/16-bit integer codes are scaled exactly as
    OpenImageIO converts them when it decodes to float (``code * float32(1 / 255)``, resp.
    ``1 / 65535``: a multiplication, which differs from ``code / 255`` in the last bit for
    some codes), so decoding to codes and converting later gives the same floats as decoding
    to floats; float arrays are returned as float32 (no copy when they already are)."""
    a = np.asarray(pixels)
    if a.dtype == np.uint8 or a.dtype == np.uint16:
        top = np.iinfo(a.dtype).max
        return _unit_table(top)[a]
    return a.astype(np.float32, copy=False)


_UNIT_TABLES: dict[int, np.ndarray] = {}


def _unit_table(top: int) -> np.ndarray:
    if top not in _UNIT_TABLES:
        _UNIT_TABLES[top] = np.arange(top + 1, dtype=np.float32) * np.float32(1.0 / top)
    return _UNIT_TABLES[top]


def channel_max(img: np.ndarray) -> np.ndarray:
    """Largest channel of an ``HxWxC`` array (-> ``HxW``): pairwise ``np.maximum`` over the
    channels, about ten times faster than ``max(axis=-1)`` over a 3-long axis (0.03 s against
    0.26 s at 4096x2048) and the same values (a maximum does not round)."""
    img = np.asarray(img)
    if img.shape[-1] == 1:
        return img[..., 0].copy()
    out = np.maximum(img[..., 0], img[..., 1])
    for c in range(2, img.shape[-1]):
        np.maximum(out, img[..., c], out=out)  # one output array: fresh memory is slow to touch
    return out


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec.709 luminance ``HxW`` of an ``HxWx3`` array (same units as the input)."""
    return np.asarray(rgb, dtype=np.float32) @ REC709_Y


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
    return equirect_directions_at(np.arange(height)[:, None], np.arange(width)[None, :], height, width)


def equirect_directions_at(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> np.ndarray:
    """Unit directions (``...x3`` float64) of the pixel centres ``(rows, cols)`` of a
    ``height`` x ``width`` equirect map (broadcast together), as :func:`equirect_directions`."""
    lat = np.pi / 2 - (np.asarray(rows) + 0.5) * (np.pi / height)
    lon = (np.asarray(cols) + 0.5) * (2 * np.pi / width) - np.pi
    lat, lon = np.broadcast_arrays(lat, lon)
    clat = np.cos(lat)
    return np.stack([clat * np.sin(lon), np.sin(lat), -clat * np.cos(lon)], axis=-1)


def direction_angles(direction) -> tuple[float, float]:
    """``(azimuth, elevation)`` in radians of a unit vector in the :func:`equirect_directions`
    convention: azimuth 0 at the centre column, growing with the column; elevation 0 at the
    horizon, pi/2 at the zenith."""
    x, y, z = (float(c) for c in direction)
    return np.arctan2(x, -z).item(), np.arcsin(min(1.0, max(-1.0, y))).item()


def blender_world_direction(direction) -> tuple[float, float, float]:
    """A direction of an equirect map (:func:`equirect_directions` convention) in Blender's
    world axes, as its Environment Texture shows the map (no mapping rotation): the centre
    column along +X, the column at 3/4 of the width along -Y, the top row along +Z; a
    rotation, no mirroring (checked by Cycles renders in ``tests/blender/test_extract_sun.py``
    and ``tests/render/test_relight.py``)."""
    x, y, z = (float(c) for c in direction)
    return (-z, -x, y)


def to_nchw(a: np.ndarray) -> torch.Tensor:
    """``HxWxC`` -> ``(1, C, H, W)`` or ``HxW`` -> ``(1, 1, H, W)``, float32 (shares memory when it can)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    return t.permute(2, 0, 1)[None] if t.ndim == 3 else t[None, None]


def from_nchw(t: torch.Tensor, like: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_nchw`, shaped like ``like`` (``HxWxC`` or ``HxW``)."""
    t = t[0]
    return (t.permute(1, 2, 0) if like.ndim == 3 else t[0]).contiguous().numpy()


def pad(t: torch.Tensor, ph: int, pw: int, wrap: bool) -> torch.Tensor:
    """Pad rows by replication and columns circularly (panoramas) or by replication."""
    import torch.nn.functional as F

    if pw:
        t = F.pad(t, (pw, pw, 0, 0), mode="circular" if wrap else "replicate")
    if ph:
        t = F.pad(t, (0, 0, ph, ph), mode="replicate")
    return t
