"""Evaluation harness: synthesize LDR inputs from HDR references, reconstruct, score.

Protocol (deterministic for a given seed):

1. References: ``.exr`` / ``.hdr`` files found (recursively) in the given folders; files the
   fixed split marks as *training* files (``training/split.py``) are skipped. The default
   references are the evaluation split of ``/work/shared/data/hdr`` plus Blender's studio
   lights. Each reference is area-downsampled to at most ``max_width`` pixels wide (1024;
   512 in quick mode). A 2:1 reference is treated as an equirect panorama.
2. For each reference, LDR inputs are synthesized (:mod:`.synth`) for every combination of
   camera curve (``srgb``; 3 of the 10 DoRF test curves picked per reference from a hash
   of its name, all 10 in full mode; the Blender views ``agx``, ``filmic``,
   ``khronos-pbr-neutral``), clip fraction (0.02, 0.08) and codec (8-bit PNG, JPEG q90).
3. Every method gets only the LDR pixels and what a user would know (panorama or not);
   never the exposure, the true curve or the clip mask.
4. Metrics (:mod:`.metrics`), all after one global alignment per sample:
   ``s = exp(median(log Y_ref - log Y_pred))`` over the pixels that are *not clipped* in
   the LDR input, excluding the 5 % darkest and brightest of them (reference luminance).

Methods are plain callables ``f(ldr HxWx3 [0,1], info) -> (hdr HxWx3, inverse_crf or None)``
in a registry (:func:`register_method`), so learned models plug in by name.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import metrics, synth
from ..inference.errors import Ldr2HdrError, UnsupportedImageError

logger = logging.getLogger(__name__)

SHARED_DIR = Path(os.environ.get("LDR2HDR_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
DEFAULT_HDR_ROOT = SHARED_DIR / "data" / "hdr"
DEFAULT_OUT_DIR = Path("runs/eval")
DEFAULT_METHODS = ("srgb-clip", "gamma2.2", "masia2017", "kovaleski2014", "ldr2hdr-classical")
VIEW_CURVES = ("agx", "filmic", "khronos-pbr-neutral")
CLIP_FRACTIONS = (0.02, 0.08)
CODECS = ("png", "jpeg90")
DORF_PER_REFERENCE = 3
MAX_WIDTH = 1024

QUICK_MAX_WIDTH = 512
QUICK_PANORAMAS = 4
QUICK_FLATS = 2
QUICK_CURVES = ("srgb", "dorf", "agx", "khronos-pbr-neutral")  # "dorf" = one DoRF test curve per reference
QUICK_CLIP_FRACTIONS = (0.02, 0.08)
QUICK_CODECS = ("jpeg90",)

#: Metric keys of a result row, with how they are reported (label, unit, better).
METRIC_COLUMNS = {
    "pu21_psnr": ("PU21-PSNR", "dB", "higher"),
    "si_log2_rmse": ("SI log2 RMSE", "stops", "lower"),
    "si_log2_rmse_unclipped": ("SI log2 RMSE unclipped", "stops", "lower"),
    "si_log2_rmse_clipped": ("SI log2 RMSE clipped", "stops", "lower"),
    "clipped_energy_stops": ("clipped energy |err|", "stops", "lower"),
    "clipped_energy_bias_stops": ("clipped energy bias", "stops", "0"),
    "irradiance_rel_error": ("irradiance rel. err (pano)", "", "lower"),
    "crf_rmse": ("CRF RMSE", "", "lower"),
    "seconds": ("time", "s", "lower"),
}

ALIGNMENT_STATEMENT = (
    "Alignment: every prediction is multiplied by one global factor "
    "s = exp(median(log Y_ref - log Y_pred)) over the pixels not clipped in the LDR input "
    "(5 % darkest and brightest reference pixels excluded; Y = Rec.709 luminance); all "
    "metrics use that s. PU21: the reference median luminance is mapped to 50 cd/m^2 (same "
    "factor for the prediction), channels clamped to [0.005, 10000] cd/m^2, peak V(100) = 256.4, "
    "capped at 100 dB. SI log2 RMSE: luminance floored 10 stops below the reference median. "
    "Irradiance: RGB cosine-weighted integrals at 64 Fibonacci normals on 128x64 maps, "
    "mean of |E_pred - E_ref| / |E_ref|. Clipped energy: log2 ratio of solid-angle-weighted "
    "(panoramas) luminance sums inside the clip mask (pixels with max channel >= clip level)."
)


# ----------------------------------------------------------------------------- method registry

MethodFn = Callable[[np.ndarray, dict], tuple[np.ndarray, object]]


@dataclass(frozen=True)
class MethodSpec:
    """A method the harness can run.

    Attributes:
        name: registry key (also the row label in reports).
        fn: ``fn(ldr, info) -> (hdr, inverse_crf)``; ``ldr`` float32 HxWx3 in [0, 1];
            ``info`` = ``{"panorama": bool, "codec": str, "bits": 8}``; ``hdr`` HxWx3 linear
            (any global scale); ``inverse_crf`` (1024,) / (C, 1024) / ``InverseCRF`` or None.
        description: one line for reports.
        check: optional callable raising ``ImportError`` / ``Ldr2HdrError`` when the
            method cannot run here (e.g. missing weights); the harness then skips it.
    """

    name: str
    fn: MethodFn
    description: str = ""
    check: Callable[[], object] | None = None


_REGISTRY: dict[str, MethodSpec] = {}


def register_method(name: str, fn: MethodFn, *, description: str = "", check: Callable[[], object] | None = None,
                    replace: bool = False) -> None:
    """Add a method to the registry (``replace=True`` to overwrite an existing name)."""
    if name in _REGISTRY and not replace:
        raise ValueError(f"method {name!r} is already registered")
    _REGISTRY[name] = MethodSpec(name, fn, description, check)


def available_methods() -> list[str]:
    """Registered method names, in registration order."""
    return list(_REGISTRY)


def get_method(name: str) -> MethodSpec:
    """Look up a registered method; raises :class:`Ldr2HdrError` for an unknown name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise Ldr2HdrError(f"unknown evaluation method {name!r}; known: {', '.join(_REGISTRY)}") from None


def _srgb_clip(ldr: np.ndarray, info: dict):
    curve = synth.srgb_decode(synth.GRID)
    return synth.srgb_decode(ldr).astype(np.float32), curve


def _gamma22(ldr: np.ndarray, info: dict):
    return np.power(np.asarray(ldr, dtype=np.float32), 2.2), synth.GRID ** 2.2


def _masia(ldr: np.ndarray, info: dict):
    from ..inference.highlights import classical

    linear, curve = _gamma22(ldr, info)
    return classical.expand_masia(linear, ldr), curve


def _kovaleski(ldr: np.ndarray, info: dict):
    from ..inference.highlights import classical

    linear, curve = _gamma22(ldr, info)
    return classical.expand_kovaleski_oliveira(linear, ldr, wrap=bool(info.get("panorama"))), curve


def _pipeline_method(method: str) -> tuple[MethodFn, Callable[[], object]]:
    def check():
        from ..inference import pipeline

        return pipeline.Settings(method=method)

    def run(ldr: np.ndarray, info: dict):
        from ..inference import pipeline

        settings = pipeline.Settings(method=method, panorama="on" if info.get("panorama") else "off",
                                     weights_dir=str(info.get("weights_dir") or ""))
        result = pipeline.run(ldr, settings)
        return result.hdr, result.inverse_crf

    return run, check


register_method("srgb-clip", _srgb_clip, description="inverse sRGB only, highlights stay clipped")
register_method("gamma2.2", _gamma22, description="inverse gamma 2.2 only")
register_method("masia2017", _masia, description="gamma 2.2 + Masia et al. 2017 gamma expansion")
register_method("kovaleski2014", _kovaleski, description="gamma 2.2 + Kovaleski & Oliveira 2014 expand map")
_fn, _check = _pipeline_method("classical")
register_method("ldr2hdr-classical", _fn, description="ldr2hdr pipeline, method=classical", check=_check)
_fn, _check = _pipeline_method("learned")
register_method("ldr2hdr-learned", _fn, description="ldr2hdr pipeline, method=learned", check=_check)
del _fn, _check


# ----------------------------------------------------------------------------- references


@dataclass
class Reference:
    """One HDR reference prepared for evaluation (pixels float32 HxWx3, linear)."""

    label: str
    path: Path
    pixels: np.ndarray
    panorama: bool
    original_size: tuple[int, int]  # (width, height) before downsampling


def _is_training_file(path: Path) -> bool:
    """True for a file the fixed split reserves for training (never evaluate on those)."""
    try:
        from ..training import split
    except ImportError:  # installed without the training folder: nothing is known to be training data
        return False
    return path.name in split.TRAIN_SPLIT


def find_references(ref_paths: list[str | Path], *, exclude_training: bool = True) -> list[Path]:
    """Expand folders (recursively) and files to a sorted, de-duplicated list of .exr/.hdr files."""
    found: list[Path] = []
    for entry in ref_paths:
        p = Path(entry)
        if p.is_dir():
            found += [q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in (".exr", ".hdr")]
        elif p.is_file():
            found.append(p)
        else:
            raise UnsupportedImageError("reference path does not exist", p)
    unique = sorted({q.resolve() for q in found})
    if exclude_training:
        skipped = [q for q in unique if _is_training_file(q)]
        if skipped:
            logger.info("skipping %d training-split references", len(skipped))
        unique = [q for q in unique if not _is_training_file(q)]
    return unique


def default_reference_paths() -> list[Path]:
    """The evaluation split of ``/work/shared/data/hdr`` plus Blender's studio lights (when present)."""
    try:
        from ..training import split
    except ImportError:
        split = None
    if split is not None:
        return split.eval_files(DEFAULT_HDR_ROOT)
    paths = []
    folder = synth.ocio_config_path().parent.parent / "studiolights" / "world"
    if folder.is_dir():
        paths = sorted(folder.glob("*.exr"))
    return paths


def read_hdr(path: str | Path) -> np.ndarray:
    """Read a linear HDR file as float32 HxWx3 (via ``io.read_image``, else OpenImageIO)."""
    try:
        from ..inference.io import read_image
    except ImportError:
        read_image = None
    if read_image is not None:
        return np.asarray(read_image(path).pixels, dtype=np.float32)
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise UnsupportedImageError(oiio.geterror() or "cannot open", path)
    try:
        spec = inp.spec()
        names = [n.split(".")[-1].upper() for n in spec.channelnames]
        chans = [names.index(c) for c in "RGB"] if all(c in names for c in "RGB") else [0, 1, 2]
        pixels = inp.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT)
        err = inp.geterror()
    finally:
        inp.close()
    if pixels is None or err:
        raise UnsupportedImageError(err or "cannot decode", path)
    pixels = np.asarray(pixels, dtype=np.float32).reshape(spec.height, spec.width, spec.nchannels)
    if spec.nchannels < 3:
        return np.repeat(pixels[..., :1], 3, axis=2)
    return np.ascontiguousarray(pixels[..., chans])


def _label(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def load_reference(path: str | Path, max_width: int = MAX_WIDTH) -> Reference:
    """Read one reference and area-downsample it to at most ``max_width`` pixels wide."""
    path = Path(path)
    pixels = read_hdr(path)
    h, w = pixels.shape[:2]
    pixels = np.nan_to_num(np.maximum(pixels, 0.0), nan=0.0, posinf=0.0)
    if w > max_width:
        nh = max(1, round(h * max_width / w))
        pixels = metrics.area_downsample(pixels, nh, max_width).astype(np.float32)
    return Reference(_label(path), path, pixels.astype(np.float32), metrics.is_equirect((h, w)), (w, h))


# ----------------------------------------------------------------------------- protocol


def _stable_int(*parts) -> int:
    text = "\x1f".join(str(p) for p in parts)
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], 16)


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
        "clipped_energy_bias_stops": metrics.clipped_energy_log2_ratio(pred, ref, clip_mask, scale=s,
                                                                       panorama=panorama),
        "irradiance_rel_error": (metrics.irradiance_error(pred, ref, scale=s) if panorama else float("nan")),
        "crf_rmse": metrics.crf_rmse(pred_curve, true_curve),
    }
    out["clipped_energy_stops"] = abs(out["clipped_energy_bias_stops"])
    return out


def _check_output(hdr, shape) -> np.ndarray:
    arr = np.asarray(hdr)
    if arr.shape != tuple(shape):
        raise Ldr2HdrError(f"method returned shape {arr.shape}, expected {tuple(shape)}")
    return arr


def evaluate(
    ref_dirs: list[str | Path] | None = None,
    methods: list[str] | tuple[str, ...] = DEFAULT_METHODS,
    out_dir: str | Path = DEFAULT_OUT_DIR,
    quick: bool = False,
    *,
    full: bool = False,
    max_width: int | None = None,
    seed: int = 0,
    exclude_training: bool = True,
    dorf_path: str | Path | None = None,
    clip_fractions: tuple[float, ...] | None = None,
    codecs: tuple[str, ...] | None = None,
    curves: list[str] | None = None,
    shard: tuple[int, int] | None = None,
    weights_dir: str | Path | None = None,
) -> dict:
    """Run the protocol and write ``results.json`` and ``results.md`` into ``out_dir``.

    Args:
        ref_dirs: folders / files of references; ``None`` = :func:`default_reference_paths`.
        methods: registry names (see :func:`available_methods`).
        out_dir: output folder (created).
        quick: small subset (4 panoramas + 2 flat references, 512 px wide, curves srgb /
            one DoRF test curve / agx / khronos-pbr-neutral, clip 0.02 and 0.08, JPEG q90 only).
        full: all 10 DoRF test curves per reference instead of 3.
        max_width: override the downsampling width.
        seed: changes the DoRF subset per reference (results are deterministic per seed).
        exclude_training: skip files that the fixed split marks as training files.
        dorf_path: DoRF ``.mat`` (default :data:`synth.DEFAULT_DORF_PATH`); DoRF curves are
            skipped with a warning when it is missing.
        clip_fractions, codecs, curves: override the protocol's lists (``curves`` is used
            as given for every reference).
        shard: ``(i, n)`` evaluates only references ``i, i+n, i+2n, ...`` (0-based), so n
            processes can share the work; :func:`merge_results` joins their outputs.
        weights_dir: a folder of candidate model weights with its own ``manifest.json``
            (``pipeline.Settings.weights_dir``) for the ldr2hdr methods, so a candidate is
            scored without replacing the bundled ``weights/`` under a running evaluation.

    Returns:
        The summary dict (also written as JSON): ``config``, ``references``, ``rows``,
        ``summary`` (``by_method``, ``by_method_family``), ``unavailable_methods``.

    Raises:
        Ldr2HdrError: no references found, an unknown method name, or a ``weights_dir``
            that is not a folder.
    """
    t_start = time.perf_counter()
    if weights_dir:
        from ..inference import pipeline

        # the pipeline's own settings check, once before any work: otherwise every sample of a
        # long run records the same error row
        pipeline.Settings(weights_dir=str(weights_dir))
    mode = "quick" if quick else ("full" if full else "standard")
    specs = [get_method(m) for m in methods]
    paths = default_reference_paths() if ref_dirs is None else find_references(ref_dirs,
                                                                             exclude_training=exclude_training)
    if not paths:
        raise Ldr2HdrError("no HDR references (.exr/.hdr) found to evaluate on")
    width = max_width or (QUICK_MAX_WIDTH if quick else MAX_WIDTH)
    clip_fractions = tuple(clip_fractions or (QUICK_CLIP_FRACTIONS if quick else CLIP_FRACTIONS))
    codecs = tuple(codecs or (QUICK_CODECS if quick else CODECS))

    if quick:
        paths = _quick_subset(paths)
    if shard is not None:
        index, count = shard
        if not (count >= 1 and 0 <= index < count):
            raise Ldr2HdrError(f"bad shard {index}/{count}: use I/N with 0 <= I < N")
        paths = paths[index::count]
    refs = [load_reference(p, width) for p in paths]

    dorf_names: list[str] = []
    dorf_file = Path(dorf_path) if dorf_path else synth.DEFAULT_DORF_PATH
    if curves is None:
        if dorf_file.is_file():
            dorf_names = synth.dorf_test_curve_names(dorf_file)
        else:
            logger.warning("DoRF curves not found at %s; evaluating without them", dorf_file)
    views = _available_views() if curves is None else []

    unavailable: dict[str, str] = {}
    runnable = []
    for spec in specs:
        reason = _unavailable_reason(spec)
        if reason:
            logger.warning("method %s unavailable: %s", spec.name, reason)
            unavailable[spec.name] = reason
        else:
            runnable.append(spec)

    rows = []
    for ref in refs:
        ref_curves = list(curves) if curves is not None else _curves_for(ref.label, mode, dorf_names, views, seed)
        for curve in ref_curves:
            for clip in clip_fractions:
                for codec in codecs:
                    rows += _run_sample(ref, curve, clip, codec, runnable, dorf_file, seed, weights_dir)
        logger.info("evaluated %s (%d rows so far)", ref.label, len(rows))

    summary = {
        "config": {
            "mode": mode,
            "methods": list(methods),
            "max_width": width,
            "clip_fractions": list(clip_fractions),
            "codecs": list(codecs),
            "view_curves": views,
            "dorf_test_curves": dorf_names,
            "seed": seed,
            "shard": list(shard) if shard else None,
            "weights_dir": str(weights_dir) if weights_dir else None,
            "alignment": ALIGNMENT_STATEMENT,
            "python": platform.python_version(),
        },
        "references": [
            {"label": r.label, "path": str(r.path), "panorama": r.panorama,
             "original_size": list(r.original_size), "eval_size": [r.pixels.shape[1], r.pixels.shape[0]]}
            for r in refs
        ],
        "unavailable_methods": unavailable,
        "rows": rows,
        "summary": {
            "by_method": aggregate(rows, ("method",)),
            "by_method_family": aggregate(rows, ("method", "curve_family")),
        },
    }
    summary["seconds_total"] = time.perf_counter() - t_start
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "results.json", summary)
    (out / "results.md").write_text(markdown_report(summary), encoding="utf-8")
    logger.info("wrote %s and %s (%.1f s)", out / "results.json", out / "results.md", summary["seconds_total"])
    return summary


def merge_results(files: list[str | Path], out_dir: str | Path) -> dict:
    """Join ``results.json`` files of shards (or of method subsets run separately with the same
    protocol) into one summary with re-aggregated tables; writes results.json/.md to ``out_dir``."""
    parts = [json.loads(Path(f).read_text(encoding="utf-8")) for f in files]
    if not parts:
        raise Ldr2HdrError("nothing to merge")
    rows = [row for part in parts for row in part["rows"]]
    config = dict(parts[0]["config"])
    config["methods"] = sorted({m for part in parts for m in part["config"]["methods"]})
    config["shard"] = None
    config["merged_from"] = [str(f) for f in files]
    refs = {r["label"]: r for part in parts for r in part["references"]}
    summary = {
        "config": config,
        "references": list(refs.values()),
        "unavailable_methods": {k: v for part in parts for k, v in part.get("unavailable_methods", {}).items()},
        "rows": rows,
        "summary": {
            "by_method": aggregate(rows, ("method",)),
            "by_method_family": aggregate(rows, ("method", "curve_family")),
        },
        "seconds_total": sum(part.get("seconds_total", 0.0) for part in parts),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "results.json", summary)
    (out / "results.md").write_text(markdown_report(summary), encoding="utf-8")
    return summary


def _quick_subset(paths: list[Path]) -> list[Path]:
    """A fixed small mix: the first panoramas and flat images in hash order of their labels."""
    ordered = sorted(paths, key=lambda p: _stable_int("quick", _label(p)))
    panos = [p for p in ordered if metrics.is_equirect(image_size(p)[::-1])]
    flats = [p for p in ordered if p not in panos]
    chosen = panos[:QUICK_PANORAMAS] + flats[:QUICK_FLATS]
    if len(chosen) < QUICK_PANORAMAS + QUICK_FLATS:
        chosen += [p for p in ordered if p not in chosen][: QUICK_PANORAMAS + QUICK_FLATS - len(chosen)]
    return sorted(chosen, key=_label)


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise UnsupportedImageError(oiio.geterror() or "cannot open", path)
    try:
        spec = inp.spec()
        return int(spec.width), int(spec.height)
    finally:
        inp.close()


def _available_views() -> list[str]:
    try:
        synth.ocio_config_path()
    except Ldr2HdrError as exc:
        logger.warning("%s; evaluating without view-transform curves", exc)
        return []
    return list(VIEW_CURVES)


def _unavailable_reason(spec: MethodSpec) -> str | None:
    if spec.check is None:
        return None
    try:
        spec.check()
    except (ImportError, Ldr2HdrError) as exc:
        return str(exc)
    return None


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


# ----------------------------------------------------------------------------- aggregation & reports


def _finite(values) -> np.ndarray:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    return arr[np.isfinite(arr)]


def aggregate(rows: list[dict], keys: tuple[str, ...]) -> dict:
    """Mean / median / count of every metric per group of ``keys`` (group key joined by ``|``).

    ``nan`` values (not applicable, e.g. irradiance on flat images) are left out of the
    statistics; ``n`` counts the values used; ``samples`` counts the group's rows.
    """
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault("|".join(str(row.get(k)) for k in keys), []).append(row)
    out = {}
    for name, members in groups.items():
        stats = {"samples": len(members), "errors": sum(1 for r in members if r.get("status") != "ok")}
        for metric in METRIC_COLUMNS:
            vals = _finite(r.get(metric) for r in members)
            stats[metric] = {
                "mean": float(vals.mean()) if vals.size else None,
                "median": float(np.median(vals)) if vals.size else None,
                "n": int(vals.size),
            }
        out[name] = stats
    return out


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"


def _table(groups: dict, stat: str, label: str) -> list[str]:
    arrows = {"higher": "↑", "lower": "↓", "0": "→0"}
    head = [label, "n"] + [
        f"{lbl}{' (' + unit + ')' if unit else ''} {arrows[better]}" for lbl, unit, better in METRIC_COLUMNS.values()
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, stats in groups.items():
        cells = [name.replace("|", " / "), str(stats["samples"] - stats["errors"])]
        for metric in METRIC_COLUMNS:
            cells.append(_fmt(stats[metric][stat]))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown_report(summary: dict) -> str:
    """The results as markdown: methods as rows, metrics as columns (means, then medians, then per curve family)."""
    cfg = summary["config"]
    refs = summary["references"]
    n_pano = sum(1 for r in refs if r["panorama"])
    lines = [
        "# ldr2hdr evaluation",
        "",
        f"Mode `{cfg['mode']}`: {len(refs)} references ({n_pano} panoramas), max width {cfg['max_width']} px, "
        f"clip fractions {cfg['clip_fractions']}, codecs {cfg['codecs']}, seed {cfg['seed']}. "
        f"Total {summary.get('seconds_total', float('nan')):.0f} s.",
        "",
        "## Means",
        "",
        *_table(summary["summary"]["by_method"], "mean", "method"),
        "",
        "## Medians",
        "",
        *_table(summary["summary"]["by_method"], "median", "method"),
        "",
        "## Means per curve family",
        "",
        *_table(summary["summary"]["by_method_family"], "mean", "method / curves"),
        "",
        "n = samples scored; per-metric counts are in results.json (irradiance only on panoramas, "
        "CRF RMSE only when a method returns a curve). n/a = no applicable sample.",
        "",
        ALIGNMENT_STATEMENT,
    ]
    if summary.get("unavailable_methods"):
        lines += ["", "Unavailable methods: " + "; ".join(
            f"{k} ({v})" for k, v in summary["unavailable_methods"].items())]
    return "\n".join(lines) + "\n"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=1, allow_nan=False), encoding="utf-8")
    tmp.replace(path)


# ----------------------------------------------------------------------------- command line


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``eval`` options to an argparse parser (used by ``ldr2hdr eval`` and training/evaluate.py)."""
    parser.add_argument("refs", nargs="*", help="folders/files of .exr/.hdr references "
                        "(default: the evaluation split of ../shared/data/hdr + Blender's studio lights)")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help="comma-separated method names (default: %(default)s)")
    parser.add_argument("--out", default=str(DEFAULT_OUT_DIR), help="output folder (default: %(default)s)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small subset, a few minutes on 2 CPU cores")
    mode.add_argument("--full", action="store_true", help="all 10 DoRF test curves per reference")
    parser.add_argument("--max-width", type=int, default=None, help="downsample references to this width")
    parser.add_argument("--seed", type=int, default=0, help="protocol seed (default: %(default)s)")
    parser.add_argument("--include-training", action="store_true",
                        help="also evaluate on files the fixed split reserves for training")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for the methods")
    parser.add_argument("--list-methods", action="store_true", help="list the registered methods and exit")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="evaluate only every N-th reference starting at I (run N processes, then --merge)")
    parser.add_argument("--weights-dir", default=None, metavar="DIR",
                        help="candidate model weights (a folder with its own manifest.json) for the ldr2hdr "
                             "methods instead of the bundled weights/")
    parser.add_argument("--merge", nargs="+", default=None, metavar="RESULTS_JSON",
                        help="join results.json files of shards or method subsets into --out")
    return parser


def run_eval(args: argparse.Namespace) -> int:
    """Run the evaluation from parsed arguments; writes the markdown table to stdout. Returns the exit code."""
    if args.list_methods:
        for name in available_methods():
            spec = get_method(name)
            reason = _unavailable_reason(spec)
            sys.stdout.write(f"{name}\t{spec.description}{'  [unavailable: ' + reason + ']' if reason else ''}\n")
        return 0
    if args.merge:
        summary = merge_results(args.merge, args.out)
        sys.stdout.write(markdown_report(summary))
        return 0
    if args.threads:
        import torch

        torch.set_num_threads(int(args.threads))
    shard = None
    if args.shard:
        try:
            index, count = (int(v) for v in str(args.shard).split("/"))
        except ValueError:
            raise Ldr2HdrError(f"bad --shard {args.shard!r}: use I/N, e.g. 0/2") from None
        shard = (index, count)
    methods = [m.strip() for m in str(args.methods).split(",") if m.strip()]
    summary = evaluate(
        args.refs or None,
        methods,
        args.out,
        quick=args.quick,
        full=args.full,
        max_width=args.max_width,
        seed=args.seed,
        exclude_training=not args.include_training,
        shard=shard,
        weights_dir=args.weights_dir,
    )
    sys.stdout.write(markdown_report(summary))
    errors = sum(1 for r in summary["rows"] if r.get("status") != "ok")
    return 1 if errors or summary["unavailable_methods"] else 0


main_eval = run_eval
