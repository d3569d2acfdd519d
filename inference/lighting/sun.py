"""The sun of an equirectangular HDR map as a lamp, and the map without it (bpy-free, numpy).

A sun that is a few very bright pixels of an environment map gives soft, noisy shadows; a
renderer's directional (Sun) lamp gives sharp, clean ones. :func:`extract_sun` finds the
dominant compact light of a map, measures it (direction, angular diameter, colour, the
irradiance it gives a surface facing it) and returns the map with exactly that light removed,
so that map + lamp light a scene as the map alone did.

Steps:

1. The brightest spot of the map (luminance, averaged to at most :data:`SEARCH_WIDTH` px
   wide so that one hot pixel of a large map does not win).
2. Around it: the background level (median luminance in a ring 12-24 deg away) and the
   connected region brighter than :data:`OVER_BACKGROUND` times it. A region that reaches
   :data:`MAX_RADIUS_DEG` from the peak is not compact (an overcast sky, a large window):
   no sun.
3. The region (grown by 2 px) is filled from its surroundings (inverse-distance weights of
   the pixels just outside it, on the sphere); the removed light is ``max(map - fill, 0)``
   per channel, so the fill never adds light.
4. The lamp: direction = the removed light's centroid on the sphere; irradiance per channel
   on a surface facing it = the removed radiance x solid angle x cosine (so at that normal
   map + lamp equals the map exactly); angular diameter from the removed light's mean
   squared angle about that direction (``r**2 / 2`` for a uniform disc of radius ``r``, less
   the pixel grid's share).
5. It is a sun only if it gives at least :data:`MIN_SHARE` of the irradiance on a surface
   facing it, lies above the horizon and is at most :data:`MAX_SUN_ANGLE_DEG` across (the
   sun is 0.53 deg; a reconstruction spreads it a little); otherwise :attr:`Extraction.sun`
   is ``None`` and :attr:`Extraction.reason` says why (the measured candidate is kept).
6. A map ldr2hdr reconstructed comes with its list of clipped light sources; when the map
   alone shows no compact sun, the list's brightest source is the candidate and the light
   of its clipped blob above the clip level becomes a lamp of the real sun's size (see the
   ``sources`` argument of :func:`extract_sun`).

Units: radiance in the map's own units; a map in W m^-2 sr^-1 gives the lamp's irradiance
(Blender's Sun ``strength``) in W m^-2. Directions use :func:`..imaging.equirect_directions`'
convention (+Y up, row 0 the zenith, the centre column looking along -Z); ``u, v`` are the
centre's image coordinates (0..1 left to right, 0..1 top to bottom).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import Ldr2HdrError
from ..highlights.sources import dilate, label_components
from ..imaging import REC709_Y, direction_angles, equirect_directions_at, equirect_solid_angle

SEARCH_WIDTH = 1024
PEAK_DEG = 3.0  # the most light within this angle marks the candidate
WINDOW_DEG = 24.0  # half-size of the neighbourhood examined around the peak
RING_DEG = (12.0, 24.0)  # where the background level is measured
MAX_RADIUS_DEG = 10.0  # a compact source lies within this angle of its peak
OVER_BACKGROUND = 4.0
GROW_PX = 2
MIN_SHARE = 0.3
MIN_ELEVATION_DEG = -2.0
MAX_SUN_ANGLE_DEG = 3.0  # the sun is 0.53 deg; softboxes and windows are larger
SUN_ANGLE_DEG = 0.53  # the real sun, for a sun whose size the map does not show
SOURCE_SEARCH_DEG = 45.0  # a listed source's pixels are looked for this far from its direction
LUMA = REC709_Y.astype(np.float64)


@dataclass(frozen=True)
class Sun:
    """One compact light source, measured on the map.

    Attributes:
        direction: unit vector toward the source (``equirect_directions`` convention).
        u, v: its centre in image coordinates (0..1, left to right and top to bottom).
        elevation_deg, azimuth_deg: the same direction as angles (azimuth 0 at the image
            centre, growing to the right).
        angle_deg: angular diameter (degrees).
        irradiance_rgb: irradiance per channel on a surface facing it (map units x sr).
        strength: the largest channel of ``irradiance_rgb`` (a Sun lamp's strength).
        color: ``irradiance_rgb / strength`` (each channel in 0..1).
        share: its part of the luminance irradiance on a surface facing it (0..1).
        pixels: map pixels changed by the removal.
    """

    direction: tuple[float, float, float]
    u: float
    v: float
    elevation_deg: float
    azimuth_deg: float
    angle_deg: float
    irradiance_rgb: tuple[float, float, float]
    strength: float
    color: tuple[float, float, float]
    share: float
    pixels: int

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Extraction:
    """What :func:`extract_sun` found.

    Attributes:
        sun: the sun, or ``None`` when the map has none.
        reason: one line: what was found, or why there is no sun.
        without_sun: the map with the sun's light removed (float32 HxWx3), ``None`` without a sun.
        candidate: the brightest compact source as measured, also when it was not taken as a
            sun (``None`` when there is no compact source at all).
    """

    sun: Sun | None
    reason: str
    without_sun: np.ndarray | None
    candidate: Sun | None


def _check_map(hdr: np.ndarray) -> np.ndarray:
    hdr = np.asarray(hdr)
    if hdr.ndim != 3 or hdr.shape[2] < 3:
        raise Ldr2HdrError(f"expected an HxWx3 map, got shape {hdr.shape}")
    h, w = hdr.shape[:2]
    if h < 8 or abs(w - 2 * h) > max(1, round(0.01 * w)):
        raise Ldr2HdrError(f"not an equirectangular panorama: {w}x{h} is not 2:1")
    return hdr[..., :3]


def _coarse_luminance(hdr: np.ndarray) -> tuple[np.ndarray, int]:
    """Luminance averaged over ``f x f`` blocks (``f`` makes it at most SEARCH_WIDTH wide)."""
    h, w = hdr.shape[:2]
    f = max(1, math.ceil(w / SEARCH_WIDTH))
    hc, wc = h // f, w // f
    out = np.empty((hc, wc), np.float64)
    band = max(1, 64 // f)
    for r in range(0, hc, band):
        r1 = min(hc, r + band)
        y = np.asarray(hdr[r * f:r1 * f, :wc * f], np.float64) @ LUMA
        out[r:r1] = y.reshape(r1 - r, f, wc, f).mean(axis=(1, 3))
    return out, f


def _window(h: int, w: int, r0: int, c0: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Rows and (wrapped) columns within about WINDOW_DEG of pixel (r0, c0); True when every column."""
    half_rows = math.ceil(WINDOW_DEG / 180.0 * h)
    rows = np.arange(max(0, r0 - half_rows), min(h, r0 + half_rows + 1))
    lat_edge = max(abs(90.0 - (rows[0] + 0.5) * 180.0 / h), abs(90.0 - (rows[-1] + 0.5) * 180.0 / h))
    cos_edge = math.cos(math.radians(min(lat_edge, 90.0)))
    half_deg = WINDOW_DEG / cos_edge if cos_edge > 1e-6 else 360.0
    if half_deg >= 170.0:
        return rows, np.arange(w), True
    half_cols = math.ceil(half_deg / 360.0 * w)
    return rows, np.arange(c0 - half_cols, c0 + half_cols + 1) % w, False


def _energy_peak(coarse: np.ndarray) -> tuple[int, int]:
    """The coarse pixel at the centre of the most light within PEAK_DEG: the most energetic
    compact source, not the brightest single pixel (a small lamp can outshine the sun)."""
    hc, wc = coarse.shape
    k = max(1, round(PEAK_DEG / (360.0 / wc)))
    energy = coarse * equirect_solid_angle(hc, wc)
    cs = np.cumsum(np.concatenate([energy[:, -k:], energy, energy[:, :k]], axis=1), axis=1)
    cols = cs[:, 2 * k:] - np.concatenate([np.zeros((hc, 1)), cs[:, :-2 * k - 1]], axis=1)
    pad = np.pad(cols, ((k, k), (0, 0)))
    rs = np.cumsum(pad, axis=0)
    box = rs[2 * k:] - np.concatenate([np.zeros((1, wc)), rs[:-2 * k - 1]], axis=0)
    r, c = np.unravel_index(int(np.argmax(box)), box.shape)
    # the brightest coarse pixel of that neighbourhood
    rr = np.arange(max(0, r - k), min(hc, r + k + 1))
    cc = np.arange(c - k, c + k + 1) % wc
    sub = coarse[np.ix_(rr, cc)]
    i, j = np.unravel_index(int(np.argmax(sub)), sub.shape)
    return int(rr[i]), int(cc[j])


def _compact_region(lum: np.ndarray, theta: np.ndarray, peak: tuple[int, int], floor: float, wrap: bool):
    """The largest connected region around ``peak`` brighter than ``peak / 2**k`` (and than
    ``floor``) that stays within MAX_RADIUS_DEG; None when even half the peak spreads further."""
    best = None
    top = float(lum[peak])
    for k in range(1, 40):
        level = top * 2.0 ** -k
        if level <= floor:
            level = floor
        labels, _ = label_components(lum > level, wrap)
        region = labels == labels[peak]
        if theta[region].max() > MAX_RADIUS_DEG:
            break
        best = region
        if level == floor:
            break
    return best


def _fill_from_surroundings(values: np.ndarray, region: np.ndarray, dirs: np.ndarray, wrap: bool) -> np.ndarray:
    """``values`` with the pixels of ``region`` replaced by an inverse-squared-distance average
    (on the sphere) of the pixels bordering it."""
    border = dilate(region, 1, wrap) & ~region
    if not border.any():
        return values.copy()
    bd, bv = dirs[border], values[border]
    out = values.copy()
    idx = np.argwhere(region)
    for k in range(0, len(idx), 4096):
        part = idx[k:k + 4096]
        d2 = np.maximum(((dirs[part[:, 0], part[:, 1]][:, None, :] - bd[None]) ** 2).sum(-1), 1e-12)
        wgt = 1.0 / d2
        out[part[:, 0], part[:, 1]] = (wgt @ bv) / wgt.sum(axis=1, keepdims=True)
    return out


def _describe(direction: np.ndarray, removed: np.ndarray, omega: np.ndarray, dirs: np.ndarray,
               pixel_angle: float) -> Sun:
    """The lamp's measurements of ``removed`` about ``direction`` (share 0: :func:`_measure` sets it)."""
    cos_d = np.clip(dirs @ direction, -1.0, 1.0)
    irr = (removed * (omega * np.maximum(cos_d, 0.0))[..., None]).reshape(-1, 3).sum(axis=0)
    weight = (removed @ LUMA * omega).ravel()
    theta = np.arccos(cos_d).ravel()
    # a uniform disc of radius r has mean squared angle r**2 / 2 about its centre; the pixel
    # grid adds the variance of a box one pixel high and cos(latitude) pixels wide
    total = float(weight.sum())
    mean_sq = float((weight * theta ** 2).sum() / total) if total > 0 else 0.0
    grid = pixel_angle ** 2 * (1.0 + (1.0 - direction[1] ** 2)) / 12.0
    radius = max(math.sqrt(max(2.0 * (mean_sq - grid), 0.0)), 0.5 * pixel_angle)
    strength = float(irr.max())
    x, y, z = (float(c) for c in direction)
    lon, lat = direction_angles(direction)
    return Sun(direction=(x, y, z), u=(lon + math.pi) / (2 * math.pi), v=(math.pi / 2 - lat) / math.pi,
               elevation_deg=math.degrees(lat), azimuth_deg=math.degrees(lon), angle_deg=math.degrees(2 * radius),
               irradiance_rgb=tuple(float(c) for c in irr), strength=strength,
               color=tuple(float(c / strength) if strength > 0 else 0.0 for c in irr), share=0.0,
               pixels=int((removed.max(axis=-1) > 0).sum()))


def _measure(removed: np.ndarray, omega: np.ndarray, dirs: np.ndarray, coarse: np.ndarray, pixel_angle: float,
             angle_deg: float | None = None) -> Sun | None:
    """The lamp that holds ``removed`` (the light taken out of a window of the map, whose pixel
    solid angles and directions are ``omega`` and ``dirs``), with its share of the light facing
    it measured on the whole map's ``coarse`` luminance; None when nothing was removed.
    ``angle_deg`` replaces the measured angular diameter."""
    centroid = ((removed @ LUMA * omega)[..., None] * dirs).reshape(-1, 3).sum(axis=0)
    norm = float(np.linalg.norm(centroid))
    if norm == 0.0:
        return None
    direction = centroid / norm
    hc, wc = coarse.shape
    cdirs = equirect_directions_at(np.arange(hc)[:, None], np.arange(wc)[None, :], hc, wc)
    total = float((coarse * equirect_solid_angle(hc, wc) * np.maximum(cdirs @ direction, 0.0)).sum())
    sun = _describe(direction, removed, omega, dirs, pixel_angle)
    share = float(np.dot(sun.irradiance_rgb, LUMA) / total) if total > 0 else 0.0
    changes = {"share": min(share, 1.0)} if angle_deg is None else {"share": min(share, 1.0), "angle_deg": angle_deg}
    return Sun(**{**asdict(sun), **changes})


def _refused(sun: Sun, what: str, min_share: float) -> Extraction | None:
    """The no-sun answer for a candidate below the horizon or with too small a share (None
    when it passes both); ``what`` names the candidate in the reason."""
    if sun.elevation_deg < MIN_ELEVATION_DEG:
        return Extraction(None, f"{what} is below the horizon ({sun.elevation_deg:.1f} deg): no sun", None, sun)
    if sun.share < min_share:
        return Extraction(None, f"{what} gives only {100 * sun.share:.0f} % of the light on a surface facing it "
                                f"(a sun gives at least {100 * min_share:.0f} %): no sun", None, sun)
    return None


def lamp_irradiance(sun: Sun, normals: np.ndarray, samples: int = 512) -> np.ndarray:
    """Irradiance per channel ``(N, 3)`` that ``sun`` as a directional lamp gives surfaces with
    unit ``normals`` ``(N, 3)``: a uniform disc of ``sun.angle_deg`` (as a renderer's Sun lamp
    with that angle) whose irradiance at normal incidence is ``sun.irradiance_rgb``."""
    d = np.asarray(sun.direction, np.float64)
    r = math.radians(sun.angle_deg) / 2.0
    # points spread evenly in solid angle over the cap of radius r (a golden-angle spiral)
    k = np.arange(samples) + 0.5
    cos_t = 1.0 - (1.0 - math.cos(r)) * k / samples
    sin_t = np.sqrt(np.maximum(0.0, 1.0 - cos_t ** 2))
    phi = k * math.pi * (3.0 - math.sqrt(5.0))
    a = np.cross(d, [0.0, 1.0, 0.0] if abs(d[1]) < 0.9 else [1.0, 0.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(d, a)
    pts = cos_t[:, None] * d + sin_t[:, None] * (np.cos(phi)[:, None] * a + np.sin(phi)[:, None] * b)
    facing = cos_t.mean()
    share = np.maximum(np.asarray(normals, np.float64) @ pts.T, 0.0).mean(axis=1) / facing
    return share[:, None] * np.asarray(sun.irradiance_rgb)[None, :]


def extract_sun(hdr: np.ndarray, *, min_share: float = MIN_SHARE, max_angle_deg: float = MAX_SUN_ANGLE_DEG,
                sources: list[dict] | None = None) -> Extraction:
    """Find the sun of an equirectangular HDR map and remove it.

    Args:
        hdr: float HxWx3 linear map (2:1, top-down rows), never clamped; not modified.
        min_share: the least part of the irradiance on a surface facing the source that it
            must give to count as a sun.
        max_angle_deg: the largest angular diameter of a sun (larger compact lights are
            softboxes, lamp shades, windows).
        sources: the light sources ldr2hdr listed for this map when it reconstructed it (the
            ``ldr2hdr:sources`` header, in the map's units). When the map shows no compact sun,
            the list's brightest source is the candidate: the light of its
            clipped blob above the blob's clip-level fill becomes a lamp the size of the real sun
            (:data:`SUN_ANGLE_DEG`; a reconstruction spreads a clipped sun's energy over its blob).

    Returns:
        :class:`Extraction`; its ``without_sun`` plus a directional lamp of ``sun.irradiance_rgb``
        from ``sun.direction`` light a scene as ``hdr`` does.

    Raises:
        Ldr2HdrError: not an HxWx3 2:1 map, or values that are not finite.
    """
    hdr = _check_map(hdr)
    coarse, f = _coarse_luminance(hdr)
    if not np.all(np.isfinite(coarse)):
        raise Ldr2HdrError("the map has values that are not finite (NaN or infinity)")
    found = _extract_compact(hdr, coarse, f, min_share, max_angle_deg)
    if found.sun is None and sources:
        listed = _extract_listed(hdr, coarse, sources, min_share)
        if listed is not None and (listed.sun is not None or found.candidate is None):
            return listed
    return found


def _extract_compact(hdr: np.ndarray, coarse: np.ndarray, f: int, min_share: float,
                     max_angle_deg: float) -> Extraction:
    """:func:`extract_sun` on the map alone (``coarse``: its luminance in ``f x f`` blocks)."""
    h, w = hdr.shape[:2]
    rc, cc = _energy_peak(coarse)
    block = np.asarray(hdr[rc * f:(rc + 1) * f, cc * f:(cc + 1) * f], np.float64) @ LUMA
    br, bc = np.unravel_index(int(np.argmax(block)), block.shape)
    r0, c0 = rc * f + int(br), cc * f + int(bc)

    rows, cols, wrap = _window(h, w, r0, c0)
    values = np.asarray(hdr[np.ix_(rows, cols)], np.float64)
    lum = values @ LUMA
    dirs = equirect_directions_at(rows[:, None], cols[None, :], h, w)
    omega = np.broadcast_to(equirect_solid_angle(h, w)[rows, :1], lum.shape)
    pr, pc = int(np.searchsorted(rows, r0)), int(np.nonzero(cols == c0)[0][0])
    theta = np.degrees(np.arccos(np.clip(dirs @ dirs[pr, pc], -1.0, 1.0)))
    ring = (theta >= RING_DEG[0]) & (theta < RING_DEG[1])
    background = float(np.median(lum[ring])) if ring.any() else float(np.median(lum))
    threshold = max(OVER_BACKGROUND * background, 1e-30)
    if lum[pr, pc] <= threshold:
        return Extraction(None, f"no light is brighter than {OVER_BACKGROUND:g}x its surroundings: no sun", None, None)
    region = _compact_region(lum, theta, (pr, pc), threshold, wrap)
    if region is None:
        return Extraction(None, f"the brightest light spreads over more than {2 * MAX_RADIUS_DEG:g} deg "
                                "(an overcast sky, a large window): no sun", None, None)
    region = dilate(region, GROW_PX, wrap)
    fill = _fill_from_surroundings(values, region, dirs, wrap)
    removed = np.where(region[..., None], np.maximum(values - fill, 0.0), 0.0)
    sun = _measure(removed, omega, dirs, coarse, math.pi / h)
    if sun is None:
        return Extraction(None, "the brightest light does not stand out from its surroundings: no sun", None, None)
    refused = _refused(sun, "the brightest compact light", min_share)
    if refused is not None:
        return refused
    if sun.angle_deg > max_angle_deg:
        return Extraction(None, f"the brightest compact light is {sun.angle_deg:.1f} deg across (a softbox, a lamp "
                                f"shade or a window; a sun is under {max_angle_deg:g} deg): no sun", None, sun)
    out = np.array(hdr, dtype=np.float32, copy=True)
    out[np.ix_(rows, cols)] = (values - removed).astype(np.float32)
    reason = (f"sun at elevation {sun.elevation_deg:.1f} deg, azimuth {sun.azimuth_deg:.1f} deg, "
              f"{sun.angle_deg:.2f} deg across, {100 * sun.share:.0f} % of the light facing it")
    return Extraction(sun, reason, out, sun)


def _extract_listed(hdr: np.ndarray, coarse: np.ndarray, sources: list[dict], min_share: float) -> Extraction | None:
    """The brightest listed source as the sun (None when it is a specular highlight or the
    list is unusable). Its class is not required to be ``sun``: the energy step calls a sun
    over a bright ground a lamp and one it estimates under 2.2 stops over its clip level a sky
    patch; the share of the light facing it decides, as for any candidate."""
    try:
        src = max(sources, key=lambda d: float(d.get("energy", 0.0)))
        if src.get("class") == "specular":
            return None
        direction = np.asarray(src["direction"], np.float64)
        fill_energy, solid_angle = float(src["clip_level_energy"]), float(src["solid_angle"])
    except (KeyError, TypeError, ValueError):
        return None
    if direction.shape != (3,) or not np.all(np.isfinite(direction)) or solid_angle <= 0 or fill_energy <= 0:
        return None
    direction = direction / max(float(np.linalg.norm(direction)), 1e-12)
    h, w = hdr.shape[:2]
    fill_level = fill_energy / solid_angle  # mean luminance of the blob at the clip level
    # the window around the listed direction
    _, lat = direction_angles(direction)
    r0 = min(h - 1, max(0, int((math.pi / 2 - lat) / math.pi * h)))
    half_rows = math.ceil(SOURCE_SEARCH_DEG / 180.0 * h)
    rows = np.arange(max(0, r0 - half_rows), min(h, r0 + half_rows + 1))
    cols, wrap = np.arange(w), True
    values = np.asarray(hdr[rows], np.float64)
    lum = values @ LUMA
    dirs = equirect_directions_at(rows[:, None], cols[None, :], h, w)
    near = (dirs @ direction) >= math.cos(math.radians(SOURCE_SEARCH_DEG))
    labels, _ = label_components((lum > 1.01 * fill_level) & near, wrap)
    if not labels.any():
        return None
    # the component with the most light above the fill
    above = np.maximum(lum - fill_level, 0.0) * equirect_solid_angle(h, w)[rows, :1]
    totals = np.bincount(labels.ravel(), weights=above.ravel())
    totals[0] = 0.0
    region = labels == int(np.argmax(totals))
    ratio = np.where(region, np.maximum(0.0, 1.0 - fill_level / np.maximum(lum, 1e-30)), 0.0)
    removed = values * ratio[..., None]
    omega = np.broadcast_to(equirect_solid_angle(h, w)[rows, :1], lum.shape)
    sun = _measure(removed, omega, dirs, coarse, math.pi / h, angle_deg=SUN_ANGLE_DEG)
    if sun is None:
        return None
    refused = _refused(sun, "the reconstruction's sun", min_share)
    if refused is not None:
        return refused
    out = np.array(hdr, dtype=np.float32, copy=True)
    out[rows] = (values - removed).astype(np.float32)
    reason = (f"sun at elevation {sun.elevation_deg:.1f} deg, azimuth {sun.azimuth_deg:.1f} deg (the reconstruction's "
              f"brightest light source: its clipped blob above the clip level, as a {SUN_ANGLE_DEG} deg sun), "
              f"{100 * sun.share:.0f} % of the light facing it")
    return Extraction(sun, reason, out, sun)
