"""Camera response curves: representation, parametric curves, PCA basis, fitting.

A camera response function (CRF) maps scene irradiance (normalised to [0, 1], 1 = the
sensor's clip level) to a pixel value in [0, 1]. We store its *inverse*, sampled at
``N_SAMPLES`` evenly spaced pixel values: ``curves[c, i]`` is the linear irradiance that
produced pixel value ``i / (N_SAMPLES - 1)`` in channel ``c``. Every curve we hand out is
non-decreasing, starts at 0 and ends at 1; :func:`from_samples` enforces that.

The data convention follows DoRF (Grossberg & Nayar): 1024 samples per curve.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import Ldr2HdrError, WeightsError
from ..weights import WEIGHTS_DIR

logger = logging.getLogger(__name__)

N_SAMPLES = 1024
GRID = np.linspace(0.0, 1.0, N_SAMPLES)
PCA_BASIS_FILE = WEIGHTS_DIR / "crf_pca.safetensors"
DORF_TEST_COUNT = 10
DORF_SPLIT_SEED = 730


@dataclass(frozen=True)
class InverseCRF:
    """An inverse camera response, per channel.

    Attributes:
        curves: float32 ``(C, 1024)`` with ``C`` in {1, 3}; ``curves[c, i]`` is the linear
            irradiance in [0, 1] for pixel value ``i / 1023``. Non-decreasing, 0 -> 0, 1 -> 1.
        method: how the curve was obtained (``"srgb"``, ``"gamma2.2"``, ``"fit"``, ...).
        confidence: in [0, 1]; 1 for a curve that was given, lower for an estimate.
    """

    curves: np.ndarray
    method: str
    confidence: float = 1.0
    details: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        c = np.asarray(self.curves, dtype=np.float32)
        if c.ndim == 1:
            c = c[None]
        if c.ndim != 2 or c.shape[0] not in (1, 3) or c.shape[1] != N_SAMPLES:
            raise ValueError(f"inverse CRF must have shape (1|3, {N_SAMPLES}), got {np.shape(self.curves)}")
        if not np.all(np.isfinite(c)):
            raise ValueError("inverse CRF contains non-finite values")
        object.__setattr__(self, "curves", c)

    @property
    def gray(self) -> np.ndarray:
        """The gray-axis curve ``(1024,)``: the channel mean for per-channel curves."""
        return self.curves.mean(axis=0)

    @property
    def channels(self) -> int:
        return int(self.curves.shape[0])

    def per_channel(self) -> np.ndarray:
        """The curves as ``(3, 1024)`` (a single curve is repeated)."""
        return np.repeat(self.curves, 3, axis=0) if self.channels == 1 else self.curves

    def to_json_dict(self) -> dict:
        """Plain-JSON description: the gray curve, the per-channel curves, method, confidence."""
        rgb = self.per_channel()
        out = {
            "inverse_crf": [round(float(v), 7) for v in self.gray],
            "inverse_crf_rgb": [[round(float(v), 7) for v in ch] for ch in rgb],
            "samples": N_SAMPLES,
            "domain": "pixel value i/1023 -> linear irradiance (1 = clip level)",
            "method": self.method,
            "confidence": float(self.confidence),
        }
        if self.details:
            out["details"] = self.details
        return out

    @classmethod
    def from_json_dict(cls, data: dict) -> "InverseCRF":
        """Rebuild a curve from :meth:`to_json_dict` output (or any dict with ``inverse_crf``).

        Raises ValueError for anything that is not a finite curve of at least 2 samples.
        """
        if not isinstance(data, dict):
            raise ValueError("a camera-curve file must hold a JSON object")
        curves = data.get("inverse_crf_rgb") or data.get("inverse_crf")
        if curves is None or isinstance(curves, (str, bytes)):
            raise ValueError("no 'inverse_crf' samples")
        try:
            arr = np.asarray(curves, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("'inverse_crf' must be a list of numbers") from None
        if arr.ndim not in (1, 2) or arr.shape[-1] < 2 or (arr.ndim == 2 and arr.shape[0] not in (1, 3)):
            raise ValueError(f"'inverse_crf' has shape {arr.shape}; expected N or 3xN samples")
        if not np.all(np.isfinite(arr)):
            raise ValueError("'inverse_crf' contains non-finite values")
        try:
            confidence = float(data.get("confidence", 1.0))
        except (TypeError, ValueError):
            confidence = 1.0
        method = data.get("method")
        return from_samples(arr, method if isinstance(method, str) else "json",
                            confidence=float(np.clip(np.nan_to_num(confidence, nan=1.0), 0.0, 1.0)))


def make_monotone(y: np.ndarray) -> np.ndarray:
    """Project sampled curves ``(..., N)`` onto non-decreasing curves from 0 to 1.

    Values are clipped to [0, 1] and a running maximum removes dips. The ends are pinned,
    then a ramp of 1e-6 is mixed in so flat stretches become (slightly) increasing.
    """
    y = np.clip(np.nan_to_num(np.asarray(y, dtype=np.float64), nan=0.0), 0.0, 1.0)
    y = np.maximum.accumulate(y, axis=-1)
    lo, hi = y[..., :1], y[..., -1:]
    span = np.where(hi - lo > 1e-9, hi - lo, 1.0)
    y = (y - lo) / span
    ramp = np.linspace(0.0, 1.0, y.shape[-1])
    return (1.0 - 1e-6) * y + 1e-6 * ramp


def from_samples(y: np.ndarray, method: str, confidence: float = 1.0, details: dict | None = None) -> InverseCRF:
    """Build an :class:`InverseCRF` from ``(1024,)`` or ``(C, 1024)`` samples, made monotone."""
    y = np.asarray(y, dtype=np.float64)
    if y.shape[-1] != N_SAMPLES:
        y = np.stack([np.interp(GRID, np.linspace(0, 1, y.shape[-1]), row) for row in np.atleast_2d(y)])
    return InverseCRF(make_monotone(np.atleast_2d(y)).astype(np.float32), method, confidence, details or {})


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB decoding, values in [0, 1]."""
    v = np.asarray(v, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB encoding, values clipped to [0, 1]."""
    v = np.clip(np.asarray(v, dtype=np.float64), 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def srgb_inverse() -> InverseCRF:
    """The sRGB decoding curve as an inverse CRF (what almost every tool assumes)."""
    return from_samples(srgb_to_linear(GRID), "srgb")


def gamma_inverse(gamma: float = 2.2) -> InverseCRF:
    """A pure power law ``x ** gamma`` as an inverse CRF."""
    if not (0.05 <= gamma <= 20):
        raise ValueError(f"gamma must be in [0.05, 20], got {gamma}")
    return from_samples(GRID ** gamma, f"gamma{gamma:g}")


def linear_inverse() -> InverseCRF:
    """The identity: for images that are already linear."""
    return from_samples(GRID.copy(), "linear")


def parametric_inverse(name: str) -> InverseCRF:
    """A named parametric curve: ``srgb``, ``linear`` or ``gammaG`` (e.g. ``gamma2.2``)."""
    key = name.strip().lower()
    if key == "srgb":
        return srgb_inverse()
    if key == "linear":
        return linear_inverse()
    if key.startswith("gamma"):
        try:
            return gamma_inverse(float(key[5:] or 2.2))
        except ValueError as exc:
            raise Ldr2HdrError(f"bad gamma curve name {name!r}: {exc}") from None
    raise Ldr2HdrError(f"unknown camera curve {name!r} (use srgb, linear, gamma2.2 or a .crf.json file)")


def _lookup(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Piecewise-linear lookup of ``values`` in [0, 1] into a 1024-entry ``table``."""
    t = np.clip(values, 0.0, 1.0) * (N_SAMPLES - 1)
    i = np.minimum(t.astype(np.int32), N_SAMPLES - 2)
    frac = (t - i).astype(np.float32)
    lo = table[i]
    return lo + frac * (table[i + 1] - lo)


def linearize(ldr: np.ndarray, inv: InverseCRF, out: np.ndarray | None = None) -> np.ndarray:
    """Undo a camera curve.

    Args:
        ldr: float32 ``HxWx3`` (or ``HxW``) pixel values in [0, 1].
        inv: the inverse curve; a single curve applies to all channels.
        out: optional float32 ``HxWx3`` array to write the result into; it may be ``ldr`` itself
            (each band is read before it is written), which saves a full-size allocation when
            the pixels are a temporary (the dequantized copy), and on large images the time of
            touching that fresh memory.

    Returns:
        float32 array of the same shape: relative linear irradiance in [0, 1].
    """
    ldr = np.asarray(ldr, dtype=np.float32)
    if ldr.ndim == 2:
        return _lookup(ldr, inv.gray.astype(np.float32))
    if ldr.ndim != 3 or ldr.shape[2] != 3:
        raise ValueError(f"expected HxWx3 or HxW pixels, got shape {ldr.shape}")
    curves = inv.per_channel().astype(np.float32)
    if out is None:
        out = np.empty_like(ldr)
    elif out.shape != ldr.shape or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {ldr.shape}, got {out.dtype} {out.shape}")
    band = 256  # rows at a time: the lookup's scratch stays small on huge panoramas
    scratch = _LookupScratch(min(band, ldr.shape[0]) * ldr.shape[1])
    for r in range(0, ldr.shape[0], band):
        for c in range(3):
            out[r:r + band, :, c] = scratch.lookup(ldr[r:r + band, :, c], curves[c])
    return out


class _LookupScratch:
    """:func:`_lookup` into arrays allocated once: the same float32 operations in the same
    order (bit for bit the same values), without a fresh multi-megabyte temporary per band and
    channel, whose first touch costs more than the arithmetic on large images."""

    def __init__(self, size: int):
        self.t = np.empty(size, np.float32)
        self.i = np.empty(size, np.int32)
        self.lo = np.empty(size, np.float32)
        self.hi = np.empty(size, np.float32)

    def lookup(self, values: np.ndarray, table: np.ndarray) -> np.ndarray:
        n = values.size
        t, i, lo, hi = self.t[:n], self.i[:n], self.lo[:n], self.hi[:n]
        np.clip(values.reshape(-1), 0.0, 1.0, out=t)
        t *= np.float32(N_SAMPLES - 1)
        np.copyto(i, t, casting="unsafe")  # truncation, as astype(int32): t >= 0
        np.minimum(i, N_SAMPLES - 2, out=i)
        np.subtract(t, i, out=t)  # frac, computed in float64 and rounded to float32 as before
        np.take(table, i, out=lo)
        np.take(table[1:], i, out=hi)
        hi -= lo
        hi *= t
        hi += lo
        return hi.reshape(values.shape)


def apply_crf(linear: np.ndarray, inv: InverseCRF) -> np.ndarray:
    """Apply the forward camera curve (the inverse of ``inv``): linear -> pixel values.

    Irradiance above 1 clips, as on a sensor. Returns float32 in [0, 1], same shape.
    """
    linear = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    if linear.ndim == 2:
        return np.interp(linear, inv.gray.astype(np.float64) + 1e-9 * np.arange(N_SAMPLES), GRID).astype(np.float32)
    # float32 storage can leave equal neighbours; a tiny float64 ramp keeps the inversion defined.
    curves = inv.per_channel().astype(np.float64) + 1e-9 * np.arange(N_SAMPLES)
    out = np.empty(linear.shape, dtype=np.float32)
    for c in range(3):
        out[..., c] = np.interp(linear[..., c], curves[c], GRID)
    return out


def crf_rmse(a: InverseCRF | np.ndarray, b: InverseCRF | np.ndarray) -> float:
    """RMSE between two inverse curves over the 1024 samples (gray-axis curves)."""
    ga = a.gray if isinstance(a, InverseCRF) else np.asarray(a, dtype=np.float64).reshape(-1, N_SAMPLES).mean(0)
    gb = b.gray if isinstance(b, InverseCRF) else np.asarray(b, dtype=np.float64).reshape(-1, N_SAMPLES).mean(0)
    return float(np.sqrt(np.mean((np.asarray(ga, np.float64) - np.asarray(gb, np.float64)) ** 2)))


# --- measured curves -----------------------------------------------------------------------

def load_dorf(path: str | Path) -> np.ndarray:
    """Load DoRF inverse curves ``(201, 1024)`` from ``dorfCurvesInv.mat`` (field ``invI``)."""
    from scipy.io import loadmat  # training/evaluation only

    data = loadmat(str(path))
    if "invI" not in data:
        raise Ldr2HdrError("not a DoRF inverse-curve file (no 'invI' field)", path)
    return np.asarray(data["invI"], dtype=np.float64)


def dorf_split(n: int = 201) -> tuple[np.ndarray, np.ndarray]:
    """The common DoRF split (SingleHDR): shuffle with RandomState(730), last 10 are test."""
    order = np.arange(n)
    np.random.RandomState(DORF_SPLIT_SEED).shuffle(order)
    return np.sort(order[:-DORF_TEST_COUNT]), np.sort(order[-DORF_TEST_COUNT:])


# --- PCA basis -----------------------------------------------------------------------------

def build_pca_basis(inverse_curves: np.ndarray, n_components: int = 11) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of inverse curves ``(N, 1024)``: returns mean ``(1024,)``, components ``(K, 1024)``
    (orthonormal rows) and the fraction of variance each explains ``(K,)``."""
    x = np.asarray(inverse_curves, dtype=np.float64)
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    var = s ** 2 / max(np.sum(s ** 2), 1e-12)
    return mean, vt[:n_components], var[:n_components]


def load_pca_basis(path: str | Path = PCA_BASIS_FILE) -> tuple[np.ndarray, np.ndarray]:
    """Load the inverse-CRF PCA basis: mean ``(1024,)`` and components ``(K, 1024)``, float64."""
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError("camera-curve basis not found (run training/build_crf_basis.py)", path)
    from ..weights import verify_weights_file

    verify_weights_file(path)
    tensors = load_file(str(path))
    return tensors["mean"].astype(np.float64), tensors["components"].astype(np.float64)


def fit_inverse_crf(pixel_values: np.ndarray, linear_values: np.ndarray, *, n_components: int = 11,
                    basis: tuple[np.ndarray, np.ndarray] | None = None, ridge: float = 1e-4,
                    method: str = "fit") -> InverseCRF:
    """Fit a monotone inverse curve to samples ``linear = f^-1(pixel)`` of one channel.

    The curve is the PCA mean plus a least-squares combination of the first
    ``n_components`` basis curves (ridge-regularised, so few samples still give a sane
    curve), then projected onto monotone curves through (0, 0) and (1, 1).

    Args:
        pixel_values: ``(N,)`` pixel values in [0, 1].
        linear_values: ``(N,)`` matching linear irradiances in [0, 1].
    """
    x = np.asarray(pixel_values, dtype=np.float64).ravel()
    y = np.asarray(linear_values, dtype=np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = np.clip(x[ok], 0, 1), np.clip(y[ok], 0, 1)
    if x.size < 2:
        raise Ldr2HdrError("need at least two samples to fit a camera curve")
    mean, comps = basis if basis is not None else load_pca_basis()
    comps = comps[:n_components]
    # Anchor both ends so the fit respects (0, 0) and (1, 1) even when samples miss them.
    x = np.concatenate([x, [0.0, 1.0]])
    y = np.concatenate([y, [0.0, 1.0]])
    a = np.stack([np.interp(x, GRID, c) for c in comps], axis=1)
    r = y - np.interp(x, GRID, mean)
    coef = np.linalg.solve(a.T @ a + ridge * x.size * np.eye(a.shape[1]), a.T @ r)
    curve = mean + coef @ comps
    return from_samples(curve, method, details={"coefficients": [float(c) for c in coef]})
