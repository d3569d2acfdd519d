"""Synthesize LDR camera images from a linear HDR reference (for evaluation and training).

The simulated camera is::

    exposed = clip(k * hdr, 0, 1)        # exposure k, sensor saturation per channel at 1
    ldr     = quantize(curve(exposed))   # camera curve / view transform, 8-bit PNG or JPEG q90

``k`` is chosen so that a requested fraction of pixels has its brightest channel at or
above 1 (:func:`exposure_for_clip_fraction`); those pixels form the *clip mask*, the
region whose radiance the LDR image no longer encodes.

Curves (``curve_name``):

* ``"srgb"``: IEC 61966-2-1 encoding; ``"gamma2.2"``: ``x ** (1 / 2.2)``.
* ``"dorf-<i>"``: DoRF measured curve number ``i`` (0-based row of ``dorfCurvesInv.mat``);
  the evaluation uses the 10 test curves of :func:`crf.dorf_split`.
* Blender view transforms, applied with OpenColorIO through OpenImageIO and Blender's own
  ``config.ocio`` (display ``sRGB``): ``"agx"`` (view "AgX"), ``"filmic"`` ("Filmic"),
  ``"khronos-pbr-neutral"`` ("Khronos PBR Neutral") and ``"standard"`` ("Standard").
  Used as a camera's JPEG engine: the sensor value ``exposed`` in [0, 1] (1 = the sensor's
  clip level) is fed to the view as scene-linear, and the display value is divided by the
  view's grey display value at 1 (``white_gain = 1 / display(1)``), so the curve runs from
  (0, 0) to (1, 1) like any camera response and keeps the view's film-like toe and shoulder.
  (Feeding the view its whole range up to display white, ~16x for AgX, would squeeze 16
  stops into 8 bits: no camera does that.) The "true" inverse curve of a view is its
  grey-axis response on [0, 1], inverted and sampled at 1024 pixel values. AgX and Filmic
  also mix channels
  (they desaturate bright colours), so no per-channel curve inverts them exactly; that
  is part of what the evaluation measures.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from ..inference.errors import Ldr2HdrError

logger = logging.getLogger(__name__)

N_SAMPLES = 1024
GRID = np.linspace(0.0, 1.0, N_SAMPLES)

#: Default location of the DoRF inverse curves (training/evaluation data, never shipped).
DEFAULT_DORF_PATH = Path(os.environ.get(
    "LDR2HDR_DORF",
    Path(os.environ.get("LDR2HDR_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
    / "data" / "crf" / "dorf" / "dorfCurvesInv.mat",
))

#: curve name -> OCIO view name in Blender's config (display "sRGB").
VIEW_TRANSFORMS = {
    "agx": "AgX",
    "filmic": "Filmic",
    "khronos-pbr-neutral": "Khronos PBR Neutral",
    "standard": "Standard",
}
OCIO_DISPLAY = "sRGB"
OCIO_SCENE_LINEAR = "Linear Rec.709"
CODECS = ("png", "jpeg90")
#: Display value at or above which an 8-bit encoder writes 255.

_DORF_NAME = re.compile(r"^dorf-(\d+)$")


# ----------------------------------------------------------------------------- exposure


def exposure_for_clip_fraction(hdr: np.ndarray, fraction: float) -> float:
    """Exposure factor ``k`` so that ``fraction`` of the pixels have ``max_c(k * hdr) >= 1``.

    ``k = 1 / q`` with ``q`` the ``(1 - fraction)`` quantile of the per-pixel maximum
    channel. Ties (e.g. a clamped sun) can make the achieved fraction slightly larger.

    Args:
        hdr: HxWx3 linear radiance (any scale, >= 0).
        fraction: target clipped fraction in (0, 1).

    Returns:
        ``k`` (float > 0).

    Raises:
        ValueError: ``fraction`` outside (0, 1) or the image has no positive pixel at
            that quantile (all black).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"clip fraction must be in (0, 1), got {fraction}")
    peak = np.asarray(hdr, dtype=np.float64).max(axis=-1)
    peak = peak[np.isfinite(peak)]
    if peak.size == 0:
        raise ValueError("image has no finite pixels")
    q = float(np.quantile(peak, 1.0 - fraction))
    if q <= 0:
        raise ValueError(f"cannot clip {fraction:.3g} of an image whose {1 - fraction:.3g} quantile is {q}")
    return 1.0 / q


# ----------------------------------------------------------------------------- curves


def curve_family(curve_name: str) -> str:
    """Group of a curve name: ``srgb``, ``gamma``, ``dorf`` or ``view``."""
    name = curve_name.lower()
    if name == "srgb":
        return "srgb"
    if name.startswith("gamma"):
        return "gamma"
    if _DORF_NAME.match(name):
        return "dorf"
    if name in VIEW_TRANSFORMS:
        return "view"
    raise ValueError(f"unknown curve {curve_name!r}")


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB encoding of linear values (clipped to [0, 1] first)."""
    v = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.power(v, 1.0 / 2.4) - 0.055)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB decoding of values in [0, 1] -> linear [0, 1]."""
    v = np.clip(np.asarray(encoded, dtype=np.float64), 0.0, 1.0)
    return np.where(v <= 0.04045, v / 12.92, np.power((v + 0.055) / 1.055, 2.4))


def _parse_gamma(name: str) -> float:
    try:
        g = float(name[len("gamma"):] or 2.2)
    except ValueError:
        raise ValueError(f"bad gamma curve name {name!r}") from None
    if not 0.1 <= g <= 10:
        raise ValueError(f"gamma out of range in {name!r}")
    return g


def ocio_config_path() -> Path:
    """Blender's ``config.ocio`` inside the installed ``bpy`` wheel (located without importing bpy).

    ``LDR2HDR_OCIO_CONFIG`` overrides it.

    Raises:
        Ldr2HdrError: no config found.
    """
    env = os.environ.get("LDR2HDR_OCIO_CONFIG")
    if env:
        return Path(env)
    config = bpy_datafile("colormanagement/config.ocio")
    if config is None:
        raise Ldr2HdrError("Blender's OCIO config not found (install the bpy wheel or set LDR2HDR_OCIO_CONFIG)")
    return config


def bpy_datafile(relative: str) -> Path | None:
    """A file or folder under the installed ``bpy`` wheel's ``<version>/datafiles`` (bpy is
    located, never imported), or None when the wheel or the entry is missing."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    found = sorted(root.glob(f"*/datafiles/{relative}"))
    return found[-1] if found else None


def _apply_view(linear: np.ndarray, view: str) -> np.ndarray:
    """Scene-linear HxWx3 -> display-referred HxWx3 float32 through an OCIO view (not clipped)."""
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(np.ascontiguousarray(linear, dtype=np.float32))
    out = oiio.ImageBufAlgo.ociodisplay(
        buf, OCIO_DISPLAY, view, fromspace=OCIO_SCENE_LINEAR, colorconfig=str(ocio_config_path())
    )
    if out.has_error:
        raise Ldr2HdrError(f"OCIO view {view!r} failed: {out.geterror()}")
    return out.get_pixels(oiio.FLOAT).reshape(linear.shape)


@functools.lru_cache(maxsize=None)
def view_response(curve_name: str) -> tuple[float, np.ndarray]:
    """Grey-axis response of a view transform used as a camera curve (see the module doc).

    Returns:
        ``(white_gain, inverse)``: the factor that maps the view's grey display value at
        scene-linear 1 to 1, and the inverse curve ``(1024,)`` float64 (pixel value i/1023 ->
        scene-linear grey in [0, 1]; non-decreasing, 0 -> 0, 1 -> 1).
    """
    view = VIEW_TRANSFORMS[curve_name]
    ramp = np.concatenate([[0.0], np.logspace(-8, 0, 6000)])
    disp = _apply_view(np.repeat(ramp[None, :, None], 3, axis=2), view)[0].mean(axis=1).astype(np.float64)
    disp = np.maximum.accumulate(disp)
    if disp[-1] <= 0:
        raise Ldr2HdrError(f"OCIO view {view!r} maps scene-linear 1 to black")
    white_gain = 1.0 / float(disp[-1])
    # A tiny ramp makes the display values strictly increasing so the inversion is defined.
    y = disp * white_gain + 1e-12 * np.arange(disp.size)
    inverse = np.interp(GRID, y, ramp, left=0.0, right=1.0)
    inverse[0], inverse[-1] = 0.0, 1.0
    return white_gain, np.maximum.accumulate(inverse)


@functools.lru_cache(maxsize=4)
def _dorf_curves(path: str) -> np.ndarray:
    from ..inference import crf

    loaded = crf.load_dorf(path)
    # The shared interface once returned (names, curves); accept both forms.
    curves = loaded[1] if isinstance(loaded, tuple) else loaded
    return np.asarray(curves, dtype=np.float64)


def dorf_test_curve_names(dorf_path: str | Path | None = None) -> list[str]:
    """Names ``dorf-<i>`` of the 10 DoRF test curves (RandomState(730) split)."""
    from ..inference import crf

    n = _dorf_curves(str(dorf_path or DEFAULT_DORF_PATH)).shape[0]
    _, test = crf.dorf_split(n)
    return [f"dorf-{int(i)}" for i in test]


def true_inverse_curve(curve_name: str, *, dorf_path: str | Path | None = None) -> np.ndarray:
    """The inverse camera curve ``(1024,)`` float64 of a synthesis curve (see module doc)."""
    name = curve_name.lower()
    family = curve_family(name)
    if family == "srgb":
        return srgb_decode(GRID)
    if family == "gamma":
        return GRID ** _parse_gamma(name)
    if family == "dorf":
        curves = _dorf_curves(str(dorf_path or DEFAULT_DORF_PATH))
        idx = int(_DORF_NAME.match(name).group(1))
        if not 0 <= idx < curves.shape[0]:
            raise ValueError(f"{curve_name!r}: DoRF has {curves.shape[0]} curves")
        return np.maximum.accumulate(np.clip(curves[idx], 0.0, 1.0))
    return view_response(name)[1].copy()


def apply_curve(exposed: np.ndarray, curve_name: str, *, dorf_path: str | Path | None = None) -> np.ndarray:
    """Forward camera curve: sensor values HxWx3 (clipped to [0, 1]) -> display values in [0, 1], float64."""
    name = curve_name.lower()
    family = curve_family(name)
    x = np.clip(np.asarray(exposed, dtype=np.float64), 0.0, 1.0)
    if family == "srgb":
        return srgb_encode(x)
    if family == "gamma":
        return np.power(x, 1.0 / _parse_gamma(name))
    if family == "dorf":
        from ..inference import crf

        inv = crf.from_samples(true_inverse_curve(name, dorf_path=dorf_path), name)
        return np.asarray(crf.apply_crf(x, inv), dtype=np.float64)
    white_gain, _ = view_response(name)
    disp = _apply_view(x, VIEW_TRANSFORMS[name])
    return np.clip(disp.astype(np.float64) * white_gain, 0.0, 1.0)


# ----------------------------------------------------------------------------- codecs


def quantize_png8(display: np.ndarray) -> np.ndarray:
    """8-bit rounding as a PNG round trip does it: HxWx3 [0, 1] -> float32 multiples of 1/255."""
    return (np.round(np.clip(display, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def encode_jpeg(display: np.ndarray, quality: int = 90) -> np.ndarray:
    """JPEG round trip (OpenImageIO/libjpeg, 4:2:0 chroma): HxWx3 [0, 1] -> decoded float32 [0, 1].

    Written to a private temporary folder and read back; nothing persists.
    """
    import OpenImageIO as oiio

    codes = np.round(np.clip(display, 0.0, 1.0) * 255.0).astype(np.uint8)
    with tempfile.TemporaryDirectory(prefix="ldr2hdr-synth-") as tmp:
        path = os.path.join(tmp, "frame.jpg")
        buf = oiio.ImageBuf(np.ascontiguousarray(codes))
        buf.specmod().attribute("compression", f"jpeg:{int(quality)}")
        if not buf.write(path):
            raise Ldr2HdrError(f"JPEG encode failed: {buf.geterror()}")
        inp = oiio.ImageInput.open(path)
        if inp is None:
            raise Ldr2HdrError(f"JPEG decode failed: {oiio.geterror()}")
        try:
            pixels = inp.read_image(0, 0, 0, 3, oiio.UINT8)
            err = inp.geterror()
        finally:
            inp.close()
    if pixels is None or err:
        raise Ldr2HdrError(f"JPEG decode failed: {err}")
    return (np.asarray(pixels, dtype=np.float32).reshape(codes.shape) / 255.0).astype(np.float32)


# ----------------------------------------------------------------------------- synthesis


def synthesize(
    hdr: np.ndarray,
    curve_name: str,
    clip_fraction: float,
    codec: str = "png",
    rng: np.random.Generator | None = None,
    *,
    noise_sigma: float = 0.0,
    dorf_path: str | Path | None = None,
) -> tuple[np.ndarray, dict]:
    """Make the LDR photo a camera would have taken of ``hdr``.

    Args:
        hdr: HxWx3 linear radiance reference (any scale).
        curve_name: see the module doc (``srgb``, ``gamma2.2``, ``dorf-<i>``, ``agx``, ...).
        clip_fraction: fraction of pixels to saturate, in (0, 1).
        codec: ``"png"`` (8-bit rounding) or ``"jpeg90"`` (JPEG quality 90).
        rng: random generator for the optional sensor noise (deterministic if seeded).
        noise_sigma: std of signal-dependent Gaussian noise added to the sensor values
            before clipping, ``sigma * sqrt(x)`` (0 = none, the evaluation default).
        dorf_path: DoRF ``.mat`` file for ``dorf-<i>`` curves.

    Returns:
        ``(ldr, info)``: ``ldr`` float32 HxWx3 in [0, 1]; ``info`` has
        ``exposure_scale`` (k), ``curve``, ``curve_family``, ``codec``,
        ``clip_fraction_target``, ``clip_fraction`` (achieved), ``clip_mask`` (HxW bool,
        ``max_c(k * hdr) >= 1``), ``inverse_crf`` ((1024,) float64 true inverse curve) and
        ``white_gain`` (view transforms; else ``None``).
    """
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")
    hdr = np.asarray(hdr, dtype=np.float64)
    if hdr.ndim != 3 or hdr.shape[2] != 3:
        raise ValueError(f"hdr must be HxWx3, got shape {hdr.shape}")
    hdr = np.nan_to_num(np.maximum(hdr, 0.0), nan=0.0, posinf=0.0)
    name = curve_name.lower()
    family = curve_family(name)
    k = exposure_for_clip_fraction(hdr, clip_fraction)
    sensor = hdr * k
    clip_mask = sensor.max(axis=-1) >= 1.0
    if noise_sigma > 0:
        rng = rng if rng is not None else np.random.default_rng(0)
        sensor = sensor + noise_sigma * np.sqrt(np.maximum(sensor, 0.0)) * rng.standard_normal(sensor.shape)
    display = apply_curve(sensor, name, dorf_path=dorf_path)
    ldr = quantize_png8(display) if codec == "png" else encode_jpeg(display, 90)
    info = {
        "exposure_scale": float(k),
        "curve": name,
        "curve_family": family,
        "codec": codec,
        "clip_fraction_target": float(clip_fraction),
        "clip_fraction": float(clip_mask.mean()),
        "clip_mask": clip_mask,
        "inverse_crf": true_inverse_curve(name, dorf_path=dorf_path),
        "white_gain": view_response(name)[0] if family == "view" else None,
    }
    return ldr, info

