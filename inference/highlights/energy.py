"""How much light each clipped source holds, and a restoration scaled to it.

The highlight network gives a plausible *shape* inside the clipped region but not the
*amount* of light: on held-out panoramas it left suns and lamps stops too dim. Here the
amount is its own estimate. For every source found by :mod:`.sources`, gradient-boosted
trees (trained by ``training/train_energy.py``, shipped as plain arrays in
``weights/energy_trees.safetensors``) predict ``b = log2(true energy / clip-level energy)``
from the source's own statistics (size, shape, elevation, halo fall-off, colour) and the
scene's; :func:`rescale_sources` then scales the restored part of each source (what the
network or the classical expansion added above the clip level) so that the source holds
that energy. Unclipped pixels are never changed.

Energies are solid-angle weighted luminance sums (``sum w * Y``, Rec.709 luminance, ``w``
the pixel solid angle in steradians for panoramas, 1 for flat photos) in the image's own
units, the linearized clip level being about 1.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import WeightsError
from .. import weights as weights_mod
from ..imaging import channel_max, direction_angles, equirect_directions_at, equirect_solid_angle
from . import sources as srcs
from . import trees

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "energy_trees.safetensors"
#: The model's parts in the weights file: ``<part>.<tree key>``; ``mean_fill`` predicts
#: ``b`` directly, ``mean_open`` predicts ``log2(E_source / E_unclipped)`` (the two targets
#: err differently: the first on suns, the second on soft sources; their mean is used);
#: ``q16`` / ``q84`` are quantile models of ``b`` that give its uncertainty.
PARTS = ("mean_fill", "mean_open", "q16", "q84")
CLASSES = ("sun", "lamp", "sky-window", "specular")
#: A source whose estimated energy is at least this many stops over its clip-level fill is
#: a compact bright emitter (sun or lamp); below it, a bright soft region or a reflection.
#: 2.5 stops of the unshifted estimates, which the shipped trees give 0.3 stops low
#: (``train_energy.py --boost-shift 0.3``): the same sources get a core.
HOT_STOPS = 2.2
#: Below this solid angle (sr; for photos: fraction of the image) a soft source is a specular.
SPECULAR_SOLID_ANGLE = 1e-3
#: Estimates are kept within this range of stops over the fill (the training data's range).
MAX_BOOST_STOPS = 18.0
BAND_ROWS = 256
#: Compact emitters (at least :data:`HOT_STOPS` over their fill) get the energy the highlight
#: step did not put there as a compact core, not as a uniform gain over the whole clipped blob:
#: a clear-sky sun is a 0.53 degree disc inside a clipped cap of sky tens of degrees wide.
#: The core is ``(1 + (theta / CORE_RADIUS_DEG)**2) ** (-CORE_POWER / 2)`` around the sun's or
#: lamp's place in its clipped blob (:func:`_sun_direction`, :func:`_deepest_direction`; the source
#: pixel nearest it, at least 2 pixels inside the clipped region where possible), with the radius
#: at least one pixel. The blob is cut by buildings, clouds and the horizon, so its centroid
#: misses a sun by 7.5 degrees (median, training sun panoramas), its deepest point by 6.1, the
#: deepest point of its white part by 2.6 (mean 5.9) and the top of the white part's thickest
#: part by 2.1 (mean 3.9). All chosen on training panoramas (docs/energy.md).
CORE_RADIUS_DEG = 0.25
CORE_POWER = 4.0
#: :func:`_sun_direction` looks for the sun among the blob pixels at least this deep (times the deepest).
CORE_THICKNESS = 0.8


@dataclass(frozen=True)
class EnergyModel:
    """The shipped estimator (see :data:`PARTS`)."""

    parts: dict
    feature_names: tuple[str, ...]

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per source ``(b, half width of its 68 % interval)`` in stops, each (N,)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(f"expected (N, {len(self.feature_names)}) features, got {x.shape}")
        offset = -x[:, self.feature_names.index("log2_fill_over_unclipped")]
        b = 0.5 * (trees.predict(self.parts["mean_fill"], x) + trees.predict(self.parts["mean_open"], x) + offset)
        half = 0.5 * np.abs(trees.predict(self.parts["q84"], x) - trees.predict(self.parts["q16"], x))
        return np.clip(b, 0.0, MAX_BOOST_STOPS), half


def model_from_arrays(arrays: dict[str, np.ndarray]) -> EnergyModel:
    """Build the model from the flat safetensors dict; strict: every part and key, nothing else."""
    expected = {f"{p}.{k}" for p in PARTS for k in trees.TREE_KEYS} | {"feature_names"}
    missing, extra = expected - set(arrays), set(arrays) - expected
    if missing or extra:
        raise WeightsError(f"energy model arrays do not match: missing {sorted(missing)[:4]}, "
                           f"unexpected {sorted(extra)[:4]}")
    names = bytes(np.asarray(arrays["feature_names"], dtype=np.uint8)).decode("ascii").split(",")
    if tuple(names) != srcs.FEATURE_NAMES:
        raise WeightsError("energy model was trained on other source features "
                           f"({len(names)} features, this code computes {len(srcs.FEATURE_NAMES)})")
    parts = {p: {k: np.asarray(arrays[f"{p}.{k}"]) for k in trees.TREE_KEYS} for p in PARTS}
    for p, arr in parts.items():
        n = len(arr["feature"])
        if any(len(arr[k]) != n for k in ("threshold", "left", "right", "leaf", "missing_left", "value")):
            raise WeightsError(f"energy model part {p!r}: node arrays of different lengths")
        inner = arr["leaf"] == 0
        if n == 0 or len(arr["roots"]) == 0 or np.any(arr["roots"] >= n) or np.any(arr["roots"] < 0) or \
                np.any(arr["left"][inner] >= n) or np.any(arr["right"][inner] >= n) or \
                np.any(arr["left"][inner] < 0) or np.any(arr["right"][inner] < 0) or \
                np.any(arr["feature"][inner] >= len(names)) or np.any(arr["feature"][inner] < 0):
            raise WeightsError(f"energy model part {p!r}: node indices out of range")
    return EnergyModel(parts, tuple(names))


def arrays_from_model(parts: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The inverse of :func:`model_from_arrays` (used by training)."""
    out = {f"{p}.{k}": np.ascontiguousarray(parts[p][k]) for p in PARTS for k in trees.TREE_KEYS}
    out["feature_names"] = np.frombuffer(",".join(srcs.FEATURE_NAMES).encode("ascii"), dtype=np.uint8).copy()
    return out


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, digest_key: tuple) -> EnergyModel:
    from safetensors.numpy import load_file

    weights_mod.verify_weights_file(path)
    try:
        arrays = load_file(path)
    except Exception as exc:  # safetensors raises its own error types for a malformed file
        raise WeightsError(f"energy model is unreadable: {exc}", path) from None
    return model_from_arrays(arrays)


def load_model(path: str | Path | None = None) -> EnergyModel:
    """Load the estimator (sha256-checked against its folder's ``manifest.json``; cached)."""
    path = Path(path) if path else weights_mod.WEIGHTS_DIR / WEIGHTS_NAME
    try:
        st = path.stat()
    except OSError:
        raise WeightsError("weights file not found", path) from None
    return _load_cached(str(path), (st.st_size, st.st_mtime_ns))


# ----------------------------------------------------------------------------- classes


def classify(sources: srcs.SourceSet, boost: np.ndarray) -> list[str]:
    """A class per source: ``sun`` / ``lamp`` (compact and at least :data:`HOT_STOPS` over its
    fill; ``sun`` for the brightest such source of a panorama above the horizon whose sky is
    brighter than its ground), ``specular`` (small and soft) or ``sky-window``."""
    feats = sources.features
    col = srcs.FEATURE_NAMES.index
    energy = sources.fill * np.exp2(boost)
    size = sources.solid_angle if sources.panorama else sources.solid_angle / max(1, np.prod(sources.shape))
    out = []
    sun = -1
    if sources.panorama and sources.count:
        outdoor = feats[:, col("log2_down_over_up")] < 0
        candidates = [i for i in range(sources.count)
                      if boost[i] >= HOT_STOPS and feats[i, col("elevation")] > 0 and outdoor[i]]
        if candidates:
            sun = max(candidates, key=lambda i: energy[i])
    for i in range(sources.count):
        if i == sun:
            out.append("sun")
        elif boost[i] >= HOT_STOPS:
            out.append("lamp")
        elif size[i] < SPECULAR_SOLID_ANGLE:
            out.append("specular")
        else:
            out.append("sky-window")
    return out


# ----------------------------------------------------------------------------- rescale


def _label_lookup(sources: srcs.SourceSet, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Working-grid row of each full-resolution row and column of each column (the cell holding
    the pixel's centre): ``sources.labels[rowmap[r], colmap[c]]`` is pixel (r, c)'s source."""
    hh, ww = sources.shape
    rowmap = np.minimum(((np.arange(height) + 0.5) * hh / height).astype(np.int64), hh - 1)
    colmap = np.minimum(((np.arange(width) + 0.5) * ww / width).astype(np.int64), ww - 1)
    return rowmap, colmap


def clipped_values(linear: np.ndarray, clipped: np.ndarray) -> np.ndarray:
    """``linear`` at the clipped pixels, ``(N, 3)`` float32 in raster order: all that the
    rescale needs of the linear image, a few percent of it."""
    parts = [np.asarray(linear[r0:r0 + BAND_ROWS][clipped[r0:r0 + BAND_ROWS]], dtype=np.float32)
             for r0 in range(0, clipped.shape[0], BAND_ROWS)]
    return np.concatenate(parts) if parts else np.zeros((0, 3), np.float32)


def _clipped_bands(linear: np.ndarray, clipped: np.ndarray):
    """``(rows, cols, linear values)`` of the clipped pixels, one row band at a time; ``linear``
    is the whole HxWx3 image or its :func:`clipped_values`."""
    start = 0
    for r0 in range(0, clipped.shape[0], BAND_ROWS):
        rr, cc = np.nonzero(clipped[r0:r0 + BAND_ROWS])  # only the clipped pixels: a few percent of the image
        if not len(rr):
            continue
        rows = r0 + rr
        lin = linear[rows, cc] if linear.ndim == 3 else linear[start:start + len(rr)]
        start += len(rr)
        yield rows, cc, lin


def excess_energy(hdr: np.ndarray, linear: np.ndarray, clipped: np.ndarray, sources: srcs.SourceSet) -> np.ndarray:
    """Per source, the energy that ``hdr`` holds above ``linear`` (HxWx3, or its
    :func:`clipped_values`) in its clipped pixels, (n,)."""
    y = np.zeros(clipped.shape, dtype=np.float32)
    luma = srcs.LUMA.astype(np.float32)
    for rows, cc, lin in _clipped_bands(linear, clipped):
        y[rows, cc] = np.maximum(hdr[rows, cc] - lin, 0.0) @ luma  # per channel, as the rescale scales it
    return srcs.source_energy(sources, y)


def rescale_sources(hdr: np.ndarray, linear: np.ndarray, clipped: np.ndarray, sources: srcs.SourceSet,
                    target: np.ndarray, core: np.ndarray | None = None, sun: int = -1) -> np.ndarray:
    """Scale, per source, what ``hdr`` adds above ``linear`` so that the source holds ``target``.

    Args:
        hdr: float32 HxWx3 restored image (changed in place and returned).
        linear: float32 HxWx3 linearized input (the clip-level fill), or its :func:`clipped_values`.
        clipped: HxW bool, the clipped pixels (``sources`` was found from them).
        sources: the sources (working resolution).
        target: (n,) energy each source must hold (clip-level fill included). A target below
            the fill leaves the source at the fill (a clipped pixel is at least the clip level).
        core: (n,) bool, optional: sources whose missing energy goes into a compact core (see
            :data:`CORE_RADIUS_DEG`; panoramas only) instead of a uniform gain. A core source
            keeps what the restoration added and gets the rest in the core; when the
            restoration added more than the target it is scaled down like any other.
        sun: the index of the source that is a sun (:func:`classify`), -1 for none: its core
            goes to :func:`_sun_direction`, a lamp's to :func:`_deepest_direction`.

    A source to which the restoration added nothing (and that has no core) gets the missing
    energy spread over its clipped pixels in proportion to their linear values (a flat fill).
    Pixels outside the sources are not touched.
    """
    n = sources.count
    if n == 0:
        return hdr
    extra_now = excess_energy(hdr, linear, clipped, sources)
    want = np.maximum(0.0, np.asarray(target, dtype=np.float64) - sources.fill)
    core = np.zeros(n, bool) if core is None or not sources.panorama else np.asarray(core, bool)
    core_energy = np.where(core & (want > extra_now), want - extra_now, 0.0)
    want = want - core_energy
    usable = extra_now > 1e-6 * np.maximum(sources.fill, 1e-30)
    gain = np.where(usable, want / np.maximum(extra_now, 1e-30), 0.0)
    flat = np.where(usable, 0.0, want / np.maximum(sources.fill, 1e-30))  # multiple of the fill to add
    gain_lut = np.concatenate([[1.0], gain]).astype(np.float32)
    flat_lut = np.concatenate([[0.0], flat]).astype(np.float32)
    cored = np.concatenate([[False], core_energy > 0])
    h, w = clipped.shape
    rowmap, colmap = _label_lookup(sources, h, w)
    core_pixels = []  # (rows, cols, labels) of the core sources' pixels
    for rows, cc, lin in _clipped_bands(linear, clipped):  # only the clipped pixels change
        lab = sources.labels[rowmap[rows], colmap[cc]]
        extra = np.maximum(hdr[rows, cc] - lin, 0.0)
        new = lin + gain_lut[lab][:, None] * extra + flat_lut[lab][:, None] * lin
        hdr[rows, cc] = np.where((lab > 0)[:, None], new, hdr[rows, cc])
        on_core = cored[lab]
        if on_core.any():
            core_pixels.append((rows[on_core], cc[on_core], lab[on_core]))
    if core_pixels:
        _add_cores(hdr, clipped, sources, core_energy, *(np.concatenate(a) for a in zip(*core_pixels)), sun=sun)
    return hdr


def _core_mask(sources: srcs.SourceSet, i: int) -> np.ndarray:
    """The working pixels of source ``i`` a core is placed in: the part clipped in all three
    channels when there is one (mostly, at least half of a working pixel), else all of them. A
    sun's disc saturates every channel while the sky around it often keeps one or two, so the
    white part finds the sun where the whole blob's shape does not (training sun panoramas: median
    2.4-3.1 degrees off instead of 4.5-8.3)."""
    mask = sources.labels == i + 1
    if sources.all_clipped is not None:
        white = mask & (sources.all_clipped >= 0.5)
        if white.any():
            mask = white
    return mask


def _deepest_direction(sources: srcs.SourceSet, i: int, max_steps: int = 256) -> np.ndarray:
    """Mean direction of the pixels of :func:`_core_mask` that survive the most erosions (a lamp's core)."""
    mask = _core_mask(sources, i)
    last = mask
    for _ in range(max_steps):
        inner = mask & ~srcs.dilate(~mask, 1, sources.panorama)
        if not inner.any():
            break
        last, mask = inner, inner
    hh, ww = mask.shape
    rows, cols = np.nonzero(last)
    xyz = equirect_directions_at(rows, cols, hh, ww)
    v = (sources.weights[rows, cols][:, None] * xyz).sum(axis=0)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _sun_direction(sources: srcs.SourceSet, i: int, thick: float = CORE_THICKNESS, max_edge: int = 4096) -> np.ndarray:
    """Where the sun sits in its clipped blob (source ``i``): of the pixels of :func:`_core_mask`
    whose angular distance to the mask's edge is at least ``thick`` times the largest, the highest.
    The haze above the horizon and the bright ground stretch a sun's blob downwards, so the sun
    lies at the top of the blob's thickest part more often than at its middle (docs/energy.md)."""
    mask = _core_mask(sources, i)
    hh, ww = mask.shape
    rows, cols = np.nonzero(mask)
    xyz = equirect_directions_at(rows, cols, hh, ww)
    er, ec = np.nonzero(srcs.dilate(mask, 1, sources.panorama) & ~mask)
    if not len(er):  # the blob covers the whole sphere
        return xyz[np.argmax(xyz[:, 1])]
    step = max(1, len(er) // max_edge)
    edge = equirect_directions_at(er[::step], ec[::step], hh, ww).T
    near = np.empty(len(rows))  # cosine of the angle to the nearest pixel outside the mask
    for k in range(0, len(rows), 4096):
        near[k:k + 4096] = (xyz[k:k + 4096] @ edge).max(axis=1)
    depth = np.arccos(np.clip(near, -1.0, 1.0))
    return xyz[np.argmax(np.where(depth >= thick * depth.max(), xyz[:, 1], -np.inf))]


def _add_cores(hdr, clipped, sources, core_energy, rr, cc, lab, sun: int = -1) -> None:
    """Add ``core_energy[i]`` (luminance x sr) to source i as a compact core (panoramas);
    ``rr, cc, lab``: the core sources' clipped pixels and their labels; ``sun``: the source
    that is a sun (its core goes to :func:`_sun_direction`), -1 for none."""
    h, w = clipped.shape
    deep = np.ones(len(rr), bool)  # 2 pixels inside the clipped region: JPEG edges stay out
    for dr, dc in ((-2, 0), (2, 0), (0, -2), (0, 2)):
        deep &= clipped[np.clip(rr + dr, 0, h - 1), (cc + dc) % w]
    radius = math.radians(max(CORE_RADIUS_DEG, 360.0 / w))
    row_omega = equirect_solid_angle(h, 1)[:, 0] / w
    for i in np.nonzero(core_energy > 0)[0]:
        sel = np.nonzero(lab == i + 1)[0]
        if not len(sel):
            continue
        r, c = rr[sel], cc[sel]
        xyz = equirect_directions_at(r, c, h, w)
        # the centre: the source pixel (2 pixels inside the clipped region when there is one)
        # nearest the sun's place in its blob, or a lamp's deepest point
        score = xyz @ (_sun_direction(sources, i) if i == sun else _deepest_direction(sources, i))
        if deep[sel].any():
            score = np.where(deep[sel], score, -np.inf)
        theta = np.arccos(np.clip(xyz @ xyz[np.argmax(score)], -1.0, 1.0))  # float64: 2e-8 rad near 0
        kernel = (1.0 + (theta / radius) ** 2) ** (-CORE_POWER / 2.0)
        add = core_energy[i] * kernel / np.sum(row_omega[r] * kernel)
        hdr[r, c] += (add[:, None] * sources.colour[i][None, :]).astype(np.float32)


#: Working-grid cells around a clipped pixel within which an unclipped pixel may be as bright
#: as it (:func:`clipped_ceiling`); 2 cells are 4 pixels of a 1024-wide panorama.
CEILING_CELLS = 2


@dataclass
class Ceiling:
    """How bright an unclipped pixel may be (:func:`clipped_ceiling`): per working-grid cell,
    the brightest restored clipped pixel within :data:`CEILING_CELLS` cells, at least the clip
    level (1); ``rowmap``/``colmap`` take full-resolution rows and columns to cells."""

    cells: np.ndarray  # (hh, ww) float32
    rowmap: np.ndarray
    colmap: np.ndarray

    def rows(self, r0: int, r1: int) -> np.ndarray:
        return self.cells[self.rowmap[r0:r1]][:, self.colmap]


def clipped_ceiling(hdr, clipped: np.ndarray, sources: srcs.SourceSet) -> Ceiling:
    """The local ceiling of unclipped pixels after the rescale (:func:`cap_unclipped`): the
    largest channel of ``hdr`` (HxWx3, or the banded path's view of its clipped pixels) over
    the clipped pixels of each working-grid cell, spread :data:`CEILING_CELLS` cells (across the
    seam of a panorama), and never below the clip level 1, which no unclipped pixel's own value
    exceeds."""
    h, w = clipped.shape
    rowmap, colmap = _label_lookup(sources, h, w)
    hh, ww = sources.shape
    cells = np.zeros(hh * ww, np.float32)
    for r0 in range(0, h, BAND_ROWS):
        rr, cc = np.nonzero(clipped[r0:r0 + BAND_ROWS])
        if len(rr):
            top = channel_max(hdr[r0 + rr, cc]).astype(np.float32, copy=False)
            np.maximum.at(cells, rowmap[r0 + rr] * ww + colmap[cc], top)
    spread = srcs.max_filter(cells.reshape(hh, ww), CEILING_CELLS, sources.panorama)
    return Ceiling(np.maximum(spread, 1.0), rowmap, colmap)


def cap_unclipped(hdr: np.ndarray, clipped: np.ndarray, ceiling: Ceiling, row0: int = 0) -> np.ndarray:
    """Scale down, keeping their colour, the unclipped pixels of ``hdr`` whose largest channel
    is above their :func:`clipped_ceiling`; in place, returned.

    The highlight network also restores the pixels of its soft mask that are just below the
    clip level (JPEG edges of clipped regions), and the energy step only rescales the clipped
    ones. Where the network runs away (seen on a deep orange sunset sky: 2^31 over the clip
    level), those pixels would keep the runaway values; an unclipped pixel is not brighter than
    the brightest clipped pixel near it, and away from clipped pixels not above the clip level.
    Every pixel the network did not touch is at most the clip level and stays exactly as it was.
    ``hdr`` may be a row band starting at row ``row0`` of the image ``clipped`` describes.
    """
    for r0 in range(0, hdr.shape[0], BAND_ROWS):
        part = hdr[r0:r0 + BAND_ROWS]
        a = row0 + r0
        top = channel_max(part)
        limit = ceiling.rows(a, a + part.shape[0])
        over = (top > limit) & ~clipped[a:a + part.shape[0]]
        if over.any():
            part[over] *= (limit[over] / top[over])[:, None]
    return hdr


@dataclass(frozen=True)
class Source:
    """One light source as reported to users (``<name>.sources.json``, the EXR header)."""

    index: int
    cls: str
    direction: tuple[float, ...]  # panoramas: unit vector (+Y up, -Z at the centre column); photos: (x, y) in [-1, 1]
    azimuth_deg: float | None
    elevation_deg: float | None
    solid_angle: float  # sr (panoramas) or fraction of the image (photos)
    energy: float  # sum w * Y after restoration, the image's units
    clip_level_energy: float
    boost_stops: float
    uncertainty_stops: float
    confidence: float
    colour: tuple[float, float, float]

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["class"] = d.pop("cls")
        return d


def describe(sources: srcs.SourceSet, boost: np.ndarray, half: np.ndarray, classes: list[str]) -> list[Source]:
    """The user-facing list, brightest first."""
    out = []
    hh, ww = sources.shape
    for i in np.argsort(-(sources.fill * np.exp2(boost))):
        d = tuple(round(float(v), 5) for v in sources.direction[i])
        if sources.panorama:
            az, el = (math.degrees(a) for a in direction_angles(d))
            omega = float(sources.solid_angle[i])
        else:
            az = el = None
            omega = float(sources.solid_angle[i] / (hh * ww))
        out.append(Source(
            index=len(out), cls=classes[i], direction=d,
            azimuth_deg=None if az is None else round(az, 3), elevation_deg=None if el is None else round(el, 3),
            solid_angle=omega, energy=float(sources.fill[i] * 2.0 ** boost[i]),
            clip_level_energy=float(sources.fill[i]), boost_stops=round(float(boost[i]), 3),
            uncertainty_stops=round(float(half[i]), 3), confidence=round(float(1.0 / (1.0 + half[i])), 3),
            colour=tuple(round(float(c), 4) for c in sources.colour[i])))
    return out


@dataclass
class ClippedScene:
    """What the energy step needs of the image before the highlights are restored: the
    clipped pixels, their sources and their linear values (:func:`clipped_values`). With it
    the restoration may overwrite the linear image (``pipeline.run(keep_intermediates=False)``)."""

    clipped: np.ndarray  # HxW bool
    sources: srcs.SourceSet
    linear: np.ndarray  # (N, 3) float32


def find_clipped(linear: np.ndarray, ldr: np.ndarray, *, panorama: bool) -> ClippedScene:
    """The :class:`ClippedScene` of a linearized image and its encoded input."""
    clipped = srcs.clipped_pixels(ldr)
    return ClippedScene(clipped, srcs.find_sources(linear, ldr, panorama, clipped), clipped_values(linear, clipped))


def restore_energy(hdr: np.ndarray, linear: np.ndarray | None, ldr: np.ndarray | None, *, panorama: bool,
                   weights: str | Path | EnergyModel | None = None,
                   scene: ClippedScene | None = None) -> tuple[np.ndarray, list[Source]]:
    """Find the clipped sources of ``ldr``, estimate their energy and rescale ``hdr`` to it.

    Args:
        hdr: float32 HxWx3 restoration of ``linear`` (network or classical); changed in place.
        linear: float32 HxWx3 linearized input (clip level about 1); unused with ``scene``.
        ldr: HxWx3 encoded input in [0, 1] (decides which pixels are clipped); unused with ``scene``.
        panorama: 360 equirectangular (wrap-around, solid-angle weights) or a flat photo.
        weights: the estimator file (sha256-checked), a loaded :class:`EnergyModel`, or None
            for ``weights/energy_trees.safetensors``.
        scene: :func:`find_clipped` of ``linear`` and ``ldr``, made before ``hdr`` was.

    Returns:
        ``(hdr, sources)``: the rescaled image (unclipped pixels unchanged, except those the
        restoration made brighter than :func:`clipped_ceiling`, which :func:`cap_unclipped`
        holds) and the list of sources, brightest first (empty when nothing is clipped).
    """
    model = weights if isinstance(weights, EnergyModel) else load_model(weights)
    if scene is None:
        scene = find_clipped(linear, ldr, panorama=panorama)
    sources = scene.sources
    if sources.count == 0:
        return hdr, []
    boost, half = model.predict(sources.features)
    classes = classify(sources, boost)
    rescale_sources(hdr, scene.linear, scene.clipped, sources, sources.fill * np.exp2(boost), core=boost >= HOT_STOPS,
                    sun=classes.index("sun") if "sun" in classes else -1)
    if isinstance(hdr, np.ndarray):  # the banded path passes its clipped pixels only and caps its rows itself
        cap_unclipped(hdr, scene.clipped, clipped_ceiling(hdr, scene.clipped, sources))
    return hdr, describe(sources, boost, half, classes)
