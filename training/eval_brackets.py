"""Real-camera check: the default pipeline on real JPEG brackets against their own merge.

    python training/eval_brackets.py                       # every bracket in ../shared/data/brackets/
    python training/eval_brackets.py --bracket DIR [--out runs/brackets.json]

A bracket is a folder of JPEG exposures of one scene from one camera on a tripod (exposure times
from EXIF) and the camera's response as recovered from them (``*crfs.npy``: 256 codes x 3
channels, code -> relative irradiance, Debevec and Malik 1997). Nothing here is fitted; one
camera is a sanity check on real pixels, not a score to tune to.

The reference is the bracket merged through that response: per pixel the hat-weighted mean of
``response(code) / exposure time`` over the exposures where the pixel is neither clipped (any
channel at code 250 or more) nor black (every channel at 4 or less); pixels clipped in every
exposure are left out of every measure below (their radiance is unknown).

For each exposure, as one photo given to ldr2hdr alone:

* curve: inverse-CRF RMSE (gray axis, 1024 samples, as ``eval_crf.py``) of the default estimate
  (the photo read with its EXIF, as ``ldr2hdr`` reads it: a photo that names its camera gets the
  network's curve), the network's curve blended with sRGB by its trust (what the same pixels get
  without EXIF, ``--crf-trust srgb-blend``) and plain sRGB, against the recovered response;
* linearity: log2 RMSE of luminance between the linearized photo and the merge after the harness's
  alignment (``metrics.si_log2_rmse``, as ``eval_crf.py``) over the photo's well-exposed pixels (no
  channel clipped, largest channel 0.05-0.95), and the clip level's shift against them
  (``eval_crf.clip_level_shift``), for the same three curves;
* highlights: over the pixels clipped in the photo whose radiance the merge knows, log2 of the
  restored over the true luminance sum after ``metrics.align_scale`` on the well-exposed pixels (the
  default pipeline with and without EXIF, and the sRGB decode left at the clip level).

And for each pair of exposures, the ``--scale exif`` units (absolute luminance from the exposure
time, f-number and ISO): the median log2 ratio of the two linearized photos' luminance over the
pixels well exposed in both (0 when the units are consistent; the curve estimate's error included).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_crf  # noqa: E402
import split  # noqa: E402

from ldr2hdr.evaluation import metrics  # noqa: E402
from ldr2hdr.inference import crf, io, pipeline  # noqa: E402
from ldr2hdr.inference.imaging import unit_float  # noqa: E402

logger = logging.getLogger("eval_brackets")
BRACKETS = Path(split.HDR_ROOT).parent / "brackets"
CLIP_CODE, BLACK_CODE = 250, 4


def response_1024(path: Path) -> np.ndarray:
    """The recovered response ``(3, 1024)``: pixel value i/1023 -> irradiance, 1 at white, >= 0."""
    r = np.load(path).astype(np.float64)
    if r.ndim != 2 or r.shape[1] != 3:
        raise SystemExit(f"{path}: expected a (codes, 3) response, got {r.shape}")
    r = np.maximum(r, 0.0) / r[-1]
    x = np.linspace(0.0, 1.0, crf.N_SAMPLES)
    return np.stack([np.interp(x, np.linspace(0.0, 1.0, len(r)), r[:, c]) for c in range(3)])


def merge(codes: list[np.ndarray], times: list[float], response: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hat-weighted merge ``(H, W, 3)`` in irradiance x seconds^-1 and the mask of known pixels."""
    inverse = crf.InverseCRF(response.astype(np.float32), "recovered response")
    num = np.zeros(codes[0].shape, np.float64)
    den = np.zeros(codes[0].shape[:2], np.float64)
    for c8, t in zip(codes, times):
        ok = (c8.max(axis=2) < CLIP_CODE) & (c8.max(axis=2) > BLACK_CODE)
        z = c8.astype(np.float64)
        w = np.minimum(z, 255.0 - z).mean(axis=2) * ok
        num += w[..., None] * crf.linearize(unit_float(c8), inverse) / t
        den += w
    known = den > 0
    return (num / np.maximum(den, 1e-12)[..., None]).astype(np.float32), known


def aligned_ratio(img: np.ndarray, ref: np.ndarray, well: np.ndarray, region: np.ndarray) -> float:
    """log2 (img / ref) summed over ``region`` after the harness's alignment on ``well``."""
    scale = metrics.align_scale(img, ref, well)
    return float(np.log2(scale * metrics.luminance(img)[region].sum() / metrics.luminance(ref)[region].sum()))


def evaluate_bracket(folder: Path) -> list[dict]:
    files = sorted(folder.glob("*.jpg")) + sorted(folder.glob("*.JPG"))
    responses = sorted(folder.glob("*crfs.npy"))
    if len(files) < 2 or not responses:
        raise SystemExit(f"{folder}: needs two or more JPEG exposures and a *crfs.npy response")
    response = response_1024(responses[0])
    photos = [io.read_image(f, codes=True) for f in files]
    times = [p.exif.exposure_time for p in photos]
    if any(t is None for t in times):
        raise SystemExit(f"{folder}: every JPEG needs its exposure time in EXIF")
    codes = [np.asarray(p.pixels) for p in photos]
    ref, known = merge(codes, times, response)
    srgb = crf.srgb_inverse()
    rows = []
    absolute, good = [], []  # per photo: luminance in --scale exif units, pixels well exposed
    blend = pipeline.Settings(crf_trust="srgb-blend")
    for f, c8, t, photo in zip(files, codes, times, photos):
        ldr = pipeline.check_ldr(unit_float(c8))
        clipped = c8.max(axis=2) >= 255
        well = eval_crf.well_exposed(ldr, clipped) & known
        region = clipped & known
        curves = {"default": pipeline.estimate_crf(ldr, exif=photo.exif), "blend": pipeline.estimate_crf(ldr, blend),
                  "srgb": srgb}
        row = {"bracket": folder.name, "photo": f.name, "camera": photo.exif.camera, "exposure_s": t,
               "clipped": float(clipped.mean()),
               "clipped_known": float(region.mean()), "well_exposed": float(well.mean())}
        for name, inv in curves.items():
            lin = crf.linearize(ldr, inv)
            row[f"crf_rmse_{name}"] = metrics.crf_rmse(inv.curves, response)
            row[f"si_log2_{name}"] = metrics.si_log2_rmse(lin, ref, well, align_mask=well)  # as eval_crf.py
            # the merge exposed as this photo: the response maps white to 1, so the sensor clips at 1
            row[f"clip_shift_{name}"] = eval_crf.clip_level_shift(lin, ref * np.float32(t), well)
        if region.sum() >= 20:
            for name in ("default", "blend"):  # the curves estimated above, not estimated again
                hdr = pipeline.run(ldr, pipeline.Settings(crf=curves[name])).hdr
                row[f"clipped_energy_log2_{name}"] = aligned_ratio(hdr, ref, well, region)
            row["clipped_energy_log2_srgb_clip"] = aligned_ratio(crf.linearize(ldr, srgb), ref, well, region)
        absolute.append(metrics.luminance(pipeline.run(ldr, pipeline.Settings(crf=curves["default"], scale="exif"),
                                                        steps="linearize", exif=photo.exif).linear))
        good.append((c8.max(axis=2) < CLIP_CODE) & (c8.min(axis=2) > 15))
        rows.append(row)
        logger.info("%s", {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            both = good[i] & good[j] & (absolute[i] > 0) & (absolute[j] > 0)
            if both.sum() >= 100:
                rows[j].setdefault("exif_units_log2_vs", {})[rows[i]["photo"]] = float(
                    np.median(np.log2(absolute[j][both] / absolute[i][both])))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bracket", type=Path, action="append", help="a bracket folder (default: every one shared)")
    ap.add_argument("--out", type=Path, default=Path("runs/brackets.json"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folders = args.bracket or sorted(p for p in BRACKETS.iterdir() if p.is_dir())
    rows = [r for folder in folders for r in evaluate_bracket(folder)]
    print("| photo | exposure | clipped | curve RMSE default / sRGB blend / sRGB | linearity (stops) default / sRGB "
          "blend / sRGB | clip-level shift default / sRGB blend / sRGB | clipped energy (log2) default / sRGB blend / "
          "sRGB clip |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        e = (" / ".join(f"{r[f'clipped_energy_log2_{n}']:+.2f}" for n in ("default", "blend", "srgb_clip"))
             if "clipped_energy_log2_default" in r else "-")
        print(f"| {r['bracket']}/{r['photo']} | {r['exposure_s']:g} s | {100 * r['clipped']:.1f} % | "
              + " / ".join(f"{r[f'crf_rmse_{n}']:.4f}" for n in ("default", "blend", "srgb")) + " | "
              + " / ".join(f"{r[f'si_log2_{n}']:.3f}" for n in ("default", "blend", "srgb")) + " | "
              + " / ".join(f"{r[f'clip_shift_{n}']:+.2f}" for n in ("default", "blend", "srgb")) + f" | {e} |")
    for r in rows:
        for other, v in r.get("exif_units_log2_vs", {}).items():
            print(f"--scale exif, {r['bracket']}/{r['photo']} against {other}: {v:+.3f} stops")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
