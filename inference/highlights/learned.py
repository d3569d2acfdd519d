"""Running the highlight network on an image: scale, tiles, precision and the final blend.

:func:`restore_highlights_learned` is the learned Restore Highlights step: it enlarges small
images and shrinks big ones to the scale the network (:mod:`.network`) was trained at, runs
it in feathered tiles (:mod:`.tiling`, columns wrapping around on panoramas) under the
requested precision, and blends the predicted log-increase into the clipped pixels only.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import Ldr2HdrError
from ..imaging import REC709_Y
from .network import MAX_LOG, MIN_SIDE, SIZE_MULTIPLE, HighlightNet, load_model, to_log

logger = logging.getLogger(__name__)

#: Arithmetic of the highlight network (see :func:`network_dtype`); ``pipeline.Settings`` checks it.
PRECISIONS = ("auto", "float32", "float16", "bfloat16")


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise Ldr2HdrError("device 'cuda' was requested but no CUDA GPU is available")
    if device not in ("cpu", "cuda"):
        raise Ldr2HdrError(f"device must be auto, cpu or cuda, got {device!r}")
    return device


def _pad_to_multiple(x: torch.Tensor, wrap: bool) -> tuple[torch.Tensor, int, int, bool]:
    """Pad ``(B, C, h, w)`` to multiples of 16; returns the tensor, offsets, and whether the
    result can still be treated as periodic (only when no columns had to be added)."""
    h, w = x.shape[-2:]
    ph = (-h) % SIZE_MULTIPLE
    pw = (-w) % SIZE_MULTIPLE
    if wrap and pw:
        # A width that is not a multiple of 16 cannot stay exactly periodic: extend it with
        # real neighbours across the seam instead, and run without wrap.
        extra = pw + 2 * SIZE_MULTIPLE
        left = extra // 2
        x = torch.cat([x[..., w - left:], x, x[..., :extra - left]], dim=-1) if left <= w else \
            F.pad(x, (left, extra - left, 0, 0), mode="circular")
        x = F.pad(x, (0, 0, ph // 2, ph - ph // 2), mode="replicate") if ph else x
        return x, ph // 2, left, False
    if ph or pw:
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate")
    return x, ph // 2, pw // 2, wrap


#: Images whose long side exceeds this run the network at an integer fraction of their size.
MAX_SIDE = 2048


def network_factor(height: int, width: int, max_side: int | None = MAX_SIDE) -> int:
    """The integer ``f`` by which an image is area-downsampled for the network (1: full size)."""
    return 1 if not max_side or max(height, width) <= max_side else math.ceil(max(height, width) / max_side)


def area_downsample(linear: np.ndarray, mask: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Average ``f x f`` blocks (edge blocks padded by replication), row band by row band.

    Each output row depends only on its own ``f`` input rows, so row bands that start at
    multiples of ``f`` give the same rows as the whole image (``inference.banded`` relies on it)."""
    h, w = mask.shape
    hs, ws = -(-h // f), -(-w // f)
    small_lin = np.empty((hs, ws, 3), np.float32)
    small_mask = np.empty((hs, ws), np.float32)
    rows_per_band = max(1, 256 // f)
    for s0 in range(0, hs, rows_per_band):
        s1 = min(hs, s0 + rows_per_band)
        r0, r1 = s0 * f, min(h, s1 * f)
        pad = ((0, (s1 - s0) * f - (r1 - r0)), (0, ws * f - w))
        lb, mb = linear[r0:r1], mask[r0:r1]
        if pad[0][1] or pad[1][1]:  # only edge blocks need the replicated copy
            lb, mb = np.pad(lb, pad + ((0, 0),), mode="edge"), np.pad(mb, pad, mode="edge")
        small_lin[s0:s1] = _block_mean(lb, f)
        small_mask[s0:s1] = _block_mean(mb, f)
    return small_lin, small_mask


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Mean of ``f x f`` blocks of ``a`` (rows and columns multiples of ``f``; any trailing axes):
    ``f`` strided row slices added, then ``f`` strided column slices, float32. Several times
    faster than ``reshape(...).mean(axis=(1, 3))``, whose reduction over short interleaved axes
    dominated the highlight step's downsampling of large panoramas."""
    rows = a[0::f].astype(np.float32, copy=True)
    for k in range(1, f):
        rows += a[k::f]
    out = rows[:, 0::f].copy()
    for k in range(1, f):
        out += rows[:, k::f]
    out *= np.float32(1.0 / (f * f))
    return out


def _interp_axis(n_out: int, n_in: int, f: int, wrap: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear (half-pixel centres) source indices and weights for upsampling by ``f``."""
    src = (np.arange(n_out) + 0.5) / f - 0.5
    i0 = np.floor(src).astype(np.int64)
    frac = (src - i0).astype(np.float32)
    i1 = i0 + 1
    if wrap:
        i0, i1 = i0 % n_in, i1 % n_in
    else:
        i0, i1 = np.clip(i0, 0, n_in - 1), np.clip(i1, 0, n_in - 1)
    return i0, i1, frac




class LogIncrease:
    """The network's log-increase field at ``1/f`` resolution, upsampled bilinearly and
    reduced to one luminance-weighted value per pixel, row band by row band.

    One log-increase for all three channels (luminance-weighted): the restored pixel keeps
    the input's colour ratios. Per-channel increases put coloured fringes (e.g. a green arc)
    around partially clipped halos, which is worse for lighting than a neutral boost.
    Weighting before the (linear) upsampling is the same and a third of the work.
    """

    def __init__(self, delta: np.ndarray, height: int, width: int, f: int, wrap: bool):
        """``delta``: ``(h', w', 3)`` log-increase; ``f == 1``: it is already full size."""
        self.lum = delta @ REC709_Y
        self.f = f
        if f > 1:
            self.r0s, self.r1s, self.rf = _interp_axis(height, self.lum.shape[0], f, False)
            self.c0s, self.c1s, self.cf = _interp_axis(width, self.lum.shape[1], f, wrap)

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """Full-resolution rows ``r0:r1`` of the field, float32 ``(r1 - r0, W)``."""
        if self.f == 1:
            return self.lum[r0:r1]
        fr = self.rf[r0:r1, None]
        rows = (1 - fr) * self.lum[self.r0s[r0:r1]] + fr * self.lum[self.r1s[r0:r1]]
        return (1 - self.cf[None, :]) * rows[:, self.c0s] + self.cf[None, :] * rows[:, self.c1s]


def blend_rows(linear: np.ndarray, mask: np.ndarray, increase: np.ndarray, device: str = "cpu") -> np.ndarray:
    """HDR of some rows: ``(1-M) lin + M exp(log(lin + eps) + d)``, float32 ``(n, W, 3)``.

    ``linear`` ``(n, W, 3)``, ``mask`` ``(n, W)``, ``increase`` ``(n, W)`` (:meth:`LogIncrease.rows`).
    The blend itself is :func:`.kernels.blend` (the fused Triton kernel for CUDA tensors, the
    float32 torch reference elsewhere), run on ``device``; elementwise, so any row split gives
    the same pixels (up to the last bit where torch's vectorized and scalar loops differ).
    """
    from .. import kernels

    # mask == 0 gives (1 - 0) * lin + 0 * finite = lin exactly: unclipped pixels are untouched,
    # so only the pixels under the mask (a few percent of most photos) go through the blend
    # when the increase is finite (a NaN must stay visible, as the blend keeps it)
    under = np.asarray(mask) > 0
    if under.all() or not np.isfinite(increase).all():
        under = None
    lin = linear if under is None else linear[under][None]
    m = mask if under is None else mask[under][None]
    d = increase if under is None else increase[under][None]
    lin_t = torch.from_numpy(np.ascontiguousarray(lin, dtype=np.float32)).to(device).permute(2, 0, 1)[None].contiguous()
    m_t = torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32)).to(device)[None, None]
    d_t = torch.from_numpy(np.ascontiguousarray(d, dtype=np.float32)).to(device)[None, None]
    y = to_log(lin_t) + d_t  # the blend clamps y at MAX_LOG before exp
    hdr = kernels.blend(lin_t, y, m_t, y_max=MAX_LOG)[0].permute(1, 2, 0).cpu().numpy()
    if under is None:
        return hdr
    out = np.array(linear, dtype=np.float32)
    out[under] = hdr[0]
    return out


def _blend_delta_in_place(out: np.ndarray, linear: np.ndarray, mask: np.ndarray, delta_small: np.ndarray | None,
                          f: int, wrap: bool, device: str = "cpu", band: int = 256) -> None:
    """Turn a log-increase field into HDR (:func:`blend_rows`), in row bands, in place.

    ``delta_small`` is the field at ``1/f`` resolution (upsampled bilinearly here), or None
    when ``out`` already holds it at full resolution.
    """
    h, w = mask.shape
    increase = LogIncrease(out if delta_small is None else delta_small, h, w, f if delta_small is not None else 1, wrap)
    for r0 in range(0, h, band):
        r1 = min(h, r0 + band)
        out[r0:r1] = blend_rows(linear[r0:r1], mask[r0:r1], increase.rows(r0, r1), device)


def network_dtype(precision: str, device: str) -> torch.dtype | None:
    """The autocast dtype for the network: ``auto`` is bfloat16 (float16 where the GPU has no
    bfloat16) on CUDA and float32 on the CPU; None means full precision."""
    if precision not in PRECISIONS:
        raise Ldr2HdrError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        if device != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None if precision == "float32" else getattr(torch, precision)


def restore_highlights_learned(linear: np.ndarray, mask: np.ndarray, *, panorama: bool, tile_size: int = 512,
                               device: str = "cpu", weights: str | Path | HighlightNet | None = None,
                               overlap: int = 64, max_side: int | None = MAX_SIDE, min_side: int | None = MIN_SIDE,
                               precision: str = "auto",
                               progress: Callable[[float], None] | None = None,
                               in_place: bool = False) -> np.ndarray:
    """Bring back the radiance of clipped regions with the learned network.

    Args:
        linear: float32 ``HxWx3`` linearized relative radiance (clip level 1, >= 0).
        mask: float32 ``HxW`` soft saturation mask in [0, 1] (0 reliable, 1 clipped), e.g.
            :func:`crf.dequantize.soft_saturation_mask` of the LDR input.
        panorama: the image is a 360 equirectangular map (columns wrap around).
        tile_size: tile edge in pixels (memory is bounded by it, not by the image size).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        weights: a safetensors path (checked against the manifest), a loaded model, or None
            for ``weights/highlight_net.safetensors``.
        overlap: pixels shared by neighbouring tiles (feathered).
        max_side: images whose long side exceeds this are processed by the network at an
            integer fraction ``1/f`` of their size (area-averaged); the network's
            log-increase is upsampled bilinearly and applied at full resolution, so the
            unclipped pixels and the edges of the mask stay sharp. The network was trained
            at about 1k-pixel panorama scale; None disables it.
        min_side: images whose long side is below this are enlarged by an integer factor
            ``u`` (pixel repetition) so the long side reaches it, restored, and area-averaged
            back (which keeps the restored energy): a clipped sun in a 256x128 panorama then
            looks to the network as it does in the 512x256 panoramas it was trained on.
            Unclipped pixels stay exactly as they were. None or 0 disables it.
        precision: the network's arithmetic: ``float32``, ``float16``/``bfloat16`` (autocast;
            the blend stays float32), or ``auto`` (half precision on CUDA, float32 on CPU).
        progress: called with the fraction of tiles done (0..1) after every tile.
        in_place: the caller no longer needs ``linear``: when the network runs at a fraction of
            the size (the long side over ``max_side``), the result is written into ``linear``
            (band by band, each band read before it is written) instead of a new array, which
            saves a whole image (0.4 GB at 8192x4096). Smaller images get a new array anyway.

    Returns:
        float32 ``HxWx3`` HDR, relative radiance on the input's scale, never clamped;
        identical to ``linear`` wherever ``mask == 0``.
    """
    linear = np.asarray(linear, dtype=np.float32)
    mask = np.asarray(mask, dtype=np.float32)
    if linear.ndim != 3 or linear.shape[2] != 3 or linear.shape[0] < 1 or linear.shape[1] < 1:
        raise Ldr2HdrError(f"expected linear HxWx3, got shape {linear.shape}")
    if mask.shape != linear.shape[:2]:
        raise Ldr2HdrError(f"mask must be HxW = {linear.shape[:2]}, got {mask.shape}")
    if not (64 <= int(tile_size) <= 8192):
        raise Ldr2HdrError(f"tile size must be between 64 and 8192 pixels, got {tile_size}")
    if not mask.any():
        return linear if in_place else linear.copy()
    h, w = mask.shape
    u = math.ceil(min_side / max(h, w)) if min_side and max(h, w) < min_side else 1
    if u > 1:
        big_mask = np.repeat(np.repeat(mask, u, axis=0), u, axis=1)
        big = restore_highlights_learned(
            np.repeat(np.repeat(linear, u, axis=0), u, axis=1), big_mask,
            panorama=panorama, tile_size=tile_size, device=device, weights=weights, overlap=overlap,
            max_side=None, min_side=None, precision=precision, progress=progress)
        out, _ = area_downsample(big, big_mask, u)
        keep = mask == 0
        out[keep] = linear[keep]
        return out
    device = _resolve_device(device)
    f = network_factor(h, w, max_side)
    work_lin, work_mask = (linear, mask) if f == 1 else area_downsample(linear, mask, f)
    # f == 1: the network writes its log-increase into ``out`` while the blend still reads ``linear``
    out = linear if in_place and f > 1 and linear.flags.writeable else np.empty_like(linear)
    delta = network_log_increase(work_lin, work_mask, panorama=panorama, tile_size=tile_size, device=device,
                                 weights=weights, overlap=overlap, precision=precision, progress=progress,
                                 out=out if f == 1 else None)
    _blend_delta_in_place(out, linear, mask, None if f == 1 else delta, f, panorama, device)
    return out


def network_log_increase(linear: np.ndarray, mask: np.ndarray, *, panorama: bool, tile_size: int = 512,
                         device: str = "cpu", weights: str | Path | HighlightNet | None = None, overlap: int = 64,
                         precision: str = "auto", progress: Callable[[float], None] | None = None,
                         out: np.ndarray | None = None) -> np.ndarray:
    """The network's log-increase ``(H, W, 3)`` float32 (>= 0, 0 where unclipped) for the image
    it sees: ``linear`` ``HxWx3`` and ``mask`` ``HxW`` at the working scale (the whole image,
    or its :func:`area_downsample` when the long side is over ``max_side``). Written into
    ``out`` when given. See :func:`restore_highlights_learned` for the arguments."""
    from ..kernels import autocast_context
    from .tiling import run_tiled

    device = _resolve_device(device)
    dtype = network_dtype(precision, device)
    model = weights if isinstance(weights, HighlightNet) else load_model(weights, device)
    model = model.to(device).eval()
    lin_t = torch.from_numpy(linear).permute(2, 0, 1)[None]   # a view, no copy
    mask_t = torch.from_numpy(mask)[None, None]
    delta = np.empty_like(linear) if out is None else out

    with torch.inference_mode():
        with autocast_context(device, dtype):
            ctx = model.context(lin_t.to(device), mask_t.to(device), panorama)

        def fn(tile: torch.Tensor, *, wrap_x: bool) -> torch.Tensor:
            """Tile ``(1, 4, h, w)`` (linear + mask) -> log-increase ``(1, 3, h, w)`` (0 where unclipped)."""
            if not bool((tile[:, 3:4] > 0).any()):
                return torch.zeros_like(tile[:, :3])
            x, oy, ox, wrap = _pad_to_multiple(tile.to(device), wrap_x)
            with autocast_context(device, dtype):
                y = model(x[:, :3], x[:, 3:4], ctx, wrap)
            th, tw = tile.shape[-2:]
            y = y[..., oy:oy + th, ox:ox + tw].float().to(tile.device)
            # The input is a lower bound of the radiance (a clipped channel was at least at the
            # clip level, an unclipped one is what it is): never darken it.
            return (y - to_log(tile[:, :3])).clamp_min(0.0)

        joined = torch.cat([lin_t, mask_t], dim=1)
        run_tiled(fn, joined, int(tile_size), min(int(overlap), int(tile_size) // 4), panorama,
                  out=torch.from_numpy(delta).permute(2, 0, 1)[None],
                  progress=None if progress is None else (lambda done, total: progress(done / total)))
        del joined
    return delta
