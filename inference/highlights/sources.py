"""Clipped light sources: find them on the sphere and describe them (bpy-free, numpy).

A *source* is a connected part of the clipped region of an LDR image (the pixels whose
largest channel is at the top code), found at a fixed working resolution so that its
statistics do not depend on the input size: 512 px wide for panoramas (wrap-around at the
seam; the pixels of the top row meet at the zenith, those of the bottom row at the nadir),
the longest side 512 px for flat photos. Parts closer than :data:`MERGE_RADIUS` working
pixels are one source (a sun cut by a branch, a window cut by its frame).

Everything here works in the units of the linearized image: the clip level is about 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..imaging import REC709_Y, channel_max, equirect_directions, equirect_solid_angle

WORK_WIDTH = 512
CLIP_CODE = 254.5 / 255.0
MERGE_RADIUS = 2
RING_RADII = (1, 2, 4, 8, 16, 32)
GROWTH_LEVELS = (0.5, 0.25, 0.125)
LUMA = REC709_Y.astype(np.float64)


# ----------------------------------------------------------------------------- geometry


def work_shape(height: int, width: int, panorama: bool) -> tuple[int, int]:
    """Working resolution (H, W) for an image of ``height`` x ``width``."""
    if panorama:
        return WORK_WIDTH // 2, WORK_WIDTH
    s = min(1.0, WORK_WIDTH / max(height, width))
    return max(1, round(height * s)), max(1, round(width * s))


def pixel_solid_angle(height: int, width: int, panorama: bool) -> np.ndarray:
    """Solid angle of each working pixel (sr; sums to 4 pi) for panoramas, 1 per pixel for photos."""
    return equirect_solid_angle(height, width) if panorama else np.ones((height, width))


# ----------------------------------------------------------------------------- neighbourhoods


def _shift(a: np.ndarray, dy: int, dx: int, wrap: bool, fill) -> np.ndarray:
    """``a`` moved by (dy, dx): rows padded with ``fill``, columns wrapped (panoramas) or padded."""
    out = np.full_like(a, fill)
    h, w = a.shape
    ys = slice(max(dy, 0), h + min(dy, 0))
    yd = slice(max(-dy, 0), h + min(-dy, 0))
    if wrap:
        out[ys] = np.roll(a[yd], dx, axis=1)
    else:
        xs = slice(max(dx, 0), w + min(dx, 0))
        xd = slice(max(-dx, 0), w + min(-dx, 0))
        out[ys, xs] = a[yd, xd]
    return out


def max_filter(a: np.ndarray, radius: int, wrap: bool) -> np.ndarray:
    """The maximum over a (2r+1) square around each pixel, separable (columns, then rows),
    columns wrapped for panoramas; beyond the top and bottom rows nothing counts (``a``'s
    smallest value stands in). On a bool mask it is a binary dilation."""
    fill = a.min() if a.size else 0
    out = a.copy()
    for _ in range(radius):
        out = np.maximum(np.maximum(out, _shift(out, 0, 1, wrap, fill)), _shift(out, 0, -1, wrap, fill))
    for _ in range(radius):
        out = np.maximum(np.maximum(out, _shift(out, 1, 0, wrap, fill)), _shift(out, -1, 0, wrap, fill))
    return out


def dilate(mask: np.ndarray, radius: int, wrap: bool) -> np.ndarray:
    """Binary dilation by a (2r+1) square (:func:`max_filter`), columns wrapped for panoramas.

    For panoramas the rows within ``radius`` of a pole also reach every column of those rows
    (across the pole the sphere is small).
    """
    out = max_filter(mask, radius, wrap)
    if wrap and radius > 0:
        r = min(radius, out.shape[0])
        if mask[:r].any():
            out[:r] |= out[:r].any()
        if mask[-r:].any():
            out[-r:] |= out[-r:].any()
    return out


def label_components(mask: np.ndarray, wrap: bool) -> tuple[np.ndarray, int]:
    """8-connected components of ``mask`` -> (labels HxW int, 0 = background, 1..n; n).

    Panoramas (``wrap``) join the left and right edges, and all pixels of the top row are one
    neighbourhood (they meet at the zenith), likewise the bottom row. Labels are numbered by
    first pixel in row-major order, so the result does not depend on how it was computed.
    """
    h, w = mask.shape
    big = h * w + 1
    lab = np.where(mask, np.arange(h * w).reshape(h, w), big)
    while True:
        best = lab
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    best = np.minimum(best, _shift(lab, dy, dx, wrap, big))
        if wrap:
            for row in (0, h - 1):
                if mask[row].any():
                    best[row] = np.minimum(best[row], best[row][mask[row]].min())
        best = np.where(mask, best, big)
        flat = best.reshape(-1)
        inside = flat < big
        flat[inside] = np.minimum(flat[inside], flat[flat[inside]])  # pointer jump
        if np.array_equal(best, lab):
            break
        lab = best
    roots, inverse = np.unique(lab[mask], return_inverse=True)
    out = np.zeros((h, w), dtype=np.int32)
    out[mask] = inverse + 1
    return out, len(roots)


# ----------------------------------------------------------------------------- sources


@dataclass
class SourceSet:
    """The sources of one image at working resolution (see the module doc).

    ``labels``: HxW int32 (0 = not clipped, s = source s); ``fill``: per-source energy of the
    clipped pixels as linearized (solid-angle weighted luminance at the clip level);
    ``features``: (n, F) float64 rows in the order of :data:`FEATURE_NAMES`.
    """

    panorama: bool
    shape: tuple[int, int]
    labels: np.ndarray
    clip_fraction: np.ndarray  # HxW fraction of each working pixel that is clipped
    weights: np.ndarray  # HxW solid angle (or 1)
    fill: np.ndarray  # (n,)
    solid_angle: np.ndarray  # (n,)
    direction: np.ndarray  # (n, 3) unit vectors (panoramas) or (x, y) image centre in [-1, 1]
    colour: np.ndarray  # (n, 3) mean linear RGB of the source as clipped, luminance 1
    features: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    all_clipped: np.ndarray | None = None  # HxW fraction of each working pixel clipped in all three channels

    @property
    def count(self) -> int:
        return len(self.fill)


FEATURE_NAMES = (
    "log2_solid_angle", "log2_share_of_clipped", "log2_fill_over_unclipped", "compactness",
    "elevation", "is_panorama", "n_sources", "rank",
    *(f"log2_ring{r}" for r in RING_RADII),
    *(f"log2_growth{t}" for t in GROWTH_LEVELS),
    "halo_slope", "ring_blue_red", "ring_saturation", "clip_all_channels",
    "log2_unclipped_energy_up", "log2_unclipped_energy_down", "log2_down_over_up",
    "clip_fraction_total", "log2_p90", "log2_p99", "log2_median",
)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ LUMA


def clipped_pixels(ldr: np.ndarray) -> np.ndarray:
    """HxW bool: the pixels whose largest channel is at the top 8-bit code."""
    return channel_max(np.asarray(ldr)) >= CLIP_CODE


def _area_reduce_axis0(a: np.ndarray, n_out: int) -> np.ndarray:
    """Exact area average of ``a`` along axis 0 to ``n_out`` cells (fractional cell edges),
    through the running sum: O(size), whatever the ratio."""
    n = a.shape[0]
    if n == n_out:
        return a.astype(np.float64)
    if n % n_out == 0:
        # float32 input (full-resolution bands) is averaged in float32: a few dozen values per cell
        acc = np.float32 if a.dtype == np.float32 else np.float64
        return a.reshape(n_out, n // n_out, *a.shape[1:]).mean(axis=1, dtype=acc)
    csum = np.concatenate([np.zeros((1, *a.shape[1:])), np.cumsum(a, axis=0, dtype=np.float64)])
    edges = np.linspace(0.0, n, n_out + 1)
    k = np.minimum(np.floor(edges).astype(np.int64), n - 1)
    frac = (edges - k).reshape(-1, *([1] * (a.ndim - 1)))
    at = csum[k] + frac * (csum[k + 1] - csum[k])  # running sum at the fractional edges
    return (at[1:] - at[:-1]) / (n / n_out)


def _area_reduce_columns(a: np.ndarray, n_out: int) -> np.ndarray:
    """Exact area average of a 2-D ``a`` along its columns to ``n_out`` cells."""
    n = a.shape[1]
    if n % n_out == 0:
        acc = np.float32 if a.dtype == np.float32 else np.float64
        return a.reshape(a.shape[0], n_out, n // n_out).mean(axis=2, dtype=acc)
    return _area_reduce_axis0(a.T, n_out).T


def reduce_to_work(planes, height: int, width: int, hh: int, ww: int, band: int = 256) -> np.ndarray:
    """Area-average per-pixel quantities down to the working grid without a full-size float64 copy.

    ``planes(r0, r1)`` returns the quantities of rows ``r0:r1`` as a list of ``(r1 - r0, width)``
    arrays; each band is reduced along its columns at once, then all bands along the rows. The
    result is ``(hh, ww, C)`` float64, an exact area average (sums are kept).
    """
    cols: list[list[np.ndarray]] = []
    for r0 in range(0, height, band):
        cols.append([_area_reduce_columns(np.asarray(p), ww) for p in planes(r0, min(height, r0 + band))])
    out = [_area_reduce_axis0(np.concatenate([c[k] for c in cols], axis=0), hh) for k in range(len(cols[0]))]
    return np.stack(out, axis=-1).astype(np.float64)


def find_sources(linear: np.ndarray, ldr: np.ndarray, panorama: bool, clipped: np.ndarray | None = None) -> SourceSet:
    """Find the clipped sources of one image and compute their features.

    Args:
        linear: HxWx3 linearized image (clip level about 1).
        ldr: HxWx3 encoded image in [0, 1] (decides which pixels are clipped: largest channel
            at the top 8-bit code).
        panorama: equirectangular 2:1 (wrap-around, solid-angle weights) or a flat photo.
        clipped: :func:`clipped_pixels` of ``ldr`` when the caller has it already.
    """
    h, w = linear.shape[:2]
    hh, ww = work_shape(h, w, panorama)
    luma = LUMA.astype(np.float32)

    def planes(r0, r1):
        lin = np.fmax(np.asarray(linear[r0:r1], dtype=np.float32), 0.0)  # fmax also turns NaN into 0
        code = np.asarray(ldr[r0:r1])
        clip = (clipped[r0:r1] if clipped is not None else channel_max(code) >= CLIP_CODE).astype(np.float32)
        chans = [np.ascontiguousarray(lin[..., c]) for c in range(3)]
        y = luma[0] * chans[0] + luma[1] * chans[1] + luma[2] * chans[2]
        y_clip = y * clip
        all3 = (np.minimum(np.minimum(code[..., 0], code[..., 1]), code[..., 2]) >= CLIP_CODE).astype(np.float32)
        return [*chans, *(c * clip for c in chans), clip, y_clip, y - y_clip, all3]

    red = reduce_to_work(planes, h, w, hh, ww)
    rgb, rgb_clip = red[..., 0:3], red[..., 3:6]
    frac, y_clip, y_open, all3 = red[..., 6], red[..., 7], red[..., 8], red[..., 9]
    frac = np.clip(frac, 0.0, 1.0)
    weights = pixel_solid_angle(hh, ww, panorama)
    any_clip = frac > 1e-9
    labels, n = label_components(dilate(any_clip, MERGE_RADIUS, panorama), panorama)
    labels = np.where(any_clip, labels, 0)
    # dilation can create labels with no clipped pixel: renumber the ones that remain
    present = np.unique(labels[labels > 0])
    remap = np.zeros(n + 1, dtype=np.int32)
    remap[present] = np.arange(1, len(present) + 1)
    labels = remap[labels]
    n = len(present)
    idx = labels.reshape(-1)
    wf = (weights * frac).reshape(-1)
    fill = np.bincount(idx, (weights * y_clip).reshape(-1), n + 1)[1:]
    omega = np.bincount(idx, wf, n + 1)[1:]
    col = np.stack([np.bincount(idx, (weights * rgb_clip[..., c]).reshape(-1), n + 1)[1:] for c in range(3)], 1)
    col = col / np.maximum(col @ LUMA, 1e-12)[:, None]
    if panorama:
        dirs = equirect_directions(hh, ww).reshape(-1, 3)
        d = np.stack([np.bincount(idx, wf * dirs[:, c], n + 1)[1:] for c in range(3)], 1)
        d = d / np.maximum(np.linalg.norm(d, axis=1), 1e-12)[:, None]
    else:
        yy, xx = np.meshgrid(np.linspace(-1, 1, hh), np.linspace(-1, 1, ww), indexing="ij")
        d = np.stack([np.bincount(idx, wf * v.reshape(-1), n + 1)[1:] for v in (xx, yy)], 1)
        d = d / np.maximum(omega, 1e-12)[:, None]
    sources = SourceSet(panorama, (hh, ww), labels, frac, weights, fill, omega, d, col,
                        all_clipped=np.clip(all3, 0.0, 1.0))
    sources.features = _features(sources, rgb, y_open, any_clip, all3, hh, ww)
    return sources


def _features(s: SourceSet, rgb, y_open, any_clip, all3, hh, ww) -> np.ndarray:
    n = s.count
    if n == 0:
        return np.zeros((0, len(FEATURE_NAMES)))
    eps = 1e-9
    w = s.weights
    wrap = s.panorama
    y = _luma(rgb)
    open_w = w * (1 - s.clip_fraction)
    e_open = float(np.sum(w * y_open)) + eps
    total_omega = float(np.sum(s.solid_angle)) + eps
    up = np.zeros((hh, ww), bool)
    up[: hh // 2] = True  # upper half: the sky hemisphere of a panorama, the top of a photo
    e_up = float(np.sum((w * y_open)[up])) + eps
    e_down = float(np.sum((w * y_open)[~up])) + eps
    vals = y[~any_clip] if (~any_clip).any() else y.reshape(-1)
    p50, p90, p99 = np.quantile(vals, [0.5, 0.9, 0.99])
    order = np.argsort(-s.fill)
    rank = np.empty(n)
    rank[order] = np.arange(n)
    feats = np.zeros((n, len(FEATURE_NAMES)))
    col = {k: i for i, k in enumerate(FEATURE_NAMES)}
    rmax_ring = RING_RADII[-1]
    all_dirs = equirect_directions(hh, ww) if s.panorama else None
    for k in range(n):
        win = _window(s.labels == (k + 1), rmax_ring + 1, wrap)
        m = win(s.labels) == (k + 1)
        cw = win(w)
        cy = win(y)
        crgb = win(rgb)
        cclip = win(any_clip)
        cfrac = win(s.clip_fraction)
        cwrap = wrap and m.shape[1] == ww
        ring_vals = []
        prev = m
        ring_rgb = None
        r_prev = 0
        for r in RING_RADII:
            grown = dilate(prev, r - r_prev, cwrap)
            r_prev = r
            ring = grown & ~prev & ~cclip
            prev = grown
            ww_ring = cw[ring]
            if ww_ring.sum() > 0:
                v = float(np.sum(ww_ring * cy[ring]) / ww_ring.sum())
                if ring_rgb is None:
                    ring_rgb = np.sum(ww_ring[:, None] * crgb[ring], 0) / ww_ring.sum()
            else:
                v = ring_vals[-1] if ring_vals else 1.0
            ring_vals.append(max(v, 1e-6))
        near = prev
        growth = []
        for t in GROWTH_LEVELS:
            sel = near & (cy >= t)
            a = float(np.sum(cw[sel] * (1 - cfrac[sel]))) + s.solid_angle[k]
            growth.append(math.log2(a / (s.solid_angle[k] + eps)))
        m_full = s.labels == (k + 1)
        lr = np.log2(ring_vals)
        rad = np.log2(np.array(RING_RADII, dtype=np.float64))
        slope = float(np.polyfit(rad[:4], lr[:4], 1)[0])
        if ring_rgb is None:
            ring_rgb = np.ones(3)
        ring_rgb = np.maximum(ring_rgb, 1e-6)
        row = feats[k]
        row[col["log2_solid_angle"]] = math.log2(s.solid_angle[k] + eps)
        row[col["log2_share_of_clipped"]] = math.log2((s.solid_angle[k] + eps) / total_omega)
        row[col["log2_fill_over_unclipped"]] = math.log2((s.fill[k] + eps) / e_open)
        # compactness: solid angle over the smallest cap (panorama) / disc (photo) around its centre
        if s.panorama:
            dirs = all_dirs[m_full]
            cosmax = float(np.min(dirs @ s.direction[k]))
            cap = 2 * np.pi * (1 - cosmax) + eps
            row[col["compactness"]] = min(1.0, s.solid_angle[k] / cap)
            row[col["elevation"]] = float(s.direction[k][1])
        else:
            yy, xx = np.nonzero(m_full)
            my, mx = yy.mean(), xx.mean()
            rmax = float(np.sqrt(np.max((yy - my) ** 2 + (xx - mx) ** 2))) + 0.5
            row[col["compactness"]] = min(1.0, s.solid_angle[k] / (np.pi * rmax * rmax))
            row[col["elevation"]] = float(-s.direction[k][1])
        row[col["is_panorama"]] = float(s.panorama)
        row[col["n_sources"]] = math.log2(n)
        row[col["rank"]] = rank[k]
        for i, r in enumerate(RING_RADII):
            row[col[f"log2_ring{r}"]] = lr[i]
        for i, t in enumerate(GROWTH_LEVELS):
            row[col[f"log2_growth{t}"]] = growth[i]
        row[col["halo_slope"]] = slope
        row[col["ring_blue_red"]] = math.log2(ring_rgb[2] / ring_rgb[0])
        row[col["ring_saturation"]] = float(1 - ring_rgb.min() / ring_rgb.max())
        row[col["clip_all_channels"]] = float(np.sum((w * all3)[m_full]) / (s.solid_angle[k] + eps))
        row[col["log2_unclipped_energy_up"]] = math.log2(e_up / e_open)
        row[col["log2_unclipped_energy_down"]] = math.log2(e_down / e_open)
        row[col["log2_down_over_up"]] = math.log2(e_down / e_up)
        row[col["clip_fraction_total"]] = float(np.sum(w * s.clip_fraction) / np.sum(w))
        row[col["log2_p90"]] = math.log2(max(p90, 1e-6))
        row[col["log2_p99"]] = math.log2(max(p99, 1e-6))
        row[col["log2_median"]] = math.log2(max(p50, 1e-6))
    return feats


def _window(mask: np.ndarray, margin: int, wrap: bool):
    """A function that crops HxW(xC) arrays to ``mask``'s bounding box plus ``margin``.

    For panoramas the columns are first rolled so that the source sits in the middle (a
    source across the seam is then one block); when the box is wider than the image the
    crop keeps every column and the caller keeps wrapping.
    """
    h, w = mask.shape
    rows = np.nonzero(mask.any(axis=1))[0]
    y0, y1 = max(0, rows[0] - margin), min(h, rows[-1] + margin + 1)
    cols = mask.any(axis=0)
    shift = 0
    if wrap:
        # roll so that the largest empty run of columns is at the edges
        empty = ~cols
        if empty.any():
            run_end, best, cur = 0, -1, 0
            for i in range(2 * w):
                if empty[i % w]:
                    cur += 1
                    if cur > best:
                        best, run_end = cur, i % w
                else:
                    cur = 0
            mid = (run_end - best // 2) % w  # middle of the empty run goes to column 0
            shift = -mid
        cols = np.roll(cols, shift)
    idx = np.nonzero(cols)[0]
    x0, x1 = idx[0] - margin, idx[-1] + margin + 1
    if not wrap:
        x0, x1 = max(0, x0), min(w, x1)
    elif x0 < 0 or x1 > w:
        x0, x1 = 0, w
    def crop(a):
        a = np.roll(a, shift, axis=1) if shift else a
        return a[y0:y1, x0:x1]
    return crop


def source_energy(sources: SourceSet, values: np.ndarray) -> np.ndarray:
    """Per-source energy of a full-resolution HxW map of clipped-region luminance (0 outside).

    ``values`` is area-averaged to the working resolution (in row bands), so sums are exact.
    """
    hh, ww = sources.shape
    h, w = values.shape
    v = reduce_to_work(lambda r0, r1: [values[r0:r1]], h, w, hh, ww)[..., 0] * sources.weights
    return np.bincount(sources.labels.reshape(-1), v.reshape(-1), sources.count + 1)[1:]
