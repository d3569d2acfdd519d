"""Learned single-image camera-response estimation (CRF-net / Linearization-Net spirit).

A small CNN looks at 128x128 patches of the photo (resized so its short side is 256 px,
by area averaging) together with hand-made intensity and edge statistics of each patch,
and predicts the photo's inverse camera response.

Curve parametrization (monotone and pinned by construction)::

    logd  = mean_logd + (coef * coef_scale) @ basis        # (1023,) log-derivative
    curve = [0, cumsum(softmax(logd))] / sum                 # (1024,)

``basis`` is a PCA basis of the log-derivatives of measured training curves (DoRF
training split, darktable base curves, NUS camera curves, random film curves); it is
stored inside the weights file. Every coefficient vector gives a strictly increasing
curve that is exactly 0 at pixel value 0 and exactly 1 at pixel value 1.

Per-channel mode: the network has four outputs per patch sharing one trunk: the gray-axis
curve and one curve per R, G, B channel (trained on per-channel camera curves). The
default returns the gray curve; ``per_channel=True`` returns the three channel curves.

Patches that are mostly clipped, mostly black or flat are skipped; the predictions of the
others are aggregated robustly (per-coefficient median, outliers dropped, mean of the
rest). Confidence combines the agreement of the kept patches with the fraction of usable
pixels. When too little of the image is usable the estimator falls back to sRGB and says
why (``method = "srgb (fallback: <reason>)"``, low confidence).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError
from ..imaging import unit_float
from ..weights import WEIGHTS_DIR
from .curves import N_SAMPLES, InverseCRF, srgb_inverse

logger = logging.getLogger(__name__)

WEIGHTS_FILE = WEIGHTS_DIR / "crf_net.safetensors"
ANALYSIS_SHORT_SIDE = 256
#: Rows converted to float at a time when shrinking an image for the analysis.
ANALYSIS_BAND_ROWS = 256
PATCH = 128
PATCH_STRIDE = 64
HIST_BINS = 64
N_INTERVALS = N_SAMPLES - 1
#: Output heads: gray-axis curve, then R, G, B curves.
N_HEADS = 4
MIN_SIDE = 16

# Patch selection thresholds (pixel values in [0, 1]).
CLIP_LEVEL = 0.985
BLACK_LEVEL = 0.02
MIN_USABLE_FRACTION = 0.5
MIN_PATCH_STD = 0.02
#: Curve RMSE between a patch's prediction and the median that marks an outlier.
OUTLIER_FLOOR = 0.02
#: Spread (RMS curve deviation of kept patches) at which agreement confidence halves.
SPREAD_HALF = 0.03

_MASS_FLOOR = 1e-7

FEATURE_DIM = 3 * HIST_BINS + 3 * HIST_BINS + 6


# ----------------------------------------------------------------------------- features


def patch_features(patches: torch.Tensor) -> torch.Tensor:
    """Intensity-histogram and edge statistics of each patch.

    Args:
        patches: ``(B, 3, h, w)`` float pixel values in [0, 1].

    Returns:
        ``(B, FEATURE_DIM)`` float32:
        * per-channel 64-bin histograms (sqrt of the frequencies),
        * a luminance histogram weighted by gradient magnitude (where edges are: edges
          mix two radiances linearly, the curve bends that mix, cf. Lin et al.),
        * mean gradient magnitude per luminance bin (the local slope of the curve scales it),
        * mean chroma (max - min channel) per luminance bin (the curve changes saturation
          with intensity),
        * clipped fraction, black fraction, mean, std, mean gradient, mean chroma.
    """
    x = patches.float().clamp(0.0, 1.0)
    b = x.shape[0]
    n = x.shape[2] * x.shape[3]
    flat = x.reshape(b, 3, n)
    idx = (flat * (HIST_BINS - 1e-3)).long()
    ones = torch.ones_like(flat)
    hist = torch.zeros(b, 3, HIST_BINS, dtype=x.dtype, device=x.device).scatter_add_(2, idx, ones) / n

    lum = x.mean(dim=1, keepdim=True)
    gx = F.pad(lum[..., :, 1:] - lum[..., :, :-1], (0, 1, 0, 0))
    gy = F.pad(lum[..., 1:, :] - lum[..., :-1, :], (0, 0, 0, 1))
    grad = torch.sqrt(gx * gx + gy * gy + 1e-12).reshape(b, n)
    chroma = (x.amax(dim=1) - x.amin(dim=1)).reshape(b, n)
    lidx = (lum.reshape(b, n) * (HIST_BINS - 1e-3)).long()
    zeros = torch.zeros(b, HIST_BINS, dtype=x.dtype, device=x.device)
    count = zeros.scatter_add(1, lidx, torch.ones_like(grad))
    gsum = zeros.scatter_add(1, lidx, grad)
    csum = zeros.scatter_add(1, lidx, chroma)
    edge_hist = gsum / gsum.sum(dim=1, keepdim=True).clamp_min(1e-6)
    mean_grad = gsum / (count + 1.0) * 10.0
    mean_chroma = csum / (count + 1.0) * 3.0

    peak = x.amax(dim=1).reshape(b, n)
    scalars = torch.stack([
        (peak >= CLIP_LEVEL).float().mean(1),
        (peak <= BLACK_LEVEL).float().mean(1),
        lum.reshape(b, n).mean(1),
        lum.reshape(b, n).std(1),
        grad.mean(1) * 10.0,
        chroma.mean(1) * 3.0,
    ], dim=1)
    return torch.cat([hist.sqrt().reshape(b, -1), edge_hist.sqrt(), mean_grad, mean_chroma, scalars], dim=1)


# ----------------------------------------------------------------------------- model


def coefficients_to_curves(coef: torch.Tensor, logd_mean: torch.Tensor, basis: torch.Tensor,
                           coef_scale: torch.Tensor) -> torch.Tensor:
    """Coefficients ``(..., K)`` -> inverse curves ``(..., 1024)``.

    Exactly 0 at index 0 and exactly 1 at index 1023 for *any* finite coefficients
    (softmax derivatives with a tiny floor, cumulative sum, divided by the total); every
    step is positive, so the curve is strictly increasing in float64 and non-decreasing
    after rounding to float32 (steps below float32 resolution near 1 can round away).
    """
    logd = logd_mean + (coef * coef_scale) @ basis
    # A 1e-7 uniform floor: extreme coefficients cannot underflow a step to exactly 0.
    d = (1.0 - _MASS_FLOOR) * torch.softmax(logd, dim=-1) + _MASS_FLOOR / logd.shape[-1]
    c = torch.cumsum(d, dim=-1)
    c = c / c[..., -1:]
    return torch.cat([torch.zeros_like(c[..., :1]), c], dim=-1)


class CRFNet(nn.Module):
    """Patch CNN + feature MLP -> PCA coefficients of the log-derivative of inverse curves.

    Input ``(B, 3, 128, 128)`` pixel values in [0, 1]; output coefficients ``(B, 4, K)``
    (gray, R, G, B). :meth:`curves` turns them into ``(B, 4, 1024)`` inverse curves.
    """

    def __init__(self, *, n_coef: int = 16, width: int = 32, hidden: int = 256, n_feat: int = FEATURE_DIM):
        super().__init__()
        self.n_coef = n_coef
        self.register_buffer("logd_mean", torch.zeros(N_INTERVALS))
        self.register_buffer("basis", torch.zeros(n_coef, N_INTERVALS))
        self.register_buffer("coef_scale", torch.ones(n_coef))
        self.register_buffer("feat_mean", torch.zeros(n_feat))
        self.register_buffer("feat_std", torch.ones(n_feat))
        w = width
        self.trunk = nn.Sequential(
            # 4x4 stride-4 stem: fine edges are already summarized by the features, and the
            # trunk must train on two shared CPU cores.
            nn.Conv2d(3, w, 4, stride=4), nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(
            nn.Linear(4 * w + n_feat, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, N_HEADS * n_coef),
        )
        # Start at the mean curve: the last layer's output is small at init.
        nn.init.normal_(self.head[-1].weight, std=1e-3)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, patches: torch.Tensor, feats: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] (+ optional precomputed features) -> coefficients ``(B, 4, K)``."""
        if feats is None:
            feats = patch_features(patches)
        h = self.trunk(patches - 0.5)
        h = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        f = (feats - self.feat_mean) / self.feat_std
        out = self.head(torch.cat([h, f], dim=1))
        return out.reshape(-1, N_HEADS, self.n_coef)

    def curves(self, coef: torch.Tensor) -> torch.Tensor:
        """Coefficients ``(..., K)`` -> inverse curves ``(..., 1024)``, see :func:`coefficients_to_curves`."""
        return coefficients_to_curves(coef, self.logd_mean, self.basis, self.coef_scale)


def model_from_state_dict(state: dict[str, torch.Tensor]) -> CRFNet:
    """Build a :class:`CRFNet` whose sizes are read from the tensor shapes, load it strictly."""
    try:
        n_coef = int(state["basis"].shape[0])
        width = int(state["trunk.0.weight"].shape[0])
        hidden = int(state["head.0.weight"].shape[0])
        n_feat = int(state["feat_mean"].shape[0])
    except KeyError as exc:
        raise WeightsError(f"weights do not describe a CRF network (missing {exc})") from None
    model = CRFNet(n_coef=n_coef, width=width, hidden=hidden, n_feat=n_feat)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"weights do not match the CRF network: {str(exc).splitlines()[0]}") from None
    return model.eval()


_CACHE: dict[tuple[str, str], CRFNet] = {}
_CACHE_LOCK = threading.Lock()


def load_model(weights: str | Path | None = None, device: str = "cpu") -> CRFNet:
    """Load (once per process, per file and device) the verified CRF network.

    Raises:
        WeightsError: missing file, no manifest entry, sha256 mismatch, not safetensors,
            or tensors that do not match the architecture.
    """
    from safetensors.torch import load_file

    from ..weights import verify_weights_file

    path = Path(weights) if weights is not None else WEIGHTS_FILE
    key = (str(path.resolve()), str(device))
    with _CACHE_LOCK:
        model = _CACHE.get(key)
        if model is None:
            verify_weights_file(path)
            model = model_from_state_dict(load_file(str(path))).to(device)
            _CACHE[key] = model
    return model


# ----------------------------------------------------------------------------- analysis


def _check_ldr(ldr: np.ndarray) -> np.ndarray:
    arr = np.asarray(ldr)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 LDR image, got shape {arr.shape}")
    return arr


def analysis_image(ldr: np.ndarray, short_side: int = ANALYSIS_SHORT_SIDE) -> torch.Tensor:
    """Resize an ``HxWx3`` image so its short side is ``short_side`` (area averaging).

    ``ldr``: float values in [0, 1], or 8/16-bit codes (:func:`..imaging.unit_float`: the
    same floats as decoding to float gives). An integer block mean first (row band by row
    band, no full-size float copy), then adaptive average pooling to the exact size.

    Returns:
        ``(1, 3, h, w)`` float32 in [0, 1], ``min(h, w) == short_side`` (or smaller if the
        image is smaller: small images are not upsampled).
    """
    arr = _check_ldr(ldr)
    h, w = arr.shape[:2]
    f = min(h, w) // short_side
    if f >= 2:
        hh, ww = (h // f) * f, (w // f) * f
        # rows first (contiguous runs of W*3 values), then columns: about 2x faster than one 5-D mean;
        # the rows in bands of whole blocks, so 8-bit codes become floats a band at a time
        rows = torch.empty((hh // f, w * 3), dtype=torch.float32)
        step = f * max(1, ANALYSIS_BAND_ROWS // f)
        for r0 in range(0, hh, step):
            band = torch.from_numpy(np.ascontiguousarray(unit_float(arr[r0:min(hh, r0 + step)])))
            rows[r0 // f:r0 // f + band.shape[0] // f] = band.reshape(-1, f, w * 3).sum(dim=1)
        t = rows.reshape(hh // f, w, 3)[:, :ww].reshape(hh // f, ww // f, f, 3).sum(dim=2) / float(f * f)
    else:
        t = torch.from_numpy(np.ascontiguousarray(unit_float(arr)))
    t = torch.nan_to_num(t, nan=0.0).clamp_(0.0, 1.0).permute(2, 0, 1)[None].contiguous()
    h2, w2 = t.shape[2:]
    s = min(h2, w2)
    if s > short_side:
        size = (max(1, round(h2 * short_side / s)), max(1, round(w2 * short_side / s)))
        t = F.adaptive_avg_pool2d(t, size)
    return t


def extract_patches(img: torch.Tensor, patch: int = PATCH, stride: int = PATCH_STRIDE) -> torch.Tensor:
    """Overlapping ``patch``-sized squares of ``(1, 3, h, w)`` -> ``(N, 3, patch, patch)``.

    Images smaller than ``patch`` give one patch: the image resized up (nearest) to ``patch``.
    """
    h, w = img.shape[2:]
    if h < patch or w < patch:
        return F.interpolate(img, size=(patch, patch), mode="nearest")
    ys = list(range(0, h - patch + 1, stride))
    xs = list(range(0, w - patch + 1, stride))
    if ys[-1] != h - patch:
        ys.append(h - patch)
    if xs[-1] != w - patch:
        xs.append(w - patch)
    return torch.cat([img[:, :, y:y + patch, x:x + patch] for y in ys for x in xs], dim=0)


def usable_fraction(patches: torch.Tensor) -> torch.Tensor:
    """Fraction ``(N,)`` of pixels per patch that are neither clipped nor black."""
    peak = patches.amax(dim=1)
    return ((peak < CLIP_LEVEL) & (peak > BLACK_LEVEL)).float().mean(dim=(1, 2))


def _fallback(reason: str, details: dict) -> InverseCRF:
    base = srgb_inverse()
    details = dict(details, fallback=reason)
    logger.info("learned CRF estimate fell back to sRGB: %s", reason)
    return InverseCRF(base.curves, f"srgb (fallback: {reason})", 0.05, details)


def _aggregate(coef: torch.Tensor, curves_of) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Robust mean of per-patch coefficients ``(N, K)``.

    Returns ``(coef (K,), kept mask (N,), spread)``: a patch is an outlier when its curve is
    farther (RMSE) from the median-coefficient curve than ``max(OUTLIER_FLOOR, 3 * MAD)``.
    """
    med = coef.median(dim=0).values
    curves = curves_of(coef)
    ref = curves_of(med[None])[0]
    dist = torch.sqrt(((curves - ref) ** 2).mean(dim=-1))
    mad = (dist - dist.median()).abs().median()
    keep = dist <= max(OUTLIER_FLOOR, float(dist.median() + 3.0 * 1.4826 * mad))
    agg = coef[keep].mean(dim=0)
    final = curves_of(agg[None])[0]
    spread = float(torch.sqrt(((curves[keep] - final) ** 2).mean()))
    return agg, keep, spread


@torch.no_grad()
def estimate_crf_learned(ldr: np.ndarray, *, per_channel: bool = False, device: str = "cpu",
                         weights: str | Path | None = None, shrink: bool = True,
                         shrink_weights: str | Path | None = None) -> InverseCRF:
    """Estimate the inverse camera response of one LDR photo with the CRF network.

    Args:
        ldr: float ``HxWx3`` pixel values in [0, 1] (display-referred, as decoded), or the
            8/16-bit codes they were decoded from (the same estimate).
        per_channel: return three channel curves ``(3, 1024)`` instead of the gray-axis
            curve ``(1, 1024)``.
        device: torch device for the network (``"cpu"``, ``"cuda"``, ``"auto"``: CUDA when present).
        weights: weights file (default ``weights/crf_net.safetensors``), verified against
            ``weights/manifest.json`` before loading.
        shrink: blend the estimate with sRGB by the trust fitted for its distance from sRGB
            (:mod:`.shrink`; ``weights/crf_shrink.safetensors`` or ``shrink_weights``); an
            estimate within the network's noise of sRGB returns sRGB exactly. ``False``: the
            network's own curve.

    Returns:
        :class:`InverseCRF` with ``method="learned"`` (or ``"srgb (fallback: ...)"``),
        ``confidence`` in [0, 1] and ``details``: ``patches`` (total), ``patches_used``,
        ``patches_kept`` (after outlier removal), ``spread`` (RMS curve deviation of kept
        patches from the result), ``usable_fraction`` and ``fallback`` (reason) if any.

    Raises:
        ValueError: not an ``HxWx3`` array.
        WeightsError: the weights are missing or fail verification.
    """
    arr = _check_ldr(ldr)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE:
        return _fallback(f"image too small ({w}x{h} px, need {MIN_SIDE})", {"patches": 0})
    img = analysis_image(arr)
    patches = extract_patches(img)
    usable = usable_fraction(patches)
    spread_px = patches.mean(dim=1).reshape(patches.shape[0], -1).std(dim=1)
    ok = (usable >= MIN_USABLE_FRACTION) & (spread_px >= MIN_PATCH_STD)
    details = {"patches": int(patches.shape[0]), "patches_used": int(ok.sum()),
               "usable_fraction": round(float(usable.mean()), 4)}
    if not bool(ok.any()):
        if float(spread_px.max()) < MIN_PATCH_STD:
            reason = "image is nearly uniform"
        else:
            reason = "too few usable pixels (mostly clipped or black)"
        return _fallback(reason, details)

    model = load_model(weights, device)
    sel = patches[ok].to(device)
    coef = model(sel).float().cpu()                      # (N, 4, K)
    cpu_model_curves = lambda c: coefficients_to_curves(  # noqa: E731 - small local helper
        c, model.logd_mean.cpu(), model.basis.cpu(), model.coef_scale.cpu())
    agg, keep, spread = _aggregate(coef[:, 0], cpu_model_curves)
    if per_channel:
        rgb = coef[keep][:, 1:].mean(dim=0)             # (3, K), same patches as the gray curve
        curves = cpu_model_curves(rgb)
    else:
        curves = cpu_model_curves(agg[None])
    n_used = int(ok.sum())
    agreement = 1.0 / (1.0 + (spread / SPREAD_HALF) ** 2)
    coverage = min(1.0, n_used / 4.0) * min(1.0, float(usable[ok].mean()) / 0.8)
    confidence = float(np.clip(agreement * (0.25 + 0.75 * coverage) * float(keep.float().mean()) ** 0.5, 0.0, 1.0))
    details.update(patches_kept=int(keep.sum()), spread=round(spread, 5),
                   per_channel=bool(per_channel))
    out = curves.double().numpy()
    # float32 storage: pin the ends exactly (they are 0 and 1 by construction up to rounding)
    out[:, 0], out[:, -1] = 0.0, 1.0
    method = "learned"
    if shrink:
        from . import shrink as shrink_mod

        srgb = srgb_inverse().curves[0].astype(np.float64)
        out, trust, dist = shrink_mod.apply(out, srgb, shrink_mod.load(shrink_weights))
        details.update(srgb_distance=round(dist, 5), trust=round(trust, 4), network_confidence=round(confidence, 4))
        expected = shrink_mod.load_expected(shrink_weights)
        if expected is not None:
            confidence = shrink_mod.confidence(dist, expected, confidence)
        if trust == 0.0:
            method = "srgb (learned: estimate within its noise of sRGB)"
    return InverseCRF(out.astype(np.float32), method, confidence, details)
