"""The Linearize step's pixel work besides the curve lookup: the saturation mask and dequantization.

* :func:`soft_saturation_mask` marks clipped pixels (what the highlight step restores).
* :func:`dequantize` removes 8-bit banding by smoothing *inside the quantization cell*: the
  result never moves a pixel by more than half a code value, so edges stay where they are
  while the staircase of a smooth gradient becomes a ramp (a projection onto the set of
  images consistent with the observed 8-bit values).

The curve itself is applied by :func:`.curves.linearize`. Arrays are float32 ``HxWx3``.

How :func:`dequantize` is computed (numpy, in tiles): only flat pixels change, and a pixel's
mean only counts flat neighbours, so each tile first finds its flat pixels (on the 8-bit codes
when the values are on the grid: exact, and a quarter of the data) and then smooths only the
runs of rows that hold some, within their columns. Every box sum adds the same float32 values in
the same order and divides by the same numbers as the definition (``avg_pool2d`` over
replicate-padded tensors, a column pass then a row pass), so the output is bit for bit that of
the straightforward implementation, which ``tests/inference/test_dequantize.py`` keeps to compare.
Tiles are small enough for the CPU cache and run on ``torch.get_num_threads()`` threads.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..imaging import channel_max

#: Output rows and columns of one tile (``strip_rows`` caps the rows). Each tile reads a halo of
#: :func:`halo_rows` rows and columns around it; 64 x 512 keeps a tile's arrays (~0.5 MB each)
#: in the cache, which pays for the halo's extra work (measured on 2 cores, 4096 x 2048).
TILE_ROWS = 64
TILE_COLS = 512


def soft_saturation_mask(ldr: np.ndarray, threshold: float = 0.95) -> np.ndarray:
    """Soft mask of clipped pixels, ``HxW`` float32 in [0, 1].

    0 where every channel is below ``threshold`` (reliable), rising linearly to 1 where the
    brightest channel reaches 1 (clipped). Input: pixel values in [0, 1].
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    peak = channel_max(np.asarray(ldr, dtype=np.float32))
    peak -= np.float32(threshold)  # in place: a fresh full-size temporary costs more than the arithmetic
    peak /= np.float32(1.0 - threshold)
    return np.clip(peak, 0.0, 1.0, out=peak)


def dequantize(ldr: np.ndarray, bits: int = 8, iterations: int = 4, radius: int = 2,
               strip_rows: int = 512) -> np.ndarray:
    """Remove quantization steps in smooth regions without touching edges or texture.

    Only *flat* pixels change: those whose ``(2r+1)^2`` neighbourhood spans at most one
    code value, which is what a banded gradient looks like after 8-bit rounding. There, a
    normalized box filter over flat neighbours is iterated, and every pixel is clamped back
    into its quantization cell ``[v - 0.5 q, v + 0.5 q]`` (``q = 1 / (2**bits - 1)``), so no
    pixel moves by more than half a code value. Edges and texture (neighbourhoods spanning
    more than one code) and clipped code values (0 and the top value) are returned exactly.
    Image borders are replicated. Works in tiles of at most ``strip_rows`` rows with a halo,
    so memory stays bounded on huge panoramas.

    Args:
        ldr: float32 ``HxWx3`` in [0, 1], values on the ``bits`` grid.
    Returns:
        float32 ``HxWx3`` in [0, 1].
    """
    x = np.asarray(ldr, dtype=np.float32)
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    if bits >= 16 or min(x.shape[:2]) < 2 or iterations <= 0 or radius == 0:
        return x.copy()  # nothing can move (a 1x1 box or no iteration returns the input)
    img = np.ascontiguousarray(x if x.ndim == 3 else x[:, :, None])
    out = np.empty_like(img)
    spec = _Spec(2 ** bits - 1, iterations, radius)
    h, w = img.shape[:2]
    rows = max(1, min(int(strip_rows), TILE_ROWS))
    tiles = [(r0, min(h, r0 + rows), c0, min(w, c0 + TILE_COLS))
             for r0 in range(0, h, rows) for c0 in range(0, w, TILE_COLS)]

    def work(tile, scratch):
        with np.errstate(invalid="ignore"):  # NaN and inf pixels are never flat: passed through
            _dequantize_tile(img, out, tile, spec, scratch)

    _for_each_tile(tiles, work)
    return out if x.ndim == 3 else out[:, :, 0]


def halo_rows(iterations: int = 4, radius: int = 2) -> int:
    """Rows on each side of a strip that decide its :func:`dequantize` result: the dequantized
    rows ``r0:r1`` of an image are those of ``dequantize(image[r0 - halo:r1 + halo])`` (clamped
    at the image's edges), exactly."""
    return (iterations + 1) * radius


class _Spec:
    """The parameters of one :func:`dequantize` call, as the tiles use them."""

    def __init__(self, top: int, iterations: int, radius: int):
        self.top = top  # the largest code value
        self.q = 1.0 / top  # one code step
        self.iterations = iterations
        self.radius = radius
        self.halo = halo_rows(iterations, radius)
        self.reach = iterations * radius  # how far the smoothing carries a flat pixel's value


class _Scratch:
    """Named work arrays of one thread, reused from tile to tile: fresh memory costs a page
    fault per 4 KB the first time it is written, more than the arithmetic on it."""

    def __init__(self):
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple, dtype=np.float32) -> np.ndarray:
        """A C-contiguous ``shape`` array (contents undefined), sharing memory with the
        previous array of that name when it is large enough."""
        size = int(np.prod(shape))
        a = self._arrays.get(name)
        if a is None or a.size < size or a.dtype != dtype:
            a = self._arrays[name] = np.empty(size, dtype)
        return a[:size].reshape(shape)


def _for_each_tile(tiles: list, work) -> None:
    """``work(tile, scratch)`` for every tile, on up to ``torch.get_num_threads()`` threads
    (numpy releases the GIL in its loops; tiles write disjoint output)."""
    threads = max(1, min(torch.get_num_threads(), len(tiles)))
    if threads == 1:
        scratch = _Scratch()
        for tile in tiles:
            work(tile, scratch)
        return
    local = threading.local()

    def run(tile):
        if not hasattr(local, "scratch"):
            local.scratch = _Scratch()
        work(tile, local.scratch)

    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(run, tiles):
            pass


def _dequantize_tile(img: np.ndarray, out: np.ndarray, tile: tuple, spec: _Spec, scratch: _Scratch) -> None:
    """Write ``out`` for the output rows ``r0:r1`` and columns ``c0:c1`` of ``img``.

    The tile reads ``spec.halo`` more rows and columns on each side (clamped at the image's
    edges): the flat mask needs ``radius`` around each pixel it is used at, and the smoothing
    ``reach`` around the output. Beyond the halo nothing can change the output, so replicating
    the tile's own edges (as the image's edges are replicated) gives the image's result.
    """
    r0, r1, c0, c1 = tile
    h, w = img.shape[:2]
    a, b = max(0, r0 - spec.halo), min(h, r1 + spec.halo)
    ca, cb = max(0, c0 - spec.halo), min(w, c1 + spec.halo)
    out[r0:r1, c0:c1] = img[r0:r1, c0:c1]
    source = img[a:b, ca:cb]
    flat, finite = _flat_mask(source, spec, scratch)
    # only flat pixels within `reach` of the output can move it; what the region's replicated
    # edges change stays within `reach` of them, off the output
    e0, e1 = max(0, r0 - a - spec.reach), min(b - a, r1 - a + spec.reach)
    f0, f1 = max(0, c0 - ca - spec.reach), min(cb - ca, c1 - ca + spec.reach)
    flat, source = flat[e0:e1, f0:f1], source[e0:e1, f0:f1]
    for y0, y1, x0, x1 in _flat_boxes(flat, spec.radius):
        box_flat = flat[y0:y1, x0:x1]
        smooth = _smooth(source[y0:y1, x0:x1], box_flat, finite, spec, scratch)
        # the part of the box inside the output tile, in the box's coordinates
        i0, i1 = max(y0, r0 - a - e0), min(y1, r1 - a - e0)
        j0, j1 = max(x0, c0 - ca - f0), min(x1, c1 - ca - f0)
        if i0 < i1 and j0 < j1:
            dst = out[a + e0 + i0:a + e0 + i1, ca + f0 + j0:ca + f0 + j1]
            np.copyto(dst, smooth[i0 - y0:i1 - y0, j0 - x0:j1 - x0], where=box_flat[i0 - y0:i1 - y0, j0 - x0:j1 - x0])


def _flat_mask(t: np.ndarray, spec: _Spec, scratch: _Scratch) -> tuple[np.ndarray, bool]:
    """Flat pixels of ``t`` (bool, same shape; its edges replicated): the ``(2r+1)^2`` window
    spans at most one code value (``max - min <= 1.001 q``) and the value is neither 0 nor >= 1.
    Also whether ``t`` is known finite (the code path proves it)."""
    span_ok = _flat_span_codes(t, spec, scratch)
    finite = span_ok is not None
    if not finite:
        span_ok = _flat_span_floats(t, spec, scratch)
    span_ok &= t > 0.0
    span_ok &= t < 1.0
    return span_ok, finite


def _flat_span_codes(t: np.ndarray, spec: _Spec, scratch: _Scratch) -> np.ndarray | None:
    """The span test on 8-bit codes, or None when ``t`` is not on the code grid.

    On the grid (every value within 1e-4 code of ``code * q``, codes in range), spans of 0 or 1
    code are below ``1.001 q`` and spans of 2 or more above it, whatever the rounding of the
    floats, so the codes decide exactly as the floats would. (With more bits the float32
    rounding of ``t * top`` nears the margin: those take the float test.)
    """
    if spec.top > 255:
        return None
    codes = scratch.get("codes", t.shape)
    scaled = np.multiply(t, np.float32(spec.top), out=scratch.get("scaled", t.shape))
    np.rint(scaled, out=codes)
    scaled -= codes
    if not (-1e-4 <= scaled.min() and scaled.max() <= 1e-4 and 0 <= codes.min() and codes.max() <= spec.top):
        return None  # off the grid, out of range, NaN or inf: the float test
    r = spec.radius
    padded = scratch.get("codes_padded", (t.shape[0] + 2 * r, t.shape[1] + 2 * r, t.shape[2]), np.uint8)
    np.copyto(padded[r:-r, r:-r], codes, casting="unsafe")
    _replicate_edges(padded, r)
    span = _window_span(padded, r, scratch, "codes")
    return np.less_equal(span, 1, out=scratch.get("flat", t.shape, np.bool_))


def _flat_span_floats(t: np.ndarray, spec: _Spec, scratch: _Scratch) -> np.ndarray:
    """The span test on the float values themselves (``max - min <= 1.001 q``, in float32)."""
    r = spec.radius
    padded = scratch.get("floats_padded", (t.shape[0] + 2 * r, t.shape[1] + 2 * r, t.shape[2]))
    padded[r:-r, r:-r] = t
    _replicate_edges(padded, r)
    span = _window_span(padded, r, scratch, "floats")
    return np.less_equal(span, np.float32(spec.q * 1.001), out=scratch.get("flat", t.shape, np.bool_))


def _window_span(padded: np.ndarray, r: int, scratch: _Scratch, tag: str) -> np.ndarray:
    """``max - min`` over the ``(2r+1)^2`` window of each pixel of an ``r``-padded array
    (valid), as a column pass then a row pass for each."""
    n, w, c = padded.shape[0] - 2 * r, padded.shape[1] - 2 * r, padded.shape[2]
    k = 2 * r + 1
    column = scratch.get(tag + "_column", (n, w + 2 * r, c), padded.dtype)
    pairs = scratch.get(tag + "_pairs", (n + 2 * r, w + 2 * r, c), padded.dtype)
    high = scratch.get(tag + "_high", (n, w, c), padded.dtype)
    low = scratch.get(tag + "_low", (n, w, c), padded.dtype)
    for op, result in ((np.maximum, high), (np.minimum, low)):
        _window_extreme(op, padded, k, 0, column, pairs)
        _window_extreme(op, column, k, 1, result, pairs)
    return np.subtract(high, low, out=high)


def _window_extreme(op, a: np.ndarray, k: int, axis: int, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """``op`` (maximum or minimum) over ``k`` consecutive entries along ``axis`` (0 or 1),
    valid part, into ``out``. Extremes do not round, so the pairs-of-pairs order (3 passes for
    ``k = 5`` instead of 4) gives the same values. ``scratch``: at least ``a``'s size."""
    m = a.shape[axis] - k + 1

    def part(arr, start, length):
        return arr[start:start + length] if axis == 0 else arr[:, start:start + length]

    if k < 4:
        op(part(a, 0, m), part(a, 1, m), out=out)
        for i in range(2, k):
            op(out, part(a, i, m), out=out)
        return out
    # pairs: max(a[i], a[i+1]); quads: max(pairs[i], pairs[i+2]); then the rest one by one
    length = a.shape[axis] - 1
    shape = list(a.shape)
    shape[axis] = length
    pairs = scratch.reshape(-1)[:int(np.prod(shape))].reshape(shape)
    op(part(a, 0, length), part(a, 1, length), out=pairs)
    op(part(pairs, 0, m), part(pairs, 2, m), out=out)
    for i in range(4, k):
        op(out, part(a, i, m), out=out)
    return out


def _smooth(t: np.ndarray, flat: np.ndarray, finite: bool, spec: _Spec, scratch: _Scratch) -> np.ndarray:
    """The iterated, clamped box filter over the flat pixels of one box; the result is valid at
    its flat pixels (its other pixels hold 0).

    Per iteration: ``z <- clamp(mean(pad(z)) / mean(pad(flat)), lo, hi)`` where ``z`` is the
    image times the flat mask, and ``lo = hi = 0`` off the flat pixels, which keeps ``z`` at 0
    there, so non-flat pixels add nothing to their neighbours' means, as in the definition.
    """
    n, w, c = t.shape
    r = spec.radius
    k = 2 * r + 1
    z_padded = scratch.get("z", (n + 2 * r, w + 2 * r, c))
    z = z_padded[r:-r, r:-r]
    z[...] = flat  # the mask first, as floats, for the denominator
    _replicate_edges(z_padded, r)
    column = scratch.get("sum_column", (n, w + 2 * r, c))
    den = _box_mean(z_padded, k, column, scratch.get("den", (n, w, c)))
    den += den == 0  # 0 only off the flat pixels, whose numerator is 0: 0 / 1 keeps them at 0
    np.multiply(t, flat, out=z)
    if not finite:  # NaN or inf times 0 is NaN: off the flat pixels z must be 0
        np.nan_to_num(z, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    half = np.float32(0.5 * spec.q)
    lo = np.subtract(z, half, out=scratch.get("lo", (n, w, c)))
    lo *= flat
    hi = np.add(z, half, out=scratch.get("hi", (n, w, c)))
    hi *= flat
    num = scratch.get("num", (n, w, c))
    for _ in range(spec.iterations):
        _replicate_edges(z_padded, r)
        _box_mean(z_padded, k, column, num)
        num /= den
        np.maximum(num, lo, out=num)
        np.minimum(num, hi, out=z)
    return z


def _box_mean(padded: np.ndarray, k: int, column: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``k x k`` mean of an already padded ``HxWxC`` array (valid), as a column then a row pass:
    each pass adds its ``k`` values in window order and divides by ``k``, which is exactly
    what ``avg_pool2d`` computes, rounding included."""
    n, w = out.shape[:2]
    np.add(padded[0:n], padded[1:n + 1], out=column)
    for i in range(2, k):
        column += padded[i:i + n]
    column /= np.float32(k)
    np.add(column[:, 0:w], column[:, 1:w + 1], out=out)
    for i in range(2, k):
        out += column[:, i:i + w]
    out /= np.float32(k)
    return out


def _replicate_edges(padded: np.ndarray, r: int) -> None:
    """Fill the ``r`` outer rows and columns of ``padded`` with copies of its inner edge."""
    n, w = padded.shape[:2]
    padded[r:n - r, :r] = padded[r:n - r, r:r + 1]
    padded[r:n - r, w - r:] = padded[r:n - r, w - r - 1:w - r]
    padded[:r] = padded[r:r + 1]
    padded[n - r:] = padded[n - r - 1:n - r]


def _flat_boxes(flat: np.ndarray, radius: int) -> list[tuple[int, int, int, int]]:
    """Boxes ``(y0, y1, x0, x1)`` that hold every flat pixel: one per run of rows with flat
    pixels (runs apart by ``radius`` or more empty rows cannot reach each other), spanning the
    run's flat columns, one empty row and column added on each side (clamped).

    Smoothing a box on its own, its edges replicated, is exact: the added row and column hold
    no flat pixel, so their replicas are the zeros the image has there (or the box edge is the
    region's own edge, replicated either way).
    """
    n, w = flat.shape[:2]
    rows = np.flatnonzero(flat.reshape(n, -1).any(axis=1))
    if rows.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(rows) > radius)
    boxes = []
    for first, last in zip(np.r_[rows[0], rows[breaks + 1]], np.r_[rows[breaks], rows[-1]]):
        cols = np.flatnonzero(flat[first:last + 1].any(axis=0).any(axis=-1))
        boxes.append((max(0, int(first) - 1), min(n, int(last) + 2),
                      max(0, int(cols[0]) - 1), min(w, int(cols[-1]) + 2)))
    return boxes
