"""The samples of one reference: which photos are synthesized from it, and how each method's
result is scored.

Curves per reference come from a hash of its label and the seed (deterministic); every
sample is synthesized with its own seeded generator (:func:`.synth.synthesize`), given to
each method as pixels only, and scored after one global alignment (:func:`score`).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from ..inference.errors import Ldr2HdrError
from . import lighting, metrics, synth
from .methods import MethodSpec
from .references import Reference, _stable_int

logger = logging.getLogger(__name__)


VIEW_CURVES = ("agx", "filmic", "khronos-pbr-neutral")
DORF_PER_REFERENCE = 3
QUICK_CURVES = ("srgb", "dorf", "agx", "khronos-pbr-neutral")  # "dorf" = one DoRF test curve per reference


def _curves_for(ref_label: str, mode: str, dorf_names: list[str], views: list[str], seed: int) -> list[str]:
    rng = np.random.default_rng(_stable_int(seed, "dorf", ref_label))
    if mode == "quick":
        picked = [str(c) for c in rng.choice(dorf_names, size=1, replace=False)] if dorf_names else []
        out = []
        for c in QUICK_CURVES:
            if c == "dorf":
                out += picked
            elif c == "srgb" or c in views:
                out.append(c)
        return out
    if mode == "full" or len(dorf_names) <= DORF_PER_REFERENCE:
        picked = list(dorf_names)
    else:
        picked = sorted(rng.choice(dorf_names, size=DORF_PER_REFERENCE, replace=False),
                        key=dorf_names.index)
    return ["srgb"] + [str(c) for c in picked] + list(views)


def _as_curve(curve) -> np.ndarray | None:
    if curve is None:
        return None
    arr = np.asarray(getattr(curve, "curves", curve), dtype=np.float64)
    if arr.ndim == 2:
        arr = arr.mean(axis=0)
    return arr if arr.shape == (synth.N_SAMPLES,) else None


def score(pred: np.ndarray, ref: np.ndarray, clip_mask: np.ndarray, *, panorama: bool,
          pred_curve=None, true_curve=None, cache: dict | None = None) -> dict:
    """All metrics for one prediction (see :data:`ALIGNMENT_STATEMENT`). Missing values are nan.

    ``cache``: a dict shared by the predictions of one reference, to reuse its PU21 encoding.
    """
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    cache = {} if cache is None else cache
    if "pu21" not in cache:
        cache["pu21"] = metrics.pu21_reference_encoding(ref)
    unclipped = ~clip_mask
    s = metrics.align_scale(pred, ref, unclipped)
    out = {
        "align_log2_scale": math.log2(s) if s > 0 and math.isfinite(s) else float("nan"),
        "pu21_psnr": metrics.pu21_psnr(pred, ref, scale=s, reference_encoding=cache["pu21"]),
        "si_log2_rmse": metrics.si_log2_rmse(pred, ref, scale=s),
        "si_log2_rmse_unclipped": metrics.si_log2_rmse(pred, ref, unclipped, scale=s),
        "si_log2_rmse_clipped": metrics.si_log2_rmse(pred, ref, clip_mask, scale=s),
        "clipped_energy_bias_stops": lighting.clipped_energy_log2_ratio(pred, ref, clip_mask, scale=s,
                                                                       panorama=panorama),
        "irradiance_rel_error": (lighting.irradiance_error(pred, ref, scale=s) if panorama else float("nan")),
        "crf_rmse": metrics.crf_rmse(pred_curve, true_curve),
    }
    out["clipped_energy_stops"] = abs(out["clipped_energy_bias_stops"])
    for material in ("diffuse", "glossy"):
        out[f"sphere_{material}_rmse"] = out[f"sphere_{material}_si_rmse"] = float("nan")
    if panorama and np.isfinite(s):
        if "spheres" not in cache:
            cache["spheres"] = lighting.render_spheres(ref)
        got = lighting.render_spheres(pred * s)
        for material, ref_render in cache["spheres"].items():
            out[f"sphere_{material}_rmse"], out[f"sphere_{material}_si_rmse"] = lighting.render_errors(got[material], ref_render)
    return out


def _check_output(hdr, shape) -> np.ndarray:
    arr = np.asarray(hdr)
    if arr.shape != tuple(shape):
        raise Ldr2HdrError(f"method returned shape {arr.shape}, expected {tuple(shape)}")
    return arr


def _available_views() -> list[str]:
    try:
        synth.ocio_config_path()
    except Ldr2HdrError as exc:
        logger.warning("%s; evaluating without view-transform curves", exc)
        return []
    return list(VIEW_CURVES)


def _run_sample(ref: Reference, curve: str, clip: float, codec: str, specs: list[MethodSpec],
                dorf_file: Path, seed: int, weights_dir: str | Path | None = None) -> list[dict]:
    rng = np.random.default_rng(_stable_int(seed, ref.label, curve, clip, codec))
    ldr, info = synth.synthesize(ref.pixels, curve, clip, codec, rng, dorf_path=dorf_file)
    base = {
        "reference": ref.label,
        "panorama": ref.panorama,
        "curve": curve,
        "curve_family": info["curve_family"],
        "clip_fraction": clip,
        "clip_fraction_actual": info["clip_fraction"],
        "codec": codec,
    }
    method_info = {"panorama": ref.panorama, "codec": codec, "bits": 8, "weights_dir": weights_dir}
    rows = []
    cache: dict = {}
    for spec in specs:
        row = dict(base, method=spec.name)
        t0 = time.perf_counter()
        try:
            hdr, inv = spec.fn(ldr.copy(), dict(method_info))
            hdr = _check_output(hdr, ref.pixels.shape)
        except (Ldr2HdrError, ValueError, RuntimeError, FloatingPointError) as exc:
            logger.warning("%s failed on %s/%s: %s", spec.name, ref.label, curve, exc)
            row.update(status=f"error: {exc}", seconds=time.perf_counter() - t0)
            rows.append(row)
            continue
        row["seconds"] = time.perf_counter() - t0
        row["nonfinite_fraction"] = float(np.mean(~np.isfinite(hdr).all(axis=-1)))
        row.update(score(hdr, ref.pixels, info["clip_mask"], panorama=ref.panorama,
                         pred_curve=_as_curve(inv), true_curve=info["inverse_crf"], cache=cache))
        row["status"] = "ok"
        rows.append(row)
    return rows
