"""Per-source examples for the energy estimator (``train_energy.py``).

Each reference HDR of the split is photographed many times: a random yaw rotation
(panoramas), a random mirror, an exposure that clips a log-uniform 0.5-15 % of the pixels
(evaluation references: 2 % and 8 % first, as the harness does), the sRGB curve and 8-bit
rounding. The clipped sources of each photo are found with the shipped code
(``inference.highlights.sources``) and every source becomes one row: its features, its
clip-level energy (``fill``) and its true energy (``E``, from the reference). Per photo the
pieces needed to score lighting are kept too: the irradiance at 64 normals of the unclipped
part, of each source's clip-level fill and of the true map, so that the irradiance of any
per-source energy estimate is ``open + sum_s gain_s * fill_s``.

Run through ``train_energy.py``; the rows are cached in ``runs/energy/``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ldr2hdr.evaluation import lighting, references, synth
from ldr2hdr.inference.highlights import sources as S

logger = logging.getLogger(__name__)

N_NORMALS = 64
_COSW = np.maximum(0, lighting.fibonacci_sphere(N_NORMALS) @ lighting.equirect_directions(64, 128).reshape(-1, 3).T) * \
    lighting.equirect_solid_angle(64, 128).reshape(-1)[None]


def irradiance(rgb_64x128: np.ndarray) -> np.ndarray:
    """Irradiance (N_NORMALS, 3) of a 64x128 equirect map."""
    return _COSW @ rgb_64x128.reshape(-1, 3)


def irradiance_pieces(lin: np.ndarray, sensor: np.ndarray, clipped: np.ndarray, src) -> dict:
    """Irradiance at the normals of a panorama's unclipped part (``irr_open``), of each source's
    clip-level fill (``fill_irr``, (n, N_NORMALS, 3)) and of the true map (``irr_true``)."""
    hh, ww = src.shape
    rgb_clip = lighting.area_downsample(lin * clipped[..., None], hh, ww)
    f = ww // 128
    fill_irr = np.zeros((src.count, N_NORMALS, 3))
    for i in range(src.count):
        part = np.where((src.labels == i + 1)[..., None], rgb_clip, 0).reshape(64, f, 128, f, 3).mean((1, 3))
        fill_irr[i] = irradiance(part)
    return {"irr_open": irradiance(lighting.area_downsample(lin * ~clipped[..., None], 64, 128)),
            "irr_true": irradiance(lighting.area_downsample(sensor, 64, 128)), "fill_irr": fill_irr}


def photo_examples(hdr: np.ndarray, pano: bool, clip_fraction: float, rng: np.random.Generator):
    """One simulated photo of ``hdr`` -> (image dict, list of row dicts) or None if nothing clipped."""
    if pano:
        hdr = np.roll(hdr, rng.integers(hdr.shape[1]), axis=1)
    if rng.random() < 0.5:
        hdr = hdr[:, ::-1]
    k = 1 / np.quantile(hdr.max(-1), 1 - clip_fraction)
    sensor = hdr * k
    ldr = np.round(synth.srgb_encode(sensor) * 255) / 255
    lin = synth.srgb_decode(ldr)
    src = S.find_sources(lin, ldr, pano)
    if src.count == 0:
        return None
    clipped = ldr.max(-1) >= S.CLIP_CODE
    E = S.source_energy(src, (sensor @ S.LUMA) * clipped)
    img = dict(pano=pano, cf=float(clipped.mean()), k=float(k), n=src.count,
               e_open=float(np.sum(lighting.area_downsample((lin @ S.LUMA) * ~clipped, *src.shape) * src.weights)),
               e_clip_true=float(E.sum()), fill_total=float(src.fill.sum()))
    if pano:
        img.update(irradiance_pieces(lin, sensor, clipped, src))
    rows = [dict(fill=src.fill[s], E=E[s], omega=src.solid_angle[s], feats=src.features[s]) for s in range(src.count)]
    return img, rows


def build(paths: list[Path], *, per_reference: int, seed: int, harness_fractions: bool,
          through_pipeline: bool = False, shard: tuple[int, int] = (0, 1), weights_dir: str = "",
          bank_curves: bool = False) -> dict:
    """Rows and photos for ``paths`` (references at <= 1024 px, as the harness loads them).

    ``through_pipeline``: :func:`pipeline_photo_examples` instead of :func:`photo_examples` (with
    the model weights of ``weights_dir`` where it has them, as ``--weights-dir`` does).
    ``shard`` ``(i, n)``: only references ``i, i + n, ...`` (same random streams as unsharded)."""
    rows, images = [], []
    t0 = time.time()
    for ni, path in enumerate(sorted(paths, key=lambda p: p.name)):
        if ni % shard[1] != shard[0]:
            continue
        ref = references.load_reference(path, 1024)
        hdr0 = np.maximum(np.nan_to_num(ref.pixels.astype(np.float64), nan=0, posinf=0), 0)
        rng = np.random.default_rng([seed, ni, 7])
        fracs = list(np.exp(rng.uniform(np.log(0.005), np.log(0.15), per_reference)))
        if harness_fractions:
            fracs = [0.02, 0.08] + fracs[:per_reference - 2]
        for cf in fracs:
            if through_pipeline:
                out = pipeline_photo_examples(hdr0, bool(ref.panorama), float(cf), rng, weights_dir, bank_curves)
            else:
                out = photo_examples(hdr0, bool(ref.panorama), float(cf), rng)
            if out is None:
                continue
            img, img_rows = out
            img["name"] = path.name
            for r in img_rows:
                r.update(img=len(images), name=path.name)
            images.append(img)
            rows += img_rows
        logger.info("%d/%d %s: %d sources so far (%.0f s)", ni + 1, len(paths), path.name, len(rows), time.time() - t0)
    return dict(rows=rows, images=images, feature_names=S.FEATURE_NAMES)


# ----------------------------------------------------------------------------- as the pipeline sees it


#: Measured and film-like curve families of ``crf_curves.CurveBank`` the pipeline photos also use:
#: tone curves that compress highlights (film, log + sigmoid, picture styles) move the clip level
#: after linearization the most, and no family is one the evaluation uses.
BANK_FAMILIES = ("darktable", "nus", "sigmoid", "film", "logsig", "camera")


def training_curve(rng: np.random.Generator, bank_curves: bool = False):
    """A camera curve that the evaluation never uses: sRGB (40 %), a DoRF *training* curve (40 %),
    or a gamma between 1.8 and 2.6 (20 %). With ``bank_curves`` (measured, not shipped:
    docs/energy.md): sRGB 30 %, DoRF 30 %, gamma 10 % and 30 % a curve of :data:`BANK_FAMILIES`
    drawn from ``crf_curves.CurveBank``, returned as ``(family, inverse curves (3, 1024))``."""
    from ldr2hdr.inference import crf

    u = rng.random()
    cut = (0.3, 0.6, 0.7) if bank_curves else (0.4, 0.8, 1.0)
    if u < cut[0]:
        return "srgb"
    if u < cut[1]:
        train_idx, _ = crf.dorf_split(201)
        return f"dorf-{int(rng.choice(train_idx))}"
    if u < cut[2]:
        return f"gamma{rng.uniform(1.8, 2.6):.2f}"
    import crf_curves  # training/, on the path of train_energy.py

    bank = crf_curves.shared_bank("modern")
    while True:
        curves, family = bank.sample(rng)
        if family in BANK_FAMILIES:
            return family, curves


def photograph(hdr: np.ndarray, curve, clip_fraction: float, codec: str, rng: np.random.Generator):
    """``synth.synthesize`` for a curve name, or the same steps for ``(family, inverse curves)``."""
    if isinstance(curve, str):
        return synth.synthesize(hdr, curve, clip_fraction, codec, rng)
    import crf_data

    k = synth.exposure_for_clip_fraction(hdr, clip_fraction)
    display = crf_data.apply_forward(hdr * k, curve[1]).astype(np.float32)
    ldr = synth.quantize_png8(display) if codec == "png" else synth.encode_jpeg(display, 90)
    return ldr, {"exposure_scale": float(k), "curve": curve[0]}


def pipeline_photo_examples(hdr: np.ndarray, pano: bool, clip_fraction: float, rng: np.random.Generator,
                            weights_dir: str = "", bank_curves: bool = False):
    """Like :func:`photo_examples`, but the photo goes through a training camera curve and PNG or
    JPEG q90, and is linearized by the pipeline itself (its curve estimate and dequantization),
    so the features are what the shipped estimator will see. Energies are brought to the
    reference's units by the harness's alignment (median log ratio over unclipped pixels)."""
    from ldr2hdr.evaluation import metrics
    from ldr2hdr.inference import pipeline

    if pano:
        hdr = np.roll(hdr, rng.integers(hdr.shape[1]), axis=1)
    if rng.random() < 0.5:
        hdr = hdr[:, ::-1]
    curve = training_curve(rng, bank_curves)
    codec = "jpeg90" if rng.random() < 0.5 else "png"
    ldr, info = photograph(hdr, curve, clip_fraction, codec, rng)
    sensor = hdr * info["exposure_scale"]
    settings = pipeline.Settings(panorama="on" if pano else "off", weights_dir=weights_dir)
    inv = pipeline.estimate_crf(ldr, settings)
    lin, _ = pipeline.linearize(ldr, inv, settings)
    src = S.find_sources(lin, ldr, pano)
    if src.count == 0:
        return None
    clipped = ldr.max(-1) >= S.CLIP_CODE
    s = metrics.align_scale(lin, sensor, ~clipped)
    if not np.isfinite(s) or s <= 0:
        return None
    lin = lin.astype(np.float64) * s
    fill = src.fill * s
    E = S.source_energy(src, (sensor @ S.LUMA) * clipped)
    img = dict(pano=pano, cf=float(clipped.mean()), k=float(info["exposure_scale"]), n=src.count, curve=info["curve"],
               codec=codec, e_open=float(np.sum(lighting.area_downsample((lin @ S.LUMA) * ~clipped, *src.shape) * src.weights)),
               e_clip_true=float(E.sum()), fill_total=float(fill.sum()))
    if pano:
        img.update(irradiance_pieces(lin, sensor, clipped, src))
    rows = [dict(fill=fill[i], E=E[i], omega=src.solid_angle[i], feats=src.features[i]) for i in range(src.count)]
    return img, rows
