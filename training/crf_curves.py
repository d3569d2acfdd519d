"""Camera curves for training the CRF network (and the highlight network's camera simulation).

Everything here is for training only (it reads ../shared/data, never shipped).

Curves (inverse curves, 1024 samples, pixel value -> linear, 0 -> 0, 1 -> 1):

* DoRF training split (191 of 201; the 10 test curves are never loaded here),
* darktable base curves: approximate JPEG curve = sRGB_OETF(basecurve(x)), nodes joined
  by monotone (PCHIP / Fritsch-Carlson) Hermite interpolation,
* NUS camera models (Nikon D7000, D40): per-channel JPEG -> raw response, 256 entries,
* random parametric curves: gamma 1.6-2.8 with toe/shoulder, the HDRCNN sigmoid, generic
  film-like tone curves (Reinhard / Hable / ACES-fit shoulders after a white scale, then
  an sRGB or gamma OETF) and log + sigmoid film emulation with a random white point
  and stop range. These are generic textbook operators, not Blender's view transforms,
  which stay held out for evaluation.
* convex mixtures of two measured curves.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

sys.path.insert(0, str(ROOT / "training"))
import split  # noqa: E402  (training/split.py, standard library + numpy only)

from ldr2hdr.evaluation import synth  # noqa: E402
from ldr2hdr.inference import crf  # noqa: E402

DORF_PATH = DATA / "crf" / "dorf" / "dorfCurvesInv.mat"
DARKTABLE_PATH = DATA / "crf" / "darktable" / "darktable_basecurves.json"
NUS_DIR = DATA / "crf" / "nus_camera_models"
N = crf.N_SAMPLES
GRID = crf.GRID
# Dense sensor grid (denser near 0) for inverting forward curves.
_XS = np.linspace(0.0, 1.0, 8193) ** 2
FAMILIES = ("dorf", "darktable", "nus", "mix", "gamma", "sigmoid", "film", "logsig", "srgb", "camera")
#: Family probabilities. ``original``: the shipped network's recipe (no plain sRGB, no picture
#: styles). ``modern`` leans to today's digital cameras (plain sRGB, measured base curves, sRGB with
#: a picture style's contrast), film and log curves rarer: measured in docs/experiments.md, not shipped.
PRIORS = {"original": np.array([0.27, 0.10, 0.05, 0.08, 0.15, 0.05, 0.18, 0.12, 0.0, 0.0]),
          "modern": np.array([0.20, 0.15, 0.08, 0.07, 0.10, 0.05, 0.08, 0.05, 0.10, 0.12])}
FAMILY_P = PRIORS["original"]


# ----------------------------------------------------------------------------- curves


def invert_forward(forward_values: np.ndarray, xs: np.ndarray = _XS) -> np.ndarray:
    """Inverse curve ``(1024,)`` of a forward curve sampled as ``forward_values`` at ``xs``."""
    y = np.maximum.accumulate(np.clip(np.asarray(forward_values, np.float64), 0.0, None))
    y = y / max(y[-1], 1e-12)
    y = y + 1e-12 * np.arange(y.size)
    inv = np.interp(GRID, y, xs)
    inv[0], inv[-1] = 0.0, 1.0
    return np.maximum.accumulate(np.clip(inv, 0.0, 1.0))


def dorf_train_curves(path: Path = DORF_PATH) -> np.ndarray:
    """DoRF inverse curves of the training split only, ``(191, 1024)``."""
    curves = crf.load_dorf(path)
    train_idx, test_idx = split.dorf_split(len(curves))
    assert not set(train_idx) & set(test_idx)
    return np.maximum.accumulate(np.clip(curves[train_idx], 0.0, 1.0), axis=1)


def darktable_curves(path: Path = DARKTABLE_PATH) -> np.ndarray:
    """darktable base curves as approximate JPEG inverse curves, ``(29, 1024)``."""
    from scipy.interpolate import PchipInterpolator

    data = json.loads(Path(path).read_text())
    out = []
    for c in data["curves"]:
        x = np.asarray(c["nodes_x_linear_in"], np.float64)
        y = np.asarray(c["nodes_y_out"], np.float64)
        base = np.clip(PchipInterpolator(x, y, extrapolate=True)(np.clip(_XS, x[0], x[-1])), 0.0, 1.0)
        out.append(invert_forward(synth.srgb_encode(base)))
    return np.stack(out)


def nus_curves(folder: Path = NUS_DIR) -> np.ndarray:
    """NUS per-channel inverse curves ``(cameras, 3, 1024)`` (JPEG value -> raw)."""
    out = []
    for f in sorted(Path(folder).glob("*/jpg2raw_respFcns.txt")):
        rows = np.loadtxt(f, skiprows=1)  # first line: header (raw max, padding)
        if rows.shape != (256, 3):
            raise ValueError(f"{f}: unexpected shape {rows.shape}")
        src = np.linspace(0.0, 1.0, 256)
        chans = []
        for c in range(3):
            v = np.maximum.accumulate(np.clip(rows[:, c], 0.0, None))
            v = (v - v[0]) / max(v[-1] - v[0], 1e-12)
            chans.append(np.interp(GRID, src, v))
        out.append(np.stack(chans))
    return np.stack(out)


def _oetf(rng: np.random.Generator):
    k = rng.integers(3)
    if k == 0:
        return synth.srgb_encode
    g = (2.2, 2.4)[k - 1] * math.exp(rng.normal(0, 0.05))
    return lambda v: np.power(np.clip(v, 0, 1), 1.0 / g)


def _s_curve(y: np.ndarray, c: float) -> np.ndarray:
    """Display-space contrast curve, monotone for |c| < 1 (c > 0: S-shape, toe + shoulder)."""
    return y - c * np.sin(2 * np.pi * y) / (2 * np.pi)


def random_parametric_curve(rng: np.random.Generator, family: str) -> np.ndarray:
    """One random inverse curve ``(1024,)`` of a parametric family."""
    x = _XS
    if family == "gamma":
        g = rng.uniform(1.6, 2.8)
        y = np.power(x, 1.0 / g)
        if rng.random() < 0.5:  # linear toe segment as in sRGB-like encodings
            t = rng.uniform(0.001, 0.02)
            y = np.where(x < t, x * (t ** (1.0 / g) / t), y)
        return invert_forward(_s_curve(y, rng.uniform(-0.3, 0.7)))
    if family == "srgb":  # plain sRGB, as renders, screenshots and many phones encode
        return invert_forward(synth.srgb_encode(x))
    if family == "camera":  # sRGB plus a picture style: contrast, a highlight shoulder, a toe
        y = synth.srgb_encode(x)
        y = _s_curve(y, rng.uniform(0.0, 0.45))
        if rng.random() < 0.5:  # soft shoulder: the top stop rolls off instead of clipping hard
            k = rng.uniform(0.5, 3.0)
            y = (1 - np.exp(-k * y)) / (1 - math.exp(-k))
        return invert_forward(np.power(np.clip(y, 0, 1), math.exp(rng.normal(0.0, 0.08))))
    if family == "sigmoid":  # HDRCNN camera curve
        n = max(0.5, rng.normal(0.9, 0.1))
        s = max(0.2, rng.normal(0.6, 0.1))
        y = (1 + s) * x ** n / (x ** n + s)
        if rng.random() < 0.5:
            y = np.power(y, 1.0 / rng.uniform(1.0, 2.2))
        return invert_forward(y)
    if family == "film":
        w = math.exp(rng.uniform(math.log(0.7), math.log(32.0)))
        L = x * w
        k = rng.integers(3)
        if k == 0:  # extended Reinhard
            t = L * (1 + L / (w * w)) / (1 + L)
        elif k == 1:  # Hable filmic
            a, b, c, d, e, f = 0.15, 0.50, 0.10, 0.20, 0.02, 0.30
            a *= math.exp(rng.normal(0, 0.2))
            b *= math.exp(rng.normal(0, 0.2))

            def h(v):
                return ((v * (a * v + c * b) + d * e) / (v * (a * v + b) + d * f)) - e / f
            t = h(2.0 * L) / h(2.0 * w)
        else:  # ACES fit (Narkowicz) with random pre-gain
            g0 = rng.uniform(0.4, 1.0)
            v = L * g0
            t = (v * (2.51 * v + 0.03)) / (v * (2.43 * v + 0.59) + 0.14)
        y = _oetf(rng)(np.clip(t / max(t[-1], 1e-12), 0, 1))
        return invert_forward(y)
    if family == "logsig":  # log encoding + sigmoid contrast (generic film emulation)
        w = math.exp(rng.uniform(math.log(2.0), math.log(32.0)))
        stops = rng.uniform(8.0, 18.0)
        hi = math.log2(w)
        lo = hi - stops
        # the sensor may clip below the top of the log range (u_max < 1): the curve is then
        # renormalized there, as when a film look's white lies above the sensor's clip
        u_max = rng.uniform(0.75, 1.0)
        u = np.clip((np.log2(np.maximum(x * w, 1e-12)) - lo) / (hi - lo), 0.0, 1.0) * u_max
        slope = rng.uniform(2.0, 7.0)
        mid = rng.uniform(0.35, 0.65)
        s = 1.0 / (1.0 + np.exp(-slope * (u - mid)))
        s0, s1 = 1.0 / (1.0 + math.exp(slope * mid)), 1.0 / (1.0 + math.exp(-slope * (u_max - mid)))
        y = (s - s0) / (s1 - s0)
        y = np.power(np.clip(y, 0, 1), rng.uniform(0.8, 1.4))
        return invert_forward(y)
    raise ValueError(family)


@dataclass
class CurveBank:
    """Measured training curves: ``dorf (N, 1024)``, ``darktable (M, 1024)``, ``nus (P, 3, 1024)``."""

    dorf: np.ndarray
    darktable: np.ndarray
    nus: np.ndarray
    prior: str = "original"  # a key of PRIORS

    @classmethod
    def load(cls, prior: str = "original") -> "CurveBank":
        if prior not in PRIORS:
            raise ValueError(f"unknown curve prior {prior!r}; one of {sorted(PRIORS)}")
        return cls(dorf_train_curves(), darktable_curves(), nus_curves(), prior)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """A random per-channel inverse curve set ``(3, 1024)`` and its family name."""
        p = PRIORS[self.prior]
        fam = FAMILIES[rng.choice(len(FAMILIES), p=p / p.sum())]
        if fam == "nus":
            curves = self.nus[rng.integers(len(self.nus))].copy()
            if rng.random() < 0.5:  # the gray-axis version of the same camera
                curves[:] = curves.mean(axis=0)
            return curves, fam
        if fam == "dorf":
            base = self.dorf[rng.integers(len(self.dorf))]
        elif fam == "darktable":
            base = self.darktable[rng.integers(len(self.darktable))]
        elif fam == "mix":
            pool = np.concatenate([self.dorf, self.darktable])
            a, b = pool[rng.integers(len(pool), size=2)]
            t = rng.random()
            base = t * a + (1 - t) * b
        else:
            base = random_parametric_curve(rng, fam)
        curves = np.repeat(base[None], 3, axis=0)
        if fam != "srgb" and rng.random() < 0.3:  # small per-channel differences, as on real cameras
            p = np.exp(rng.normal(0.0, 0.06, size=3))
            curves = np.power(curves, p[:, None])
        return curves, fam

    def basis_curves(self, rng: np.random.Generator, n_random: int = 3000) -> np.ndarray:
        """Curves ``(n, 1024)`` that define the PCA basis of the network's output."""
        k = 6 if PRIORS[self.prior][8:].any() else 4  # the parametric families the prior draws
        rand = [random_parametric_curve(rng, FAMILIES[4 + i % k]) for i in range(n_random)]
        return np.concatenate([self.dorf, self.darktable, self.nus.reshape(-1, N), np.stack(rand)])


@functools.lru_cache(maxsize=None)
def shared_bank(prior: str = "original") -> CurveBank:
    """:meth:`CurveBank.load`, once per process and prior (the measured curves take a few seconds)."""
    return CurveBank.load(prior)


def log_derivative_pca(curves: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of the centred log-derivatives of inverse curves ``(n, 1024)``.

    Returns ``mean (1023,)``, ``basis (k, 1023)`` orthonormal rows and ``scale (k,)`` (the
    coefficient std of each component), all float32.
    """
    from scipy.ndimage import gaussian_filter1d

    c = np.asarray(curves, np.float64)
    c = (1 - 1e-2) * c + 1e-2 * GRID  # derivatives >= 1e-2: keeps log finite on flat runs
    # Measured curves have noisy derivatives; smoothing keeps the components for shape.
    logd = gaussian_filter1d(np.log(np.diff(c, axis=1) * (N - 1)), 4.0, axis=1, mode="nearest")
    logd -= logd.mean(axis=1, keepdims=True)  # softmax ignores a constant shift
    mean = logd.mean(axis=0)
    _, s, vt = np.linalg.svd(logd - mean, full_matrices=False)
    scale = s[:k] / math.sqrt(len(c))
    return mean.astype(np.float32), vt[:k].astype(np.float32), scale.astype(np.float32)
