"""The scale of a reconstruction: relative, physical from EXIF, or matched to the photo.

* ``relative`` (default): the pipeline's own units, 1 = the camera's clip level.
* ``exif``: absolute, from the photo's exposure time ``t`` (s), f-number ``N`` and ISO ``S``.
  A camera exposes so that a surface of the metered luminance lands on mid-grey (linear
  :data:`MID_GREY`, 8-bit sRGB code 118: ISO 12232 standard output sensitivity), and a
  reflected-light meter sets ``N**2 / t = L * S / K`` with ``K`` = :data:`METER_K` (12.5, the
  ISO 2720 constant Canon, Nikon and Sekonic use). So a linear value ``v`` is the luminance
  ``L = v / 0.18 * 12.5 * N**2 / (t * S)`` cd/m^2; the map stores ``L / 683`` (683 lm/W), the
  radiance in W m^-2 sr^-1 that Blender's World and light strengths are in. Accurate to the
  camera's metering calibration and the curve estimate: expect a factor of about 1.5 either way.
* ``match-photo``: one global scale so that Blender's Standard view shows the unclipped
  pixels at the photo's own brightness (the median over its mid-tones of sRGB-decoded photo /
  reconstruction); Blender's default AgX view shows mid-grey about as bright.
"""

from __future__ import annotations

import math

import numpy as np

from ..crf import srgb_to_linear
from ..imaging import channel_max, luminance

SCALE_MODES = ("relative", "exif", "match-photo")
METER_K = 12.5
MID_GREY = 0.18
LUMENS_PER_WATT = 683.0
UNITS = {
    "relative": "relative: 1 = the camera's clip level",
    "exif": "W m^-2 sr^-1 (luminance in cd/m^2 / 683), from EXIF exposure: L = v / 0.18 * 12.5 * N^2 / (t * ISO)",
    "match-photo": "display-matched: Blender's Standard view shows the photo's mid-tones at their own brightness",
}


def exif_scale(exposure_time: float | None, f_number: float | None, iso: float | None) -> float | None:
    """Radiance (W m^-2 sr^-1) per unit of linear value for an exposure, or None when one of
    the three is missing or not positive."""
    if not all(isinstance(x, (int, float)) and math.isfinite(x) and x > 0 for x in (exposure_time, f_number, iso)):
        return None
    luminance_per_unit = METER_K * f_number ** 2 / (exposure_time * iso) / MID_GREY
    return luminance_per_unit / LUMENS_PER_WATT


def match_photo_scale(ldr: np.ndarray, linear: np.ndarray) -> float:
    """Global scale that brings the mid-tones (max channel 0.1-0.9) of ``linear`` to the
    sRGB-decoded photo ``ldr`` (median ratio of luminances); 1 when there are too few."""
    return scale_from_log_ratios(*mid_tone_log_ratios(ldr, linear))


def mid_tone_log_ratios(ldr: np.ndarray, linear: np.ndarray) -> tuple[int, np.ndarray]:
    """What :func:`match_photo_scale` needs of some pixels: ``(number of mid-tone pixels,
    log(photo / reconstruction) luminance of those where both are positive)``. Row bands of an
    image may be measured one by one: the counts add, the ratios concatenate."""
    ldr = np.asarray(ldr, np.float32)
    m = channel_max(ldr)
    sel = (m > 0.1) & (m < 0.9)
    target = luminance(srgb_to_linear(ldr[sel]))
    got = luminance(np.asarray(linear)[sel])
    ok = (target > 0) & (got > 0)
    return int(np.count_nonzero(sel)), np.log(target[ok]) - np.log(got[ok])


def scale_from_log_ratios(n_mid_tones: int, log_ratios: np.ndarray) -> float:
    """The match-photo scale from :func:`mid_tone_log_ratios`; 1 when there are too few."""
    if n_mid_tones < 16 or len(log_ratios) < 16:
        return 1.0
    return float(np.exp(np.median(log_ratios)))


def output_scale(mode: str, ldr: np.ndarray, linear: np.ndarray, exif=None) -> tuple[float, str, str]:
    """``(scale, mode used, note)`` for ``mode`` (one of :data:`SCALE_MODES`). Without EXIF
    exposure data ``exif`` falls back to ``relative`` and the note says so."""
    if mode == "relative":
        return 1.0, "relative", UNITS["relative"]
    if mode == "match-photo":
        return match_photo_scale(ldr, linear), "match-photo", UNITS["match-photo"]
    if mode == "exif":
        s = exif_scale(*(getattr(exif, k, None) for k in ("exposure_time", "f_number", "iso")))
        if s is None:
            return 1.0, "relative", "relative (no EXIF exposure time, f-number and ISO in the photo)"
        return s, "exif", UNITS["exif"]
    raise ValueError(f"unknown scale mode {mode!r}; choose one of {', '.join(SCALE_MODES)}")
