"""Training data for the CRF network: scenes, the simulated camera and synthesized LDR patches.

Everything here is for training only (it reads ../shared/data, never shipped).

Camera curves come from :mod:`crf_curves` (training/crf_curves.py).

Scenes come only from :func:`training.split.train_files` (random perspective views
reprojected from the panoramas, direct equirect crops, crops of the flat photos).
The simulated camera: white balance, exposure (0-20 % of the patch clipped), shot and
read noise, clip at 1, per-channel curve, 8-bit rounding, JPEG (quality 60-100) for part
of the samples, area downsampling of the display-referred image (as a resize of a large
JPEG does), then the same patch filter as inference.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
HDR_ROOT = DATA / "hdr"

sys.path.insert(0, str(ROOT / "training"))
import split  # noqa: E402  (training/split.py, standard library + numpy only)
from crf_curves import FAMILIES, GRID, N, CurveBank  # noqa: E402

from ldr2hdr.evaluation import synth  # noqa: E402
from ldr2hdr.inference.crf import network as crf_net  # noqa: E402

logger = logging.getLogger(__name__)

_LUT_SIZE = 16384


@dataclass
class Scene:
    name: str
    pixels: np.ndarray  # float32 HxWx3 linear, normalised to median max-channel 0.18
    equirect: bool


def load_training_scenes(root: Path = HDR_ROOT, max_width: int = 1024) -> list[Scene]:
    """Training HDRs (never an evaluation file), downsized to ``max_width`` for speed."""
    from ldr2hdr.evaluation.references import read_hdr

    scenes = []
    for path in split.train_files(root):
        assert split.is_train(path) and not split.is_eval(path)
        img = np.nan_to_num(np.maximum(read_hdr(path), 0.0), nan=0.0, posinf=0.0).astype(np.float32)
        h, w = img.shape[:2]
        f = int(math.ceil(w / max_width))
        if f > 1:
            img = img[: h // f * f, : w // f * f].reshape(h // f, f, w // f, f, 3).mean(axis=(1, 3))
        med = float(np.median(img.max(axis=2)))
        img = img / max(med, 1e-8) * 0.18
        scenes.append(Scene(path.name, np.ascontiguousarray(img, np.float32), abs(w - 2 * h) <= 2))
    return scenes


def _bilinear(img: np.ndarray, u: np.ndarray, v: np.ndarray, wrap: bool) -> np.ndarray:
    """Sample ``img`` at pixel coordinates (u = column, v = row), bilinear."""
    h, w = img.shape[:2]
    u0 = np.floor(u).astype(np.int64)
    v0 = np.clip(np.floor(v).astype(np.int64), 0, h - 1)
    fu = (u - u0)[..., None].astype(np.float32)
    fv = np.clip(v - np.floor(v), 0, 1)[..., None].astype(np.float32)
    v1 = np.clip(v0 + 1, 0, h - 1)
    if wrap:
        u0 %= w
        u1 = (u0 + 1) % w
    else:
        u0 = np.clip(u0, 0, w - 1)
        u1 = np.clip(u0 + 1, 0, w - 1)
    top = img[v0, u0] * (1 - fu) + img[v0, u1] * fu
    bot = img[v1, u0] * (1 - fu) + img[v1, u1] * fu
    return top * (1 - fv) + bot * fv


def perspective_view(pano: np.ndarray, yaw: float, pitch: float, fov_deg: float, size: int) -> np.ndarray:
    """Pinhole view ``size x size x 3`` reprojected from an equirect panorama (radians, degrees)."""
    h, w = pano.shape[:2]
    f = 0.5 * size / math.tan(math.radians(fov_deg) / 2)
    j, i = np.meshgrid(np.arange(size) + 0.5 - size / 2, np.arange(size) + 0.5 - size / 2)
    d = np.stack([j / f, -i / f, np.ones_like(j)], axis=-1)  # x right, y up, z forward
    cp, sp = math.cos(pitch), math.sin(pitch)
    y = d[..., 1] * cp + d[..., 2] * sp
    z = -d[..., 1] * sp + d[..., 2] * cp
    x = d[..., 0]
    cy, sy = math.cos(yaw), math.sin(yaw)
    x, z = x * cy + z * sy, -x * sy + z * cy
    lon = np.arctan2(x, z)
    lat = np.arctan2(y, np.hypot(x, z))
    u = (lon / (2 * math.pi) + 0.5) * w - 0.5
    v = (0.5 - lat / math.pi) * h - 0.5
    return _bilinear(pano, u, v, wrap=True)


def dead_leaves(rng: np.random.Generator, size: int) -> np.ndarray:
    """A procedural linear HDR scene ``size x size x 3`` (dead-leaves model).

    Only 33 real training scenes exist; a network that sees only them can learn the scenes
    instead of the curve. Dead leaves add unlimited scene diversity with the statistics the
    curve cues rely on: occluding shapes with a scale-invariant size distribution
    (density ~ r^-3), log-normal radiances over many stops, smooth shading gradients, a low-
    frequency illumination field, a few small bright sources, and an optical blur applied in
    the linear domain (so edges are true linear mixtures of two radiances, which the curve
    then bends).
    """
    from scipy.ndimage import gaussian_filter

    s = size
    spread = rng.uniform(0.6, 1.6)  # log-radiance std of the shapes (natural scenes: ~1-1.5)
    tint_sd = rng.uniform(0.05, 0.5)
    base = math.log(0.18)

    def colour(mu: float) -> np.ndarray:
        return np.exp(mu + rng.normal(0.0, spread) + rng.normal(0.0, tint_sd, size=3))

    img = np.empty((s, s, 3))
    img[:] = colour(base)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
    r_min, r_max = max(2.0, s / 64), s / rng.uniform(1.5, 4.0)
    n_shapes = int(rng.integers(250, 600))
    # inverse-CDF sampling of p(r) ~ r^-3 on [r_min, r_max]
    u = rng.random(n_shapes)
    radii = 1.0 / np.sqrt(u / r_max ** 2 + (1 - u) / r_min ** 2)
    for r in radii:
        cy, cx = rng.uniform(-r, s + r, size=2)
        y0, y1 = max(0, int(cy - r)), min(s, int(cy + r) + 2)
        x0, x1 = max(0, int(cx - r)), min(s, int(cx + r) + 2)
        if y0 >= y1 or x0 >= x1:
            continue
        py, px = yy[y0:y1, x0:x1] - cy, xx[y0:y1, x0:x1] - cx
        if rng.random() < 0.6:  # disc / ellipse
            a = rng.uniform(0.4, 1.0)
            inside = (py / r) ** 2 + (px / (r * a)) ** 2 <= 1.0
        else:  # rotated rectangle
            t = rng.uniform(0, math.pi)
            u1, u2 = px * math.cos(t) + py * math.sin(t), -px * math.sin(t) + py * math.cos(t)
            inside = (np.abs(u1) <= r) & (np.abs(u2) <= r * rng.uniform(0.2, 1.0))
        c = colour(base)
        if rng.random() < 0.5:  # shading across the shape (up to ~3 stops)
            g = rng.normal(0, 1.2, size=2) / max(r, 1.0)
            c = c * np.exp(np.clip(g[0] * py + g[1] * px, -2.5, 2.5))[..., None]
        else:
            c = np.broadcast_to(c, inside.shape + (3,))
        region = img[y0:y1, x0:x1]
        region[inside] = c[inside]
    # low-frequency illumination (vignetting / light falloff)
    ramp = rng.normal(0, 0.8, size=2) / s
    img *= np.exp(ramp[0] * (yy - s / 2) + ramp[1] * (xx - s / 2))[..., None]
    for _ in range(max(0, int(rng.integers(-2, 3)))):  # small bright sources (lamps, speculars)
        cy, cx = rng.uniform(0, s, size=2)
        r = rng.uniform(0.7, s / 40)
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        img += colour(base + rng.uniform(2.0, 6.0)) * np.exp(-d2 / (2 * r * r))[..., None]
    sigma = rng.uniform(0.4, 1.5)
    for ch in range(3):
        img[..., ch] = gaussian_filter(img[..., ch], sigma, mode="nearest")
    return img


def random_view(scene: Scene, rng: np.random.Generator, size: int) -> np.ndarray:
    """A random linear ``size x size x 3`` view of a scene."""
    img = scene.pixels
    h, w = img.shape[:2]
    if scene.equirect and rng.random() < 0.7:
        return perspective_view(img, rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(-45, 45)),
                                rng.uniform(40, 100), size)
    # direct crop (equirect crops look like a panorama's analysis patches)
    side = int(min(h, w) * rng.uniform(0.25, 1.0))
    side = max(side, 16)
    y0 = rng.integers(0, h - side + 1)
    x0 = rng.integers(0, w - side + 1)
    crop = torch.from_numpy(np.ascontiguousarray(img[y0:y0 + side, x0:x0 + side])).permute(2, 0, 1)[None].contiguous()
    mode = "area" if side >= size else "bilinear"
    kw = {} if mode == "area" else {"align_corners": False}
    out = F.interpolate(crop, size=(size, size), mode=mode, **kw)[0].permute(1, 2, 0).numpy()
    return out


# ----------------------------------------------------------------------------- camera


def apply_forward(exposed: np.ndarray, inv_curves: np.ndarray) -> np.ndarray:
    """Per-channel forward curve (inverse of ``inv_curves (3, 1024)``) of sensor values in [0, 1]."""
    # A dense forward lookup table + linear interpolation: np.interp's per-value binary
    # search over 1024 knots was the slowest step of the synthesis.
    # Knots dense near black (x = u^2), where measured curves are steepest.
    lut_x = np.linspace(0.0, 1.0, _LUT_SIZE) ** 2
    luts = np.stack([np.interp(lut_x, inv_curves[c] + 1e-9 * np.arange(N), GRID) for c in range(3)])
    t = np.sqrt(np.clip(exposed, 0.0, 1.0)) * (_LUT_SIZE - 1)
    i = np.minimum(t.astype(np.int64), _LUT_SIZE - 2)
    frac = t - i
    i = i + (np.arange(3) * _LUT_SIZE)
    flat = luts.ravel()
    lo = flat[i]
    return lo + frac * (flat[i + 1] - lo)


def whole_photo(scene: Scene, rng: np.random.Generator, bank: CurveBank, srgb: np.ndarray,
                srgb_share: float) -> tuple[np.ndarray, np.ndarray, str, bool, float]:
    """One simulated 8-bit photo of ``scene`` for the whole-image fits (the sRGB trust, the
    confidence study): the panorama or a 384-px view, 0.5-15 % clipped (log-uniform), plain sRGB
    with probability ``srgb_share`` else a curve of ``bank``, PNG or JPEG q90 evenly. Returns
    ``(ldr, inverse curves (3, N), family, png, clip fraction)``; the draws from ``rng`` are in a
    fixed order, so a seed gives the same photos to every script."""
    lin = scene.pixels if rng.random() < 0.5 else random_view(scene, rng, 384)
    frac = float(np.exp(rng.uniform(np.log(0.005), np.log(0.15))))
    exposed = lin / max(float(np.quantile(lin.max(-1), 1 - frac)), 1e-12)
    if rng.random() < srgb_share:
        curves, family = np.repeat(srgb[None], 3, axis=0), "srgb"
    else:
        curves, family = bank.sample(rng)
    display = apply_forward(exposed, curves).astype(np.float32)
    png = bool(rng.random() < 0.5)
    ldr = synth.quantize_png8(display) if png else synth.encode_jpeg(display, 90)
    return ldr, curves, family, png, frac


def jpeg_tiles(tiles: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip of ``(n, S, S, 3)`` tiles (S multiple of 16) encoded as one mosaic."""
    n, s = tiles.shape[:2]
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    mosaic = np.zeros((rows * s, cols * s, 3), np.float32)
    for k in range(n):
        r, c = divmod(k, cols)
        mosaic[r * s:(r + 1) * s, c * s:(c + 1) * s] = tiles[k]
    dec = synth.encode_jpeg(mosaic, quality)
    return np.stack([dec[(k // cols) * s:(k // cols + 1) * s, (k % cols) * s:(k % cols + 1) * s] for k in range(n)])


@dataclass
class Batch:
    patches: torch.Tensor  # (n, 3, 128, 128) float16 in [0, 1]
    feats: torch.Tensor    # (n, FEATURE_DIM) float32
    targets: torch.Tensor  # (n, 4, 1024) float32: gray, R, G, B inverse curves
    family: np.ndarray     # (n,) family index


def synthesize_patches(scenes: list[Scene], bank: CurveBank, rng: np.random.Generator, n: int,
                       *, patch: int = crf_net.PATCH, jpeg_fraction: float = 0.5,
                       views_per_render: int = 3, synthetic_fraction: float = 0.0) -> Batch:
    """Make ``n`` usable training patches (rejection-sampled like inference's patch filter);
    ``synthetic_fraction`` of the renders use a :func:`dead_leaves` scene."""
    out_t, out_f = [], []
    jpeg_jobs: list[tuple[int, int]] = []  # (index in renders, render scale)
    renders: list[np.ndarray] = []
    while len(renders) < n:
        scene = scenes[rng.integers(len(scenes))]
        scale = 2 if rng.random() < 0.75 else 1
        size = patch * scale
        if synthetic_fraction and rng.random() < synthetic_fraction:  # no draw when off: the old stream
            view = dead_leaves(rng, size)
        else:
            view = random_view(scene, rng, size).astype(np.float64)
        for _ in range(views_per_render):  # the reprojection is the costly part: reuse it
            lin = view * np.exp(rng.normal(0.0, 0.15, size=3))  # white balance
            peak = lin.max(axis=2)
            if rng.random() < 0.15:
                k = rng.uniform(0.3, 1.0) / max(float(peak.max()), 1e-8)
            else:
                q = float(np.quantile(peak, 1.0 - rng.uniform(0.003, 0.2)))
                if q <= 0:
                    continue
                k = 1.0 / q
            x = lin * k
            if rng.random() < 0.7:
                shot, read = rng.uniform(0, 0.02), rng.uniform(0, 0.003)
                x = x + np.sqrt(np.maximum(x, 0) * shot ** 2 + read ** 2) * rng.standard_normal(x.shape)
            x = np.clip(x, 0.0, 1.0)
            curves, fam = bank.sample(rng)
            disp = apply_forward(x, curves)
            disp = np.round(disp * 255.0) / 255.0
            renders.append(disp.astype(np.float32))
            out_t.append(curves)
            out_f.append(FAMILIES.index(fam))
            if rng.random() < jpeg_fraction:
                jpeg_jobs.append((len(renders) - 1, scale))
    # JPEG in groups of one quality and one tile size
    if jpeg_jobs:
        for scale in (1, 2):
            idx = [i for i, s in jpeg_jobs if s == scale]
            for g in range(0, len(idx), 16):
                grp = idx[g:g + 16]
                dec = jpeg_tiles(np.stack([renders[i] for i in grp]), int(rng.integers(60, 101)))
                for i, d in zip(grp, dec):
                    renders[i] = d
    small = []
    for r in renders:
        f = r.shape[0] // patch
        small.append(r.reshape(patch, f, patch, f, 3).mean(axis=(1, 3)) if f > 1 else r)
    p = torch.from_numpy(np.ascontiguousarray(np.stack(small).transpose(0, 3, 1, 2)))
    curves = torch.from_numpy(np.stack(out_t)).float()
    targets = torch.cat([curves.mean(dim=1, keepdim=True), curves], dim=1)
    keep = (crf_net.usable_fraction(p) >= crf_net.MIN_USABLE_FRACTION) & \
           (p.mean(dim=1).reshape(len(p), -1).std(dim=1) >= crf_net.MIN_PATCH_STD)
    p, targets = p[keep], targets[keep]
    fam = np.asarray(out_f)[keep.numpy()]
    feats = crf_net.patch_features(p)
    return Batch(p.half(), feats, targets, fam)
