"""The one pipeline: Estimate CRF -> Linearize -> Restore Highlights.

The command line, the evaluation harness and the Blender operators all call :func:`run`
with a :class:`Settings`, so they cannot disagree about what a step does.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import numpy as np

from . import __version__, crf
from .highlights import classical
from .crf.dequantize import dequantize, soft_saturation_mask
from .errors import Ldr2HdrError
from .imaging import channel_max
from .highlights.learned import PRECISIONS
from .lighting.units import SCALE_MODES, output_scale

logger = logging.getLogger(__name__)

METHODS = ("learned", "classical")
STEPS = ("estimate-crf", "linearize", "restore", "reconstruct")
PANORAMA_MODES = ("auto", "on", "off")
ENERGY_MODES = ("auto", "off")
#: How far the learned camera curve is trusted over sRGB (``Settings.crf_trust``).
CRF_TRUST_MODES = ("auto", "srgb-blend", "network")


@dataclass(frozen=True)
class Settings:
    """Everything that decides a result; built by the CLI and the Blender operators.

    Attributes:
        method: ``"learned"`` (the CRF network and the highlight network) or ``"classical"``
            (sRGB curve, dequantization, Kovaleski-Oliveira expansion).
        crf: ``"auto"`` (the method decides), ``"srgb"``, ``"linear"``, ``"gammaG"``; or an
            :class:`~crf.InverseCRF` given directly (e.g. loaded from a ``.crf.json``).
        crf_trust: the learned curve's blend with sRGB (:mod:`.crf.shrink`): ``"srgb-blend"`` always
            blends the network's curve with sRGB by the trust fitted for its distance from sRGB
            (plain-sRGB inputs come back exactly sRGB); ``"network"`` keeps the network's curve;
            ``"auto"`` blends unless the photo's EXIF names a camera, whose JPEG engine applies
            its own tone curve, never plain sRGB (the trust fitted without plain-sRGB examples is
            1 everywhere: ``training/fit_crf_shrink.py --camera``).
        panorama: ``"auto"`` (2:1 aspect means a 360 equirectangular panorama), ``"on"``, ``"off"``.
        exposure: output scale in stops (``hdr * 2**exposure``).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` for learned models.
        tile_size: tile edge in pixels for tiled inference.
        weights_dir: a folder with replacement model weights (``crf_net.safetensors``,
            ``highlight_net.safetensors``) and their own ``manifest.json``; a file that is
            not there comes from the bundled ``weights/``. Empty: the bundled weights.
        precision: arithmetic of the highlight network: ``"auto"`` (half precision on CUDA,
            float32 on the CPU), ``"float32"``, ``"float16"`` or ``"bfloat16"``.
        per_channel: estimate one curve per colour channel (learned method) instead of one
            gray-axis curve.
        dequantize: remove 8-bit banding in smooth regions while linearizing, for images of at
            most ``dequantize_max_pixels`` pixels (0: any size). Above 16 MP it is skipped by
            default: it is more than half of the run time of an 8K panorama (27 of 48 s) for a
            small gain (banding error on smooth regions 0.287 -> 0.269 code values).
        mask_threshold: LDR value where the soft saturation mask starts.
        expansion_gain: classical highlight boost where the expand map is 1.
        energy: ``"auto"`` (learned method): after the highlight step, find the clipped light
            sources, estimate each one's energy (:mod:`.highlights.energy`, a trained model)
            and scale its restoration to it; the classical method keeps its own expansion.
            ``"off"``: keep what the highlight step restored.
        scale: the output's units (:mod:`.lighting.units`): ``"relative"`` (1 = the clip
            level), ``"exif"`` (W m^-2 sr^-1 from the photo's exposure time, f-number and ISO;
            relative when they are missing) or ``"match-photo"`` (Blender's Standard view
            shows the photo's mid-tones at their own brightness). ``exposure`` applies on top.
    """

    method: str = "learned"
    crf: object = "auto"
    crf_trust: str = "auto"
    panorama: str = "auto"
    exposure: float = 0.0
    device: str = "auto"
    tile_size: int = 512
    precision: str = "auto"
    weights_dir: str = ""
    per_channel: bool = False
    dequantize: bool = True
    dequantize_max_pixels: int = 16_000_000
    mask_threshold: float = 0.95
    expansion_gain: float = 4.0
    energy: str = "auto"
    scale: str = "relative"

    def __post_init__(self):
        if self.method not in METHODS:
            raise Ldr2HdrError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.crf_trust not in CRF_TRUST_MODES:
            raise Ldr2HdrError(f"crf trust must be one of {', '.join(CRF_TRUST_MODES)}, got {self.crf_trust!r}")
        if self.energy not in ENERGY_MODES:
            raise Ldr2HdrError(f"energy must be one of {', '.join(ENERGY_MODES)}, got {self.energy!r}")
        if self.panorama not in PANORAMA_MODES:
            raise Ldr2HdrError(f"panorama must be one of {', '.join(PANORAMA_MODES)}, got {self.panorama!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise Ldr2HdrError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.weights_dir and not os.path.isdir(self.weights_dir):
            raise Ldr2HdrError("weights folder not found", self.weights_dir)
        if self.precision not in PRECISIONS:
            raise Ldr2HdrError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.scale not in SCALE_MODES:
            raise Ldr2HdrError(f"scale must be one of {', '.join(SCALE_MODES)}, got {self.scale!r}")
        if not (-32 <= float(self.exposure) <= 32):
            raise Ldr2HdrError(f"exposure must be within +-32 stops, got {self.exposure}")
        if not (64 <= int(self.tile_size) <= 8192):
            raise Ldr2HdrError(f"tile size must be between 64 and 8192 pixels, got {self.tile_size}")

    def dequantizes(self, height: int, width: int) -> bool:
        """Whether an image of ``height`` x ``width`` is dequantized (see ``dequantize``)."""
        limit = int(self.dequantize_max_pixels)
        return bool(self.dequantize) and (limit <= 0 or height * width <= limit)

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)


@dataclass
class Result:
    """What a pipeline run produced. Arrays are float32 ``HxWx3`` (mask ``HxW``)."""

    inverse_crf: crf.InverseCRF
    linear: np.ndarray | None = None
    hdr: np.ndarray | None = None
    mask: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)
    #: The clipped light sources (``energy.Source.to_dict()``), brightest first; energies in
    #: the output's units. Empty when nothing was clipped or the energy step was off.
    sources: list = field(default_factory=list)
    #: One line per thing the user asked for and did not get (e.g. ``--scale exif`` without EXIF).
    notes: list = field(default_factory=list)

    @property
    def image(self) -> np.ndarray | None:
        """The final image of the run: HDR if highlights were restored, else the linear one."""
        return self.hdr if self.hdr is not None else self.linear


# Peak bytes per pixel of a whole run: `/usr/bin/time -v ldr2hdr reconstruct` on a 4096x2048
# JPEG peaked at 1.13 GB, i.e. ~87 B/px above the ~400 MB of torch and weights (decoded input,
# LDR, dequantized, linear, mask, output, EXR buffer); rounded up. The network adds a per-tile
# term (activations of one tile).
BYTES_PER_PIXEL = 96
BYTES_PER_TILE_PIXEL = 2400
# The same for ``inference.banded`` (large images, row bands): the 8-bit codes (3 B), the
# clipped map (1 B), the energy step's full-size luminance map (4 B) and the decoder's copy
# while reading (3 B), rounded up; the bands and the network's low-resolution arrays are in
# the constant.
BYTES_PER_PIXEL_BANDED = 16
BANDED_FIXED_BYTES = 600 * 2 ** 20


def estimate_peak_bytes(height: int, width: int, settings: "Settings", banded: bool = False) -> int:
    """Rough upper estimate of the memory one image needs, for refusing work that cannot fit;
    ``banded``: run by :mod:`.banded`."""
    tile = min(int(settings.tile_size), max(height, width)) ** 2
    model = BYTES_PER_TILE_PIXEL * tile if settings.method == "learned" else 0
    if banded:
        return BYTES_PER_PIXEL_BANDED * height * width + BANDED_FIXED_BYTES + model + 400 * 2 ** 20
    return BYTES_PER_PIXEL * height * width + model + 400 * 2 ** 20  # + torch and the weights


def fit_tile_size(height: int, width: int, settings: "Settings", limit_bytes: int,
                  banded: bool = False) -> "Settings":
    """Shrink the tile until the estimate fits ``limit_bytes``; raise when even 128 px cannot."""
    tile = int(settings.tile_size)
    while tile > 128 and estimate_peak_bytes(height, width, settings.with_(tile_size=tile), banded) > limit_bytes:
        tile //= 2
    fitted = settings.with_(tile_size=max(tile, 128))
    need = estimate_peak_bytes(height, width, fitted, banded)
    if need > limit_bytes:
        raise Ldr2HdrError(f"a {width} x {height} image needs about {need / 2**30:.1f} GB, above the "
                           f"memory limit of {limit_bytes / 2**30:.1f} GB (raise --max-memory or downscale it)")
    return fitted


def default_memory_limit() -> int:
    """60% of the machine's physical memory (8 GB when it cannot be read)."""
    try:
        return int(0.6 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2 ** 30


def torch_device(name: str) -> str:
    """``auto`` means CUDA when torch sees a GPU; an explicit ``cuda`` without one is an error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise Ldr2HdrError("--device cuda was requested but torch sees no CUDA GPU (use --device auto or cpu)")
    return name


def is_panorama(shape: tuple, mode: str = "auto") -> bool:
    """Whether an image of ``shape`` (H, W, ...) is treated as a 360 equirectangular map."""
    if mode != "auto":
        return mode == "on"
    h, w = shape[:2]
    return h > 0 and abs(w / h - 2.0) < 0.02


def check_ldr(ldr: np.ndarray) -> np.ndarray:
    """Validate an LDR input: float ``HxWx3`` with finite values in [0, 1]."""
    a = np.asarray(ldr)
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] < 1 or a.shape[1] < 1:
        raise Ldr2HdrError(f"expected an HxWx3 image, got shape {a.shape}")
    a = a.astype(np.float32, copy=False)
    lo, hi = float(a.min()), float(a.max())  # a NaN anywhere makes both NaN, an infinity one of them
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise Ldr2HdrError("image contains NaN or infinite values")
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise Ldr2HdrError(f"LDR pixel values must be in [0, 1], got [{lo:.4g}, {hi:.4g}]")
    # no copy when the values are already in range (a decoded 8K panorama is 400 MB); the
    # pipeline never writes into its input
    return a if 0.0 <= lo and hi <= 1.0 else np.clip(a, 0.0, 1.0)


def weights_file(settings: Settings, name: str) -> str | None:
    """``settings.weights_dir/name`` when that file exists, else None (the bundled weights)."""
    if settings.weights_dir:
        path = os.path.join(settings.weights_dir, name)
        if os.path.isfile(path):
            return path
        logger.info("%s has no %s; using the bundled one", settings.weights_dir, name)
    return None


def estimate_crf(ldr: np.ndarray, settings: Settings = Settings(), exif=None) -> crf.InverseCRF:
    """Choose the inverse camera curve for ``ldr`` (``HxWx3`` in [0, 1]).

    ``settings.crf`` given explicitly wins. The learned method asks the CRF network (which
    falls back to sRGB, with low confidence, when the image carries too little information).
    The classical method assumes sRGB: it is what cameras and browsers declare for JPEG/PNG,
    and with no other information it is the least surprising choice. ``exif`` (``io.ExifInfo``)
    decides the learned curve's blend with sRGB under ``settings.crf_trust == "auto"``.
    """
    if isinstance(settings.crf, crf.InverseCRF):
        return settings.crf
    if settings.crf != "auto":
        return crf.parametric_inverse(str(settings.crf))
    if settings.method == "learned":
        from .crf.network import estimate_crf_learned

        camera = getattr(exif, "camera", None) if settings.crf_trust == "auto" else None
        blend = settings.crf_trust == "srgb-blend" or (settings.crf_trust == "auto" and not camera)
        inv = estimate_crf_learned(ldr, per_channel=settings.per_channel, device=torch_device(settings.device),
                                   weights=weights_file(settings, "crf_net.safetensors"), shrink=blend,
                                   shrink_weights=weights_file(settings, "crf_shrink.safetensors"))
        if camera and inv.method == "learned":
            inv = replace(inv, method="learned (camera in EXIF: the network's curve, not blended with sRGB)",
                          details=dict(inv.details, camera=camera))
        return inv
    inv = crf.srgb_inverse()
    return crf.InverseCRF(inv.curves, "srgb (classical default)", 1.0)


def linearize(ldr: np.ndarray, inv: crf.InverseCRF, settings: Settings = Settings()) -> tuple[np.ndarray, np.ndarray]:
    """Undo the curve (after dequantization). Returns linear ``HxWx3`` and the soft mask ``HxW``."""
    if settings.dequantizes(*ldr.shape[:2]):
        smooth = dequantize(ldr)  # a fresh copy: the curve is applied in place
        linear = crf.linearize(smooth, inv, out=smooth)
    else:
        linear = crf.linearize(ldr, inv)
    return linear, soft_saturation_mask(ldr, settings.mask_threshold)


def restore_highlights(linear: np.ndarray, ldr: np.ndarray, mask: np.ndarray, settings: Settings = Settings(),
                       progress: Callable[[float], None] | None = None, in_place: bool = False) -> np.ndarray:
    """Bring back radiance in clipped regions. Returns float32 ``HxWx3``, never clamped.

    ``progress`` (learned method) is called with the fraction of network tiles done;
    ``in_place``: the learned method may write the result into ``linear`` (large images)."""
    wrap = is_panorama(linear.shape, settings.panorama)
    if settings.method == "learned":
        from .highlights.learned import restore_highlights_learned

        return restore_highlights_learned(linear, mask, panorama=wrap, tile_size=settings.tile_size,
                                          device=torch_device(settings.device), precision=settings.precision,
                                          weights=weights_file(settings, "highlight_net.safetensors"),
                                          progress=progress, in_place=in_place)
    return classical.expand_kovaleski_oliveira(linear, ldr, gain=settings.expansion_gain, wrap=wrap)


def _output_scale(settings: Settings, ldr: np.ndarray, linear: np.ndarray, exif, meta: dict,
                  notes: list) -> float:
    """The output's factor (units x ``2**exposure``); records the units in ``meta`` and, when
    the requested units could not be had, why in ``notes``."""
    return record_scale(settings, output_scale(settings.scale, ldr, linear, exif), meta, notes)


def record_scale(settings: Settings, measured: tuple[float, str, str], meta: dict, notes: list) -> float:
    """:func:`_output_scale` from ``lighting.units.output_scale``'s ``(units, mode, note)``."""
    units, mode, note = measured
    if mode != settings.scale:
        notes.append(note)
    scale = float(units * 2.0 ** settings.exposure)
    meta.update(scale_mode=mode, units=note, units_scale=float(units), exposure_scale=scale)
    return scale


def energy_runs(settings: Settings) -> bool:
    """Whether :func:`restore_energy` does anything with these settings."""
    return settings.energy != "off" and settings.method == "learned"


def restore_energy(hdr: np.ndarray, linear: np.ndarray | None, ldr: np.ndarray | None, settings: Settings = Settings(),
                   scale: float = 1.0, scene=None) -> tuple[np.ndarray, list[dict]]:
    """The energy step (``settings.energy``): rescale each clipped source of ``hdr`` to its
    estimated energy. Returns the image and the source list (energies times ``scale``, the
    output's exposure). ``scene``: ``energy.find_clipped`` of ``linear`` and ``ldr``, made
    before the restoration (then neither is needed here)."""
    if not energy_runs(settings):
        return hdr, []
    from .highlights import energy

    hdr, found = energy.restore_energy(hdr, linear, ldr, panorama=is_panorama(hdr.shape, settings.panorama),
                                       weights=weights_file(settings, energy.WEIGHTS_NAME), scene=scene)
    out = []
    for src in found:
        d = src.to_dict()
        d["energy"] *= scale
        d["clip_level_energy"] *= scale
        out.append(d)
    return hdr, out


def run_metadata(settings: Settings, inv: crf.InverseCRF, shape: tuple, clipped_fraction: float, exif=None) -> dict:
    """The metadata every run records: software, method, curve, panorama, exposure, the
    fraction of pixels clipped (largest channel at the top code) and the EXIF exposure."""
    meta = {
        "software": f"ldr2hdr {__version__}",
        "method": settings.method,
        "crf_method": inv.method,
        "crf_confidence": float(inv.confidence),
        "panorama": bool(is_panorama(shape, settings.panorama)),
        "exposure_stops": float(settings.exposure),
        "exposure_scale": float(2.0 ** settings.exposure),
        "clipped_fraction": float(clipped_fraction),
    }
    if exif is not None:
        meta.update({f"exif_{k}": v for k, v in asdict(exif).items() if v is not None and k != "orientation"})
    return meta


def run(ldr: np.ndarray, settings: Settings = Settings(), *, steps: str = "reconstruct", exif=None,
        progress: Callable[[float, str], None] | None = None, keep_intermediates: bool = True) -> Result:
    """Run the pipeline up to ``steps`` on one LDR image.

    Args:
        ldr: float32 ``HxWx3`` pixel values in [0, 1], top-down rows.
        settings: see :class:`Settings`.
        steps: ``"estimate-crf"``, ``"linearize"``, ``"restore"`` or ``"reconstruct"``
            (``restore`` and ``reconstruct`` both run all three steps on an LDR input).
        exif: optional EXIF info (exposure time, f-number, ISO) recorded in the metadata.
        progress: called as ``progress(fraction, message)`` with a non-decreasing fraction
            in [0, 1] at each stage and after every tile of the highlight network.
        keep_intermediates: keep the linear image and the mask in the result after the
            highlights are restored. ``False`` returns only ``hdr``: the restoration may then
            write into the linear image (the energy step's view of the clipped pixels is taken
            before it either way), and the mask is freed after it (about 0.9 GB less at 8192x4096).
    """

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    if steps not in STEPS:
        raise Ldr2HdrError(f"unknown step {steps!r}; choose one of {', '.join(STEPS)}")
    ldr = check_ldr(ldr)
    report(0.0, "estimating the camera curve")
    inv = estimate_crf(ldr, settings, exif)
    meta = run_metadata(settings, inv, ldr.shape, float(np.mean(channel_max(ldr) >= 254.5 / 255.0)), exif)
    result = Result(inverse_crf=inv, metadata=meta)
    if steps == "estimate-crf":
        return result
    report(0.1, "linearizing")
    linear, mask = linearize(ldr, inv, settings)
    result.mask = mask
    scale = np.float32(_output_scale(settings, ldr, linear, exif, meta, result.notes))
    if steps == "linearize":
        result.linear = linear * scale if scale != 1 else linear
        report(1.0, "done")
        return result
    report(0.2, "restoring highlights")
    scene = None
    if energy_runs(settings):
        # what the energy step needs of the linear image, taken first so the restoration may overwrite it
        from .highlights import energy

        scene = energy.find_clipped(linear, ldr, panorama=is_panorama(linear.shape, settings.panorama))
    hdr = restore_highlights(linear, ldr, mask, settings, in_place=not keep_intermediates,
                             progress=lambda f: report(0.2 + 0.75 * f, "restoring highlights"))
    if not keep_intermediates:
        result.mask = mask = linear = None
    report(0.95, "estimating the energy of the light sources")
    hdr, result.sources = restore_energy(hdr, None, None, settings, float(scale), scene=scene)
    if result.sources:
        meta["sources"] = result.sources
    result.linear = linear
    result.hdr = hdr * scale if scale != 1 else hdr
    report(1.0, "done")
    return result


def run_on_linear(linear: np.ndarray, inv: crf.InverseCRF, settings: Settings = Settings(), exif=None) -> Result:
    """Restore highlights of an image that is already linearized (values up to 1, e.g. the
    output of the ``linearize`` step) with the curve ``inv`` it was linearized with.

    The curve re-encodes the linear values to find the clipped pixels; the linear values are
    kept where nothing was clipped. Raises :class:`Ldr2HdrError` for an already expanded image.
    """
    linear = np.asarray(linear, dtype=np.float32)
    if float(linear.max()) > 1.0 + 1e-3:
        raise Ldr2HdrError("restore expects a linearized image with values up to 1 "
                           "(output of 'ldr2hdr linearize'); this one is already expanded")
    ldr = crf.apply_crf(linear, inv)
    # Dequantization moved each pixel only within its 8-bit code cell, so rounding the
    # re-encoded values to codes gives back the LDR pixels the mask is made from: restoring a
    # linearized image then treats exactly the same pixels as clipped as ``reconstruct`` does.
    ldr = (np.round(ldr * 255.0) / 255.0).astype(np.float32)
    mask = soft_saturation_mask(ldr, settings.mask_threshold)
    meta = {"software": f"ldr2hdr {__version__}", "method": settings.method, "crf_method": inv.method}
    notes: list = []
    scale = _output_scale(settings, ldr, linear, exif, meta, notes)
    hdr, found = restore_energy(restore_highlights(linear, ldr, mask, settings), linear, ldr, settings, scale)
    if found:
        meta["sources"] = found
    return Result(inverse_crf=inv, linear=linear, hdr=hdr * np.float32(scale), mask=mask, metadata=meta, sources=found,
                  notes=notes)
