"""Learned highlight restoration: a masked-feature U-Net in the log domain.

The network follows Santos, Ren & Kalantari (2020): it works on log radiance, the
features of the encoder are multiplied by a *valid* mask (1 - saturation mask) so that
clipped content does not pollute them, and the mask is propagated to the next layer by
convolving it with the layer's own weights, ``|W| / (||W||_1 + eps)``. We use one mask
channel per layer (the kernel is ``|W|`` summed over input and output channels, then
normalised) instead of one per feature channel: it keeps the mask update almost free.

Two additions for lighting:

* a *global-context* branch: a small encoder of the whole image, downsampled to 128
  pixels on the long side, pooled to one vector that modulates (FiLM: scale and shift) the
  bottleneck of every tile. A tile that holds a clipped sun then knows how bright the sky
  and the shadows of the whole scene are;
* *panorama awareness*: with ``wrap=True`` every convolution pads columns circularly
  (longitude 0 and 360 degrees are neighbours) and pads rows across the poles (the row
  beyond the zenith is the same row seen from the opposite longitude); otherwise rows and
  columns are replicated.

Output: ``hdr = (1 - M) * linear + M * exp(y)`` where ``y`` is the network's log-radiance
prediction, so pixels with ``M = 0`` keep their linearized values exactly. The network
runs at half resolution internally (pixel unshuffle in, pixel shuffle out), which quarters
the cost and is enough for content that the input does not encode anyway. Images larger
than ``max_side`` are processed at an integer fraction of their size and the predicted
log-increase is upsampled (see :func:`restore_highlights_learned`); tiles without a
clipped pixel skip the network entirely.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import Ldr2HdrError, WeightsError
from .pipeline import PRECISIONS

logger = logging.getLogger(__name__)

WEIGHTS_FILE = Path(__file__).resolve().parent.parent / "weights" / "highlight_net.safetensors"
#: Offset inside the log so black pixels stay finite (about 1/3 of an sRGB code value 1).
LOG_EPS = 1e-4
#: The network's input/output side must be a multiple of this (pixel unshuffle + 3 poolings).
SIZE_MULTIPLE = 16
#: Long side of the downsampled whole image the global-context branch sees.
GLOBAL_SIZE = 128
#: Upper bound on the predicted log radiance (e^30 ~ 1e13 x the clip level): keeps exp finite.
MAX_LOG = 30.0
#: Images with a shorter long side are enlarged for the network (see restore_highlights_learned).
MIN_SIDE = 512
DEFAULT_CHANNELS = (24, 48, 80, 128)
GLOBAL_DIM = 96


def to_log(linear: torch.Tensor) -> torch.Tensor:
    """Log radiance used by the network: ``log(max(x, 0) + LOG_EPS)``."""
    return torch.log(linear.clamp_min(0.0) + LOG_EPS)


# ----------------------------------------------------------------------------- padding


def pad_image(x: torch.Tensor, p: int, wrap: bool) -> torch.Tensor:
    """Pad ``(B, C, H, W)`` by ``p`` on every side.

    ``wrap=False``: replicate. ``wrap=True`` (the tensor is a whole equirect panorama):
    columns wrap around; rows beyond the top/bottom are taken across the pole, i.e. the
    mirrored rows shifted by half the width (requires an even width, else replicate).
    """
    if p == 0:
        return x
    if not wrap:
        return F.pad(x, (p, p, p, p), mode="replicate")
    h, w = x.shape[-2:]
    if w % 2 == 0 and h > p:
        top = torch.roll(x[..., 1:p + 1, :].flip(-2), w // 2, dims=-1)
        bottom = torch.roll(x[..., h - p - 1:h - 1, :].flip(-2), w // 2, dims=-1)
        x = torch.cat([top, x, bottom], dim=-2)
    else:
        x = F.pad(x, (0, 0, p, p), mode="replicate")
    return torch.cat([x[..., -p:], x, x[..., :p]], dim=-1)


class Conv(nn.Module):
    """3x3 convolution with explicit (replicate or panorama) padding."""

    def __init__(self, cin: int, cout: int, k: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=0)
        self.p = k // 2

    def forward(self, x: torch.Tensor, wrap: bool) -> torch.Tensor:
        return self.conv(pad_image(x, self.p, wrap))


class MaskedConv(Conv):
    """Masked-feature convolution (Santos et al. 2020).

    ``forward(x, valid)`` returns ``conv(x * valid)`` and the updated valid mask
    ``conv(valid, |W| / (||W||_1 + eps))`` (one mask channel; see module doc).
    """

    def forward(self, x: torch.Tensor, valid: torch.Tensor, wrap: bool) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(pad_image(x * valid, self.p, wrap))
        k = self.conv.weight.abs().sum(dim=(0, 1), keepdim=True)
        k = k / (k.sum() + 1e-8)
        v = F.conv2d(pad_image(valid, self.p, wrap), k.detach())
        return y, v.clamp(0.0, 1.0)


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


# ----------------------------------------------------------------------------- model


class GlobalEncoder(nn.Module):
    """Whole-image context: ``(B, 4, h, w)`` (log RGB + mask, long side ~128) -> ``(B, dim)``."""

    def __init__(self, dim: int = GLOBAL_DIM):
        super().__init__()
        chans = (4, 16, 32, 64, dim)
        self.convs = nn.ModuleList(Conv(a, b) for a, b in zip(chans[:-1], chans[1:]))
        self.out = nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor, wrap: bool) -> torch.Tensor:
        for conv in self.convs:
            x = _act(conv(x, wrap))
            if min(x.shape[-2:]) >= 2:
                x = F.avg_pool2d(x, 2, ceil_mode=True)
        pooled = torch.cat([x.mean(dim=(-2, -1)), x.amax(dim=(-2, -1))], dim=1)
        return _act(self.out(pooled))


class HighlightNet(nn.Module):
    """Masked-feature U-Net predicting log radiance ``(B, 3, H, W)``.

    Inputs of :meth:`forward`: ``linear`` ``(B, 3, H, W)`` relative radiance (clip level
    1, >= 0), ``mask`` ``(B, 1, H, W)`` saturation mask in [0, 1], ``context`` ``(B, GLOBAL_DIM)``
    from :meth:`context` (of the whole image). ``H`` and ``W`` must be multiples of 16.
    """

    def __init__(self, *, channels: tuple[int, ...] = DEFAULT_CHANNELS, global_dim: int = GLOBAL_DIM):
        super().__init__()
        c1, c2, c3, c4 = channels
        self.channels = tuple(channels)
        self.global_encoder = GlobalEncoder(global_dim)
        self.enc = nn.ModuleList([
            MaskedConv(16, c1), MaskedConv(c1, c1),
            MaskedConv(c1, c2), MaskedConv(c2, c2),
            MaskedConv(c2, c3), MaskedConv(c3, c3),
            MaskedConv(c3, c4), MaskedConv(c4, c4),
        ])
        self.film = nn.Linear(global_dim, 2 * c4)
        self.bottleneck = Conv(c4, c4)
        self.fuse = nn.ModuleList([nn.Conv2d(c4 + c3, c3, 1), nn.Conv2d(c3 + c2, c2, 1), nn.Conv2d(c2 + c1, c1, 1)])
        self.dec = nn.ModuleList([Conv(c3, c3), Conv(c2, c2), Conv(c1, c1)])
        self.head = Conv(c1, 12)
        # Start as "the clipped region is a bit brighter than the clip level" rather than noise.
        nn.init.zeros_(self.head.conv.weight)
        nn.init.constant_(self.head.conv.bias, 0.5)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    @staticmethod
    def global_input(linear: torch.Tensor, mask: torch.Tensor, size: int = GLOBAL_SIZE) -> torch.Tensor:
        """Whole image -> ``(B, 4, h, w)`` with long side ``size`` (area average in linear, then log)."""
        h, w = linear.shape[-2:]
        s = size / max(h, w)
        gh, gw = max(1, round(h * s)), max(1, round(w * s))
        if (gh, gw) != (h, w):
            linear = F.adaptive_avg_pool2d(linear, (gh, gw))
            mask = F.adaptive_avg_pool2d(mask, (gh, gw))
        return torch.cat([to_log(linear) / 4.0, mask], dim=1)

    def context(self, linear: torch.Tensor, mask: torch.Tensor, wrap: bool) -> torch.Tensor:
        """Global-context vector ``(B, GLOBAL_DIM)`` of whole images."""
        return self.global_encoder(self.global_input(linear, mask), wrap)

    def forward(self, linear: torch.Tensor, mask: torch.Tensor, context: torch.Tensor, wrap: bool = False) -> torch.Tensor:
        h, w = linear.shape[-2:]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise ValueError(f"HighlightNet input must be a multiple of {SIZE_MULTIPLE}, got {h}x{w}")
        xlog = to_log(linear)
        valid = 1.0 - mask
        x = torch.cat([xlog / 4.0 * valid, mask], dim=1)
        x = F.pixel_unshuffle(x, 2)
        v = F.avg_pool2d(valid, 2)
        skips = []
        for level in range(4):
            if level:
                x = F.avg_pool2d(x, 2)
                v = F.avg_pool2d(v, 2)
            x, v = self.enc[2 * level](x, v, wrap)
            x = _act(x)
            x, v = self.enc[2 * level + 1](x, v, wrap)
            x = _act(x)
            skips.append(x)
        gamma, beta = self.film(context).chunk(2, dim=1)
        x = x * (1.0 + gamma[..., None, None]) + beta[..., None, None]
        x = _act(self.bottleneck(x, wrap))
        for i in range(3):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = _act(self.fuse[i](torch.cat([x, skips[2 - i]], dim=1)))
            x = _act(self.dec[i](x, wrap))
        y = F.pixel_shuffle(self.head(x, wrap), 2)
        # Predict the increase over the input's log radiance: the clipped value is a lower bound.
        return (xlog + y).clamp(max=MAX_LOG)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- weights


def save_weights(model: HighlightNet, path: str | Path, metadata: dict | None = None) -> None:
    """Write the model's state dict as safetensors (float32) with the channel config."""
    from safetensors.torch import save_file

    meta = {"channels": ",".join(str(c) for c in model.channels), "arch": "HighlightNet"}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def model_from_state_dict(state: dict[str, torch.Tensor]) -> HighlightNet:
    """Build a :class:`HighlightNet` whose channel widths are inferred from tensor shapes; strict load."""
    try:
        c1 = state["enc.0.conv.weight"].shape[0]
        c2 = state["enc.2.conv.weight"].shape[0]
        c3 = state["enc.4.conv.weight"].shape[0]
        c4 = state["enc.6.conv.weight"].shape[0]
        g = state["global_encoder.out.weight"].shape[0]
        model = HighlightNet(channels=(c1, c2, c3, c4), global_dim=g)
        model.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError, IndexError) as exc:
        raise WeightsError(f"weights do not match the highlight network: {str(exc).splitlines()[0]}") from None
    return model.eval()


_CACHE: dict[tuple[str, str, str], HighlightNet] = {}


def load_model(weights: str | Path | None = None, device: str = "cpu") -> HighlightNet:
    """Load (and cache) the trained network; the file must pass the manifest check."""
    from safetensors.torch import load_file

    from .weights import verify_weights_file

    path = Path(weights) if weights is not None else WEIGHTS_FILE
    # Verified on every call (hashing a few MB is cheap): a file changed on disk is never
    # served from the cache.
    entry = verify_weights_file(path)
    key = (str(path.resolve()), str(entry.get("sha256")), device)
    if key not in _CACHE:
        model = model_from_state_dict(load_file(str(path)))
        _CACHE.clear()  # one model at a time: it is the memory that matters on small machines
        _CACHE[key] = model.to(device)
    return _CACHE[key]


# ----------------------------------------------------------------------------- public API


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


def _area_downsample(linear: np.ndarray, mask: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Average ``f x f`` blocks (edge blocks padded by replication), row band by row band."""
    h, w = mask.shape
    hs, ws = -(-h // f), -(-w // f)
    small_lin = np.empty((hs, ws, 3), np.float32)
    small_mask = np.empty((hs, ws), np.float32)
    rows_per_band = max(1, 256 // f)
    for s0 in range(0, hs, rows_per_band):
        s1 = min(hs, s0 + rows_per_band)
        r0, r1 = s0 * f, min(h, s1 * f)
        pad = ((0, (s1 - s0) * f - (r1 - r0)), (0, ws * f - w))
        lb = np.pad(linear[r0:r1], pad + ((0, 0),), mode="edge")
        mb = np.pad(mask[r0:r1], pad, mode="edge")
        small_lin[s0:s1] = lb.reshape(s1 - s0, f, ws, f, 3).mean(axis=(1, 3))
        small_mask[s0:s1] = mb.reshape(s1 - s0, f, ws, f).mean(axis=(1, 3))
    return small_lin, small_mask


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


REC709_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def _blend_delta_in_place(out: np.ndarray, linear: np.ndarray, mask: np.ndarray, delta_small: np.ndarray | None,
                          f: int, wrap: bool, device: str = "cpu", band: int = 256) -> None:
    """Turn a log-increase field into HDR: ``(1-M) lin + M exp(log(lin + eps) + delta)``.

    ``delta_small`` is the field at ``1/f`` resolution (upsampled bilinearly here), or None
    when ``out`` already holds it at full resolution. Works in row bands, in place; the
    blend itself is :func:`.kernels.blend` (the fused Triton kernel for CUDA tensors, the
    float32 torch reference elsewhere), run on ``device``.
    """
    from . import kernels

    # One log-increase for all three channels (luminance-weighted): the restored pixel keeps
    # the input's colour ratios. Per-channel increases put coloured fringes (e.g. a green arc)
    # around partially clipped halos, which is worse for lighting than a neutral boost.
    # Weighting before the (linear) upsampling is the same and a third of the work.
    lum = (out if delta_small is None else delta_small) @ REC709_WEIGHTS
    h, w = mask.shape
    if delta_small is not None:
        r0s, r1s, rf = _interp_axis(h, lum.shape[0], f, False)
        c0s, c1s, cf = _interp_axis(w, lum.shape[1], f, wrap)
    for r0 in range(0, h, band):
        r1 = min(h, r0 + band)
        if delta_small is not None:
            fr = rf[r0:r1, None]
            rows = (1 - fr) * lum[r0s[r0:r1]] + fr * lum[r1s[r0:r1]]
            d = (1 - cf[None, :]) * rows[:, c0s] + cf[None, :] * rows[:, c1s]
        else:
            d = lum[r0:r1]
        lin = torch.from_numpy(linear[r0:r1]).to(device).permute(2, 0, 1)[None].contiguous()
        m = torch.from_numpy(np.ascontiguousarray(mask[r0:r1])).to(device)[None, None]
        d = torch.from_numpy(np.ascontiguousarray(d, dtype=np.float32)).to(device)[None, None]
        y = to_log(lin) + d  # the blend clamps y at MAX_LOG before exp
        hdr = kernels.blend(lin, y, m, y_max=MAX_LOG)
        # mask == 0 gives (1 - 0) * lin + 0 * finite = lin exactly: unclipped pixels are untouched.
        out[r0:r1] = hdr[0].permute(1, 2, 0).cpu().numpy()


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
                               overlap: int = 64, max_side: int | None = 2048, min_side: int | None = MIN_SIDE,
                               precision: str = "auto",
                               progress: Callable[[float], None] | None = None) -> np.ndarray:
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

    Returns:
        float32 ``HxWx3`` HDR, relative radiance on the input's scale, never clamped;
        identical to ``linear`` wherever ``mask == 0``.
    """
    from .tiling import run_tiled

    linear = np.asarray(linear, dtype=np.float32)
    mask = np.asarray(mask, dtype=np.float32)
    if linear.ndim != 3 or linear.shape[2] != 3 or linear.shape[0] < 1 or linear.shape[1] < 1:
        raise Ldr2HdrError(f"expected linear HxWx3, got shape {linear.shape}")
    if mask.shape != linear.shape[:2]:
        raise Ldr2HdrError(f"mask must be HxW = {linear.shape[:2]}, got {mask.shape}")
    if not (64 <= int(tile_size) <= 8192):
        raise Ldr2HdrError(f"tile size must be between 64 and 8192 pixels, got {tile_size}")
    if not mask.any():
        return linear.copy()
    h, w = mask.shape
    u = math.ceil(min_side / max(h, w)) if min_side and max(h, w) < min_side else 1
    if u > 1:
        big_mask = np.repeat(np.repeat(mask, u, axis=0), u, axis=1)
        big = restore_highlights_learned(
            np.repeat(np.repeat(linear, u, axis=0), u, axis=1), big_mask,
            panorama=panorama, tile_size=tile_size, device=device, weights=weights, overlap=overlap,
            max_side=None, min_side=None, precision=precision, progress=progress)
        out, _ = _area_downsample(big, big_mask, u)
        keep = mask == 0
        out[keep] = linear[keep]
        return out
    device = _resolve_device(device)
    dtype = network_dtype(precision, device)
    model = weights if isinstance(weights, HighlightNet) else load_model(weights, device)
    model = model.to(device).eval()

    f = 1 if not max_side or max(h, w) <= max_side else math.ceil(max(h, w) / max_side)
    work_lin, work_mask = (linear, mask) if f == 1 else _area_downsample(linear, mask, f)
    lin_t = torch.from_numpy(work_lin).permute(2, 0, 1)[None]   # a view, no copy
    mask_t = torch.from_numpy(work_mask)[None, None]
    out = np.empty_like(linear)
    delta = out if f == 1 else np.empty_like(work_lin)
    from .kernels import autocast_context

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
    _blend_delta_in_place(out, linear, mask, None if f == 1 else delta, f, panorama, device)
    return out
