"""Tiled inference with overlap and feathered blending, for images of any size.

:func:`run_tiled` cuts a ``(1, C, H, W)`` tensor into a grid of tiles, calls a function on
each tile and accumulates the weighted results *in place* into the output, so the working
memory is bounded by the tile size, not by the image size (the input and the output
arrays themselves are the caller's).

Blending: along each axis a tile's weight is 0 for the ``overlap // 4`` pixels next to an
inner tile edge (where a network sees padding instead of real neighbours), then rises
smoothly to 1 across the rest of the overlap. Image borders get no ramp. The windows of
a grid are separable, so they are normalised per axis before accumulating: no weight
image is kept and no final division pass is needed.

Panoramas (``wrap_x=True``): tiles continue across the 0/360 degree seam (their columns
are taken modulo the width), so the seam is blended like any other tile boundary. When
one tile spans the whole width the function is told (``wrap_x=True``) so it can pad
circularly itself.
"""

from __future__ import annotations

import math
from typing import Callable, Protocol

import torch


class TileFunction(Protocol):
    def __call__(self, tile: torch.Tensor, *, wrap_x: bool) -> torch.Tensor:
        """``(1, C, h, w)`` -> ``(1, C_out, h, w)``; ``wrap_x``: the tile is a whole periodic row."""


def _starts(size: int, tile: int, overlap: int, wrap: bool) -> list[int]:
    """Tile start positions along one axis (tiles of length ``min(tile, size)``)."""
    if size <= tile:
        return [0]
    step = tile - overlap
    if wrap:
        n = math.ceil(size / step)
        return [round(i * size / n) for i in range(n)]
    n = math.ceil((size - overlap) / step)
    n = max(n, 2)
    return [round(i * (size - tile) / (n - 1)) for i in range(n)]


def _ramp(length: int, overlap: int, left: bool, right: bool) -> torch.Tensor:
    """1-D window of ``length``: zero margin then a smooth rise at the edges that need one."""
    w = torch.ones(length, dtype=torch.float64)
    if overlap <= 0:
        return w
    margin = overlap // 4
    rise = max(1, overlap - 2 * margin)
    d = torch.arange(length, dtype=torch.float64)
    ramp = ((d - margin + 1) / (rise + 1)).clamp(0.0, 1.0)
    ramp = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: no kink where tiles meet
    if left:
        w = w * ramp
    if right:
        w = w * ramp.flip(0)
    return w


def _axis_windows(size: int, tile: int, overlap: int, wrap: bool) -> list[tuple[int, int, torch.Tensor]]:
    """``(start, length, normalised window)`` per tile along one axis.

    The windows sum to exactly 1 at every position (``wrap``: positions taken modulo
    ``size``).
    """
    length = min(tile, size)
    starts = _starts(size, tile, overlap, wrap)
    single = len(starts) == 1
    raw = []
    for s in starts:
        if single:
            w = torch.ones(length, dtype=torch.float64)
        elif wrap:
            w = _ramp(length, overlap, True, True)
        else:
            w = _ramp(length, overlap, s > 0, s + length < size)
        raw.append(w)
    total = torch.zeros(size, dtype=torch.float64)
    for s, w in zip(starts, raw):
        idx = (torch.arange(length) + s) % size
        total.index_add_(0, idx, w)
    if bool((total <= 0).any()):
        raise ValueError(f"tiling leaves gaps (size {size}, tile {tile}, overlap {overlap})")
    out = []
    for s, w in zip(starts, raw):
        idx = (torch.arange(length) + s) % size
        out.append((s, length, (w / total[idx]).float()))
    return out


def _segments(start: int, length: int, size: int) -> list[tuple[int, int, int]]:
    """Split ``[start, start + length)`` modulo ``size`` into ``(src_offset, dst_start, n)`` runs."""
    first = min(length, size - start)
    runs = [(0, start, first)]
    if first < length:
        runs.append((first, 0, length - first))
    return runs


def run_tiled(fn: TileFunction | Callable, image_nchw: torch.Tensor, tile: int, overlap: int, wrap_x: bool = False,
              *, out: torch.Tensor | None = None,
              progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Apply ``fn`` tile by tile and blend the results.

    Args:
        fn: ``fn(tile (1, C, h, w), *, wrap_x: bool) -> (1, C_out, h, w)``; ``wrap_x`` is
            True only for a tile that is a whole panorama row span (it may pad circularly).
        image_nchw: ``(1, C, H, W)`` float tensor (may be a non-contiguous view).
        tile: tile edge in pixels (tiles are ``min(tile, H) x min(tile, W)``).
        overlap: pixels shared by neighbouring tiles (``0 <= overlap < tile / 2``).
        wrap_x: the image is a 360 panorama: tiles wrap around horizontally.
        out: optional ``(1, C_out, H, W)`` float32 tensor to accumulate into (overwritten;
            may be a view of a numpy array). Allocated if None.
        progress: called as ``progress(tiles_done, tiles_total)`` after every tile.

    Returns:
        ``out``: the blended ``(1, C_out, H, W)`` result.
    """
    if image_nchw.ndim != 4 or image_nchw.shape[0] != 1:
        raise ValueError(f"expected a (1, C, H, W) tensor, got shape {tuple(image_nchw.shape)}")
    if tile < 1 or not 0 <= overlap < max(1, tile / 2):
        raise ValueError(f"need tile >= 1 and 0 <= overlap < tile / 2, got tile {tile}, overlap {overlap}")
    _, _, h, w = image_nchw.shape
    rows = _axis_windows(h, tile, overlap, False)
    cols = _axis_windows(w, tile, overlap, wrap_x)
    whole_row = wrap_x and len(cols) == 1
    if out is not None:
        out.zero_()
    total, done = len(rows) * len(cols), 0
    for y0, th, wy in rows:
        band = image_nchw[..., y0:y0 + th, :]
        for x0, tw, wx in cols:
            runs = _segments(x0, tw, w)
            if len(runs) == 1:
                piece = band[..., x0:x0 + tw].contiguous()
            else:
                piece = torch.cat([band[..., d:d + n] for _, d, n in runs], dim=-1).contiguous()
            result = fn(piece, wrap_x=whole_row)
            if result.shape[0] != 1 or result.shape[-2:] != piece.shape[-2:]:
                raise ValueError(f"tile function returned shape {tuple(result.shape)} for a tile of "
                                 f"shape {tuple(piece.shape)}")
            if out is None:
                out = torch.zeros((1, result.shape[1], h, w), dtype=torch.float32)
            weighted = result.float() * (wy[:, None] * wx[None, :])
            for src, dst, n in runs:
                out[..., y0:y0 + th, dst:dst + n] += weighted[..., src:src + n]
            done += 1
            if progress is not None:
                progress(done, total)
    return out
