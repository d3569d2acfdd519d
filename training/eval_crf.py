"""Evaluate the learned camera-curve estimator on held-out curves and held-out scenes.

    python training/eval_crf.py                                   # weights/crf_net.safetensors
    python training/eval_crf.py --weights runs/crf/crf_net.safetensors
    python training/eval_crf.py --weights runs/crf/crf_net.safetensors --publish
    python training/eval_crf.py --timing                          # 12-megapixel CPU timing
    python training/eval_crf.py --scenes train-first --max-scenes 16  # scenes the network has seen

Protocol (nothing here is ever trained on):

* scenes: the evaluation split of training/split.py (14 HDRs) + Blender's 8 studio lights,
  downsized to at most 512 px wide (``--max-width``; two shared CPU cores); ``--scenes
  train-first|train-added`` puts training references in their place, a diagnosis of how much
  of the error is the scene being new, never a published number;
* curves: the 10 DoRF test curves (RandomState(730) split) and the gray-axis response of
  Blender's view transforms ``agx``, ``filmic``, ``khronos-pbr-neutral``, ``standard``
  (synth.py; clip level = the linear grey that reaches 8-bit white);
* camera: ``synth.synthesize`` with clip fraction 0.02 and 0.08; codec 8-bit PNG or JPEG q90,
  alternating over (scene, curve, clip) so both codecs meet every curve (``--all-codecs``:
  both for every sample).

Metrics:

* inverse-CRF RMSE (1024 samples, gray-axis curves) of the estimate vs. the true curve;
  per curve: the mean over its samples; the table's mean / median / worst are over the
  14 curves (each curve weighs the same);
* linearization error: scale-invariant log2 RMSE of luminance (stops) on well-exposed
  pixels (not clipped, LDR max channel in [0.05, 0.95]) between the linearized LDR and the
  reference exposed to the same clip level; the scale is aligned on those pixels;
* clip level vs. mid-tones: how many stops too dark (negative) or bright the clip level
  sits against the well-exposed pixels (:func:`clip_level_shift`); every restored
  highlight inherits this shift, so it is the curve's share of the highlight energy error.

Compared with the sRGB assumption and a gamma 2.2 power law. Prints a markdown table and
writes ``runs/crf/eval.json``. ``--publish`` copies the weights to
``weights/crf_net.safetensors`` and records the manifest entry with these metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))
import split  # noqa: E402

from ldr2hdr.evaluation import metrics, synth  # noqa: E402
from ldr2hdr.evaluation.references import read_hdr  # noqa: E402
from ldr2hdr.inference import crf  # noqa: E402
from ldr2hdr.inference.crf import network as crf_net  # noqa: E402
from ldr2hdr.inference.weights import load_manifest, record_weights_file  # noqa: E402

HDR_ROOT = ROOT.parent / "shared" / "data" / "hdr"
DORF_PATH = ROOT.parent / "shared" / "data" / "crf" / "dorf" / "dorfCurvesInv.mat"
VIEWS = ("agx", "filmic", "khronos-pbr-neutral", "standard")
CLIP_FRACTIONS = (0.02, 0.08)
CODECS = ("png", "jpeg90")
METHODS = ("learned", "network", "srgb", "gamma2.2")  # network: the CRF network's curve before the sRGB trust


def load_scene(path: Path, max_width: int = 1024) -> np.ndarray:
    img = np.nan_to_num(np.maximum(read_hdr(path), 0.0), nan=0.0, posinf=0.0).astype(np.float32)
    h, w = img.shape[:2]
    f = int(np.ceil(w / max_width))
    if f > 1:
        img = img[: h // f * f, : w // f * f].reshape(h // f, f, w // f, f, 3).mean(axis=(1, 3))
    return img


def heldout_curves() -> list[str]:
    """The protocol's curves: the 10 DoRF test curves, then Blender's view transforms."""
    return synth.dorf_test_curve_names(DORF_PATH) + list(VIEWS)


#: Which references the photos are made of (``--scenes``): the held-out protocol, or training
#: references, to see how much of the error is the scene being new (never for published numbers).
SCENE_SETS = ("eval", "train-first", "train-added")


def scene_files(scenes: str = "eval", max_scenes: int | None = None) -> list[Path]:
    """References of a scene set (:data:`SCENE_SETS`); ``max_scenes``: a seeded random subset, in order.

    ``train-first``: the first split's training references (:data:`split.TRAIN_SPLIT_FIRST`, what the
    shipped network was trained on); ``train-added``: the training references added on 2026-12-02."""
    if scenes == "eval":
        refs = split.eval_files(HDR_ROOT, include_studio_lights=True)
        assert all(split.is_eval(p) for p in refs)
    elif scenes in SCENE_SETS:
        first = set(split.TRAIN_SPLIT_FIRST)
        refs = [p for p in split.train_files(HDR_ROOT) if (p.name in first) == (scenes == "train-first")]
    else:
        raise ValueError(f"scenes must be one of {SCENE_SETS}, got {scenes!r}")
    if max_scenes is not None and len(refs) > max_scenes:
        pick = np.random.default_rng(0).choice(len(refs), max_scenes, replace=False)
        refs = [refs[i] for i in sorted(pick)]
    return refs


def heldout_setup(quick: bool = False, clips: tuple[float, ...] = CLIP_FRACTIONS, scenes: str = "eval",
                  max_scenes: int | None = None) -> tuple[list[Path], tuple, tuple]:
    """``(scenes, clip fractions, codecs)`` of the protocol (``quick``: every second scene, one
    clip fraction, PNG only; ``clips``: other clip fractions than the protocol's; ``scenes``,
    ``max_scenes``: :func:`scene_files`)."""
    refs = scene_files(scenes, max_scenes)
    if quick:
        return refs[::2], tuple(clips)[:1], CODECS[:1]
    return refs, tuple(clips), CODECS


def heldout_photos(max_width: int = 512, quick: bool = False, all_codecs: bool = False,
                   clips: tuple[float, ...] = CLIP_FRACTIONS, scenes: str = "eval", max_scenes: int | None = None):
    """The protocol's photos, in order: ``(ref_path, hdr, curve, clip, codec, ldr, info)``.

    Codecs alternate over (scene, curve, clip) so every combination is covered without
    multiplying the run time (``all_codecs``: both for every sample); ``quick``: one clip
    fraction, PNG only, every second scene."""
    refs, clips, codecs = heldout_setup(quick, clips, scenes, max_scenes)
    curves = heldout_curves()
    for ri, ref_path in enumerate(refs):
        hdr = load_scene(ref_path, max_width)
        for curve in curves:
            for ci, clip in enumerate(clips):
                k = (ri + curves.index(curve) + ci) % len(codecs)
                for codec in (codecs if all_codecs else codecs[k:k + 1]):
                    ldr, info = synth.synthesize(hdr, curve, clip, codec, dorf_path=DORF_PATH)
                    yield ref_path, hdr, curve, clip, codec, ldr, info


def well_exposed(ldr: np.ndarray, clip_mask: np.ndarray) -> np.ndarray:
    peak = ldr.max(axis=2)
    return (~clip_mask) & (peak >= 0.05) & (peak <= 0.95)


def clip_level_shift(lin: np.ndarray, ref_lin: np.ndarray, mask: np.ndarray) -> float:
    """Where a curve puts the clip level against the mid-tones, relative to the true curve (stops).

    Every inverse curve maps pixel value 1 to 1, so a curve that makes the well-exposed
    pixels too bright by a factor ``r`` leaves the clip level (and every highlight restored
    from it) ``log2 r`` stops too dark once the image is aligned on those pixels, as the
    evaluation and a user matching exposure both do: ``-log2 median(lin / ref_lin)`` over
    the well-exposed pixels (luminance; ``ref_lin`` is the true radiance exposed so the
    sensor clips at 1). Negative: highlights too dark.
    """
    if mask.sum() <= 100:
        return float("nan")
    y, yt = metrics.luminance(lin)[mask], metrics.luminance(ref_lin)[mask]
    ok = (y > 0) & (yt > 0)
    if ok.sum() <= 100:
        return float("nan")
    return float(-np.median(np.log2(y[ok] / yt[ok])))


def time_12mp(weights: Path, runs: int = 7) -> int:
    """Print the wall time of one estimate on a 4000x3000 image (1 CPU thread, model loaded)."""
    light = [p for p in split.studio_light_files() if p.stem == "forest"]
    hdr = load_scene(light[0]) if light else np.random.default_rng(0).random((512, 1024, 3)) ** 4 * 4
    ldr, _ = synth.synthesize(hdr, "srgb", 0.03)
    img = np.ascontiguousarray(np.repeat(np.repeat(ldr, 6, axis=0), 4, axis=1)[:3000, :4000], dtype=np.float32)
    crf_net.estimate_crf_learned(img[:512, :512], weights=weights)  # load the model once
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        est = crf_net.estimate_crf_learned(img, weights=weights)
        times.append(time.perf_counter() - t)
    print(f"estimate_crf_learned on {img.shape[1]}x{img.shape[0]} (12 MP), 1 thread: median "
          f"{np.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
          f"({est.method}, {est.details.get('patches')} patches)")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=crf_net.WEIGHTS_FILE)
    ap.add_argument("--shrink-weights", type=Path, default=None,
                    help="the trust in the curve over sRGB fitted for --weights (training/fit_crf_shrink.py --out); "
                         "default weights/crf_shrink.safetensors")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "crf" / "eval.json")
    ap.add_argument("--quick", action="store_true", help="one clip fraction, PNG only, every second scene")
    ap.add_argument("--publish", action="store_true", help="copy the weights to weights/ with these metrics")
    ap.add_argument("--all-codecs", action="store_true", help="every sample in PNG and JPEG (2x the time)")
    ap.add_argument("--clips", type=lambda v: tuple(float(x) for x in v.split(",")), default=CLIP_FRACTIONS,
                    help="clip fractions of the photos (default 0.02,0.08; e.g. 0.25 for heavily clipped photos)")
    ap.add_argument("--scenes", default="eval", choices=SCENE_SETS,
                    help="the photos' references: the held-out split (default), or the training references the "
                         "shipped network saw (train-first) or not (train-added), to separate scene from curve error")
    ap.add_argument("--max-scenes", type=int, default=None, help="a seeded random subset of that many references")
    ap.add_argument("--max-width", type=int, default=512, help="scenes are downsized to this width")
    ap.add_argument("--timing", action="store_true",
                    help="only time the estimate on a 12-megapixel image (4000x3000) and exit")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("ldr2hdr").setLevel(logging.ERROR)

    import torch
    torch.set_num_threads(1)

    if args.timing:
        return time_12mp(args.weights)

    if args.publish and (args.clips != CLIP_FRACTIONS or args.scenes != "eval" or args.max_scenes is not None):
        raise SystemExit("--publish records the held-out protocol; drop --clips, --scenes and --max-scenes")
    refs, clips, codecs = heldout_setup(args.quick, args.clips, args.scenes, args.max_scenes)
    curves = heldout_curves()
    truths = {c: synth.true_inverse_curve(c, dorf_path=DORF_PATH) for c in curves}
    fixed = {"srgb": crf.srgb_inverse(), "gamma2.2": crf.gamma_inverse(2.2)}

    rows = []
    t_est = []
    t0 = time.time()
    previous = None
    photos = heldout_photos(args.max_width, args.quick, args.all_codecs, args.clips, args.scenes, args.max_scenes)
    for ref_path, hdr, curve, clip, codec, ldr, info in photos:
        if previous is not None and ref_path != previous:
            print(f"{previous.name}: {len(rows)} samples, {time.time() - t0:.0f}s", file=sys.stderr)
        previous = ref_path
        true = truths[curve]
        ref_lin = hdr * info["exposure_scale"]
        mask = well_exposed(ldr, info["clip_mask"])
        t = time.perf_counter()
        est = crf_net.estimate_crf_learned(ldr, weights=args.weights, shrink_weights=args.shrink_weights)
        t_est.append(time.perf_counter() - t)
        raw = crf_net.estimate_crf_learned(ldr, weights=args.weights, shrink=False)
        row = {"ref": ref_path.name, "curve": curve, "family": "dorf" if curve.startswith("dorf") else curve,
               "clip": clip, "codec": codec, "confidence": est.confidence, "method": est.method,
               "trust": est.details.get("trust")}
        for name, inv in (("learned", est), ("network", raw), *fixed.items()):
            row[f"crf_rmse_{name}"] = crf.crf_rmse(inv, true)
            lin = crf.linearize(ldr, inv)
            row[f"si_log2_{name}"] = (metrics.si_log2_rmse(lin, ref_lin, mask, align_mask=mask)
                                      if mask.sum() > 100 else float("nan"))
            row[f"clip_shift_{name}"] = clip_level_shift(lin, ref_lin, mask)
        rows.append(row)
    if previous is not None:
        print(f"{previous.name}: {len(rows)} samples, {time.time() - t0:.0f}s", file=sys.stderr)

    def agg(sel, key):
        v = np.array([r[key] for r in rows if sel(r)], np.float64)
        return float(np.nanmean(v)) if v.size else float("nan")

    per_curve = {c: {m: agg(lambda r, c=c: r["curve"] == c, f"crf_rmse_{m}") for m in METHODS} for c in curves}
    summary = {}
    for m in METHODS:
        v = np.array([per_curve[c][m] for c in curves])
        summary[m] = {"mean": float(v.mean()), "median": float(np.median(v)), "worst": float(v.max()),
                      "worst_curve": curves[int(v.argmax())]}
    families = ["dorf", *VIEWS]
    si = {f: {m: agg(lambda r, f=f: r["family"] == f, f"si_log2_{m}") for m in METHODS} for f in families}
    crf_by_family = {f: {m: agg(lambda r, f=f: r["family"] == f, f"crf_rmse_{m}") for m in METHODS}
                     for f in families}
    shift = {f: {m: agg(lambda r, f=f: r["family"] == f, f"clip_shift_{m}") for m in METHODS} for f in families}
    shift_abs = {m: float(np.nanmean([abs(r[f"clip_shift_{m}"]) for r in rows])) for m in METHODS}
    fallbacks = sum(1 for r in rows if r["method"].startswith("srgb (fallback"))
    as_srgb = sum(1 for r in rows if r["method"].startswith("srgb (learned"))

    lines = ["| inverse-CRF RMSE (14 held-out curves) | learned | network alone | sRGB | gamma 2.2 |", "|---|---|---|---|---|"]
    for k in ("mean", "median", "worst"):
        lines.append(f"| {k} | " + " | ".join(f"{summary[m][k]:.4f}" for m in METHODS) + " |")
    lines.append(f"| worst curve | " + " | ".join(summary[m]["worst_curve"] for m in METHODS) + " |")
    lines += ["", "| curve family | CRF RMSE learned | network alone | sRGB | gamma 2.2 | SI log2 RMSE learned | network alone | sRGB | gamma 2.2 |",
              "|---|---|---|---|---|---|---|---|---|"]
    for f in families:
        lines.append(f"| {f} | " + " | ".join(f"{crf_by_family[f][m]:.4f}" for m in METHODS) + " | "
                     + " | ".join(f"{si[f][m]:.3f}" for m in METHODS) + " |")
    lines += ["", "| clip level vs. mid-tones (stops, mean; negative: highlights too dark) | learned | network alone | sRGB | gamma 2.2 |",
              "|---|---|---|---|---|"]
    for f in families:
        lines.append(f"| {f} | " + " | ".join(f"{shift[f][m]:+.3f}" for m in METHODS) + " |")
    lines.append("| all: mean absolute | " + " | ".join(f"{shift_abs[m]:.3f}" for m in METHODS) + " |")
    lines += ["", "| curve | learned | network alone | sRGB | gamma 2.2 |", "|---|---|---|---|---|"]
    for c in curves:
        lines.append(f"| {c} | " + " | ".join(f"{per_curve[c][m]:.4f}" for m in METHODS) + " |")
    t_est = np.array(t_est)
    conf = np.array([r["confidence"] for r in rows])
    err = np.array([r["crf_rmse_learned"] for r in rows])
    # rank correlation: a useful confidence is high where the error is low (negative)
    conf_corr = float(np.corrcoef(np.argsort(np.argsort(conf)), np.argsort(np.argsort(err)))[0, 1]) \
        if len(rows) > 2 and conf.std() > 0 else float("nan")
    # calibration: mean error per quartile of the confidence (a calibrated confidence falls with error)
    edges = np.quantile(conf, [0, 0.25, 0.5, 0.75, 1.0])
    lines += ["", "| confidence quartile | confidence range | CRF RMSE learned (mean) | sRGB (mean) | samples |",
              "|---|---|---|---|---|"]
    srgb_err = np.array([r["crf_rmse_srgb"] for r in rows])
    for q in range(4):
        sel = (conf >= edges[q]) & ((conf <= edges[q + 1]) if q == 3 else (conf < edges[q + 1]))
        if sel.any():
            lines.append(f"| {q + 1} | {edges[q]:.3f}-{edges[q + 1]:.3f} | {err[sel].mean():.4f} | "
                         f"{srgb_err[sel].mean():.4f} | {int(sel.sum())} |")
    srgb_rows = [r for r in rows if r["family"] == "standard"]  # Blender's Standard view is the sRGB curve
    if srgb_rows:
        within = np.mean([r["crf_rmse_learned"] <= 0.01 for r in srgb_rows])
        lines += ["", f"plain-sRGB inputs (Blender Standard view): {100 * within:.0f} % within RMSE 0.01 "
                      f"({len(srgb_rows)} samples)"]
    lines += ["", f"{len(rows)} samples ({len(refs)} scenes x {len(curves)} curves x {len(clips)} clip fractions, "
              f"codecs {'all' if args.all_codecs else 'alternating'} {'/'.join(codecs)}); fallbacks: {fallbacks}; returned as sRGB exactly: {as_srgb}; mean confidence "
              f"{np.mean([r['confidence'] for r in rows]):.3f}; estimate time per image (<={args.max_width} px) "
              f"median {np.median(t_est) * 1000:.0f} ms; rank correlation confidence vs. error {conf_corr:.2f}"]
    table = "\n".join(lines)
    print(table)

    result = {"weights": str(args.weights), "summary": summary, "per_curve": per_curve,
              "crf_rmse_by_family": crf_by_family, "si_log2_rmse_well_exposed_by_family": si,
              "clip_level_shift_stops_by_family": shift, "clip_level_shift_abs_stops": shift_abs,
              "samples": len(rows), "fallbacks": fallbacks, "confidence_error_rank_corr": conf_corr, "scenes": [p.name for p in refs],
              "clip_fractions": list(clips), "codecs": list(codecs), "rows": rows, "table_markdown": table}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))

    if args.publish:
        dst = crf_net.WEIGHTS_FILE
        src_entry = load_manifest(args.weights.parent / "manifest.json").get("files", {}).get(args.weights.name, {})
        if args.weights.resolve() != dst.resolve():
            shutil.copyfile(args.weights, dst)
        entry = record_weights_file(
            dst,
            kind="CRF network (inverse camera response from one image)",
            data=src_entry.get("data", ""),
            command=src_entry.get("command", "python training/train_crf.py --minutes 45 --threads 1"),
            training=src_entry.get("training", {}),
            metrics={
                "protocol": "python training/eval_crf.py" + (" --quick" if args.quick else "")
                            + f": eval-split HDRs + bpy studio lights at <= {args.max_width} px; DoRF test curves "
                              "+ Blender views (agx, filmic, khronos-pbr-neutral, standard); clip 0.02/0.08; "
                              "PNG / JPEG q90",
                "samples": len(rows),
                "crf_rmse_mean": round(summary["learned"]["mean"], 5),
                "crf_rmse_median": round(summary["learned"]["median"], 5),
                "crf_rmse_worst": round(summary["learned"]["worst"], 5),
                "crf_rmse_mean_srgb": round(summary["srgb"]["mean"], 5),
                "crf_rmse_mean_gamma2.2": round(summary["gamma2.2"]["mean"], 5),
                "si_log2_rmse_well_exposed": {f: {m: round(si[f][m], 4) for m in METHODS} for f in families},
                "clip_level_shift_stops": {f: {m: round(shift[f][m], 4) for m in METHODS} for f in families},
                "clip_level_shift_abs_stops": {m: round(shift_abs[m], 4) for m in METHODS},
            },
        )
        print(f"published {dst} ({entry['size']} bytes, sha256 {entry['sha256'][:12]}...)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
