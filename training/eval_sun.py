"""Evaluate sun extraction (``ldr2hdr extract-sun``, :mod:`ldr2hdr.inference.lighting.sun`).

    python training/eval_sun.py --out runs/sun      # about 2 minutes on 2 cores

Three measurements on the real HDR panoramas of ../shared (nothing is trained here; the one
threshold, the least share of the light that makes a compact source a sun, is chosen on the
training split and scored on the evaluation split):

1. **Detection.** The share of the light on a surface facing the brightest compact source, on
   every labelled panorama; a "sun" panorama (SOURCES.md category) should give a sun, an
   overcast, studio, indoor-lamp or night one should not.
2. **Synthetic suns, known truth.** A uniform disc (0.75, 1.5 or 2.5 deg across, random direction
   5-75 deg above the horizon, 1-9x the rest of the light facing it, a warm colour) added to
   each evaluation panorama without a sun of its own (as extract_sun decides): direction error, angular diameter and
   power error of the extracted sun.
3. **Energy is kept.** For every extraction: irradiance of (map without the sun + the lamp as
   a disc) against the map's, at 64 normals (largest relative difference).
4. **On reconstructions** (``--reconstruct``): every evaluation panorama whose reference has a
   sun, made an 8-bit photo (sRGB curve, JPEG q90, 2 % and 8 % clipped) and reconstructed by the
   default pipeline; the sun extracted from the reconstruction (with the light sources the
   pipeline listed, as ``extract-sun`` reads them from the EXR header) against the reference's sun
   (direction, power in stops after the harness's global alignment), and the sphere renders of
   the harness (diffuse and glossy, relative RMSE against the reference) for the reconstruction
   and for (reconstruction without its sun + the lamp drawn back as a disc).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import split  # noqa: E402
from train_energy import categories  # noqa: E402

from ldr2hdr.evaluation.lighting import fibonacci_sphere, irradiance_map, is_equirect  # noqa: E402
from ldr2hdr.inference import io  # noqa: E402
from ldr2hdr.inference.imaging import equirect_directions, equirect_solid_angle  # noqa: E402
from ldr2hdr.inference.lighting import sun as sun_mod  # noqa: E402

SUN = ("sun",)
NOT_SUN = ("overcast", "studio", "indoor-lamps", "night")
NORMALS = fibonacci_sphere(64)
DIAMETERS = (0.75, 1.5, 2.5)  # degrees; 1k maps have 0.35 deg pixels, a sun is extracted up to 3 deg


def irradiance_kept(hdr: np.ndarray, ex: sun_mod.Extraction) -> float:
    """Largest relative difference of luminance irradiance, (without + lamp) vs the map, at 64 normals."""
    full = hdr.shape[:2]  # a sun is a few pixels: downsampling would move its light
    a = irradiance_map(hdr, NORMALS, size=full) @ sun_mod.LUMA
    b = irradiance_map(ex.without_sun, NORMALS, size=full) @ sun_mod.LUMA \
        + sun_mod.lamp_irradiance(ex.sun, NORMALS) @ sun_mod.LUMA
    return float(np.max(np.abs(b - a) / np.maximum(a, 1e-12)))


def add_disc(hdr: np.ndarray, direction: np.ndarray, diameter_deg: float, irradiance: float,
             color=(1.0, 0.85, 0.65)) -> np.ndarray:
    """``hdr`` plus a uniform disc (anti-aliased edge) whose luminance irradiance at normal
    incidence is ``irradiance``."""
    h, w = hdr.shape[:2]
    d, om = equirect_directions(h, w), equirect_solid_angle(h, w)
    cos_d = d @ direction
    theta = np.degrees(np.arccos(np.clip(cos_d, -1, 1)))
    cover = np.clip((diameter_deg / 2 - theta) / (180.0 / h) + 0.5, 0.0, 1.0)
    col = np.asarray(color) / (np.asarray(color) @ sun_mod.LUMA)
    radiance = irradiance / float((cover * om * np.maximum(cos_d, 0)).sum())
    return (hdr + (cover * radiance)[..., None] * col).astype(np.float32)


def is_sun_row(r: dict, t: float = sun_mod.MIN_SHARE) -> bool:
    """What :func:`extract_sun` decides for a map with this candidate at share threshold ``t``."""
    return r["share"] >= t and r["angle_deg"] is not None and r["angle_deg"] <= sun_mod.MAX_SUN_ANGLE_DEG \
        and r["elevation_deg"] >= sun_mod.MIN_ELEVATION_DEG


def reconstructions(rows: list[dict], max_width: int = 1024, use_sources: bool = True, part: str = "eval") -> list[dict]:
    """Part 4: suns extracted from the pipeline's reconstructions of the evaluation panoramas
    whose reference has a sun."""
    from ldr2hdr.evaluation import lighting, metrics, synth
    from ldr2hdr.evaluation.references import load_reference
    from ldr2hdr.inference import pipeline

    out = []
    names = {r["file"] for r in rows if r["split"] == part and is_sun_row(r)}
    for path in [p for p in (split.eval_files() if part == "eval" else split.train_files()) if p.name in names]:
        ref = np.asarray(load_reference(path, max_width).pixels, np.float64)
        ref_sun = sun_mod.extract_sun(ref.astype(np.float32)).sun
        if ref_sun is None:
            continue
        for clip in (0.02, 0.08):
            ldr, info = synth.synthesize(ref, "srgb", clip, "jpeg90")
            result = pipeline.run(ldr, pipeline.Settings(panorama="on"))
            s = metrics.align_scale(result.hdr, ref, ~info["clip_mask"])
            rec = (result.hdr * s).astype(np.float32)
            listed = [dict(d, energy=d["energy"] * s, clip_level_energy=d["clip_level_energy"] * s)
                      for d in result.sources]  # as the EXR header lists them, in the aligned units
            ex = sun_mod.extract_sun(rec, sources=listed if use_sources else None)
            row = {"file": path.name, "clip": clip, "found": ex.sun is not None}
            ref_render = lighting.render_spheres(ref)
            for label, m in (("map", rec),):
                got = lighting.render_spheres(m)
                for mat in ("diffuse", "glossy"):
                    row[f"{label}_{mat}_rmse"] = lighting.render_errors(got[mat], ref_render[mat])[0]
            if ex.sun is not None:
                lamp_back = add_disc(ex.without_sun, np.asarray(ex.sun.direction), ex.sun.angle_deg,
                                     float(np.dot(ex.sun.irradiance_rgb, sun_mod.LUMA)),
                                     color=np.asarray(ex.sun.color))
                got = lighting.render_spheres(lamp_back)
                for mat in ("diffuse", "glossy"):
                    row[f"lamp_{mat}_rmse"] = lighting.render_errors(got[mat], ref_render[mat])[0]
                row.update(direction_err_deg=math.degrees(math.acos(min(1.0, float(np.dot(ex.sun.direction, ref_sun.direction))))),
                           power_log2=math.log2(float(np.dot(ex.sun.irradiance_rgb, sun_mod.LUMA))
                                                / float(np.dot(ref_sun.irradiance_rgb, sun_mod.LUMA))),
                           angle_deg=ex.sun.angle_deg, ref_angle_deg=ref_sun.angle_deg)
            out.append(row)
            print(f"reconstruction {path.name} clip {clip}: {ex.reason}", flush=True)
    return out


def reconstruction_table(rec: list[dict]) -> list[str]:
    found = [r for r in rec if r["found"]]
    lines = ["", f"reconstructions of panoramas with a sun (sRGB, JPEG q90, 2 % and 8 % clipped): "
                 f"{len(found)} of {len(rec)} give a sun"]
    if not found:
        return lines
    med = lambda k: float(np.median([r[k] for r in found]))  # noqa: E731
    mean = lambda k: float(np.mean([r[k] for r in found]))  # noqa: E731
    lines += ["", "| | median | mean |", "|---|---|---|",
              f"| direction error vs the reference's sun (deg) | {med('direction_err_deg'):.2f} | {mean('direction_err_deg'):.2f} |",
              f"| sun power vs the reference's, log2 (stops) | {med('power_log2'):+.2f} | {mean('power_log2'):+.2f} |",
              f"| abs. sun power error (stops) | {float(np.median([abs(r['power_log2']) for r in found])):.2f} | "
              f"{float(np.mean([abs(r['power_log2']) for r in found])):.2f} |",
              f"| angular diameter (deg), reconstruction / reference | {med('angle_deg'):.2f} / {med('ref_angle_deg'):.2f} | "
              f"{mean('angle_deg'):.2f} / {mean('ref_angle_deg'):.2f} |"]
    for mat in ("diffuse", "glossy"):
        lines.append(f"| {mat} sphere rel. RMSE: map / map without sun + lamp | {med(f'map_{mat}_rmse'):.3f} / "
                     f"{med(f'lamp_{mat}_rmse'):.3f} | {mean(f'map_{mat}_rmse'):.3f} / {mean(f'lamp_{mat}_rmse'):.3f} |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/sun")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reconstruct", action="store_true", help="also part 4 (about 2 minutes more)")
    ap.add_argument("--reconstruct-split", choices=("eval", "train"), default="eval",
                    help="part 4 on this split (train: for design choices)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cats = categories()
    rng = np.random.default_rng(args.seed)

    rows = []
    for part, files in (("train", split.train_files()), ("eval", split.eval_files())):
        for path in files:
            hdr = io.read_image(path).pixels
            if not is_equirect(hdr.shape):
                continue
            cat = "studio-light" if split.is_studio_light(path) else cats.get(path.name, "unlabelled")
            ex = sun_mod.extract_sun(hdr, min_share=0.0, max_angle_deg=180.0)  # the candidate, measured; decided below
            c = ex.candidate
            row = {"file": path.name, "split": part, "category": cat, "share": c.share if c else 0.0,
                   "elevation_deg": c.elevation_deg if c else None, "angle_deg": c.angle_deg if c else None,
                   "reason": ex.reason}
            if ex.sun is not None and is_sun_row(row):
                row["irradiance_kept_max_rel"] = irradiance_kept(hdr, ex)
            rows.append(row)
            if part == "eval" and cat != "sun" and not is_sun_row(row):
                for diameter in DIAMETERS:
                    el, az = math.radians(rng.uniform(5, 75)), rng.uniform(-math.pi, math.pi)
                    direction = np.array([math.cos(el) * math.sin(az), math.sin(el), -math.cos(el) * math.cos(az)])
                    rest = float(irradiance_map(hdr, direction[None], size=(256, 512))[0] @ sun_mod.LUMA)
                    power = rest * rng.uniform(1, 9)
                    test = add_disc(hdr, direction, diameter, power)
                    ex2 = sun_mod.extract_sun(test)
                    srow = {"file": path.name, "diameter_deg": diameter, "power": power, "found": ex2.sun is not None}
                    if ex2.sun is not None:
                        s = ex2.sun
                        srow.update(direction_err_deg=math.degrees(math.acos(min(1.0, float(np.dot(s.direction, direction))))),
                                    diameter_rel_err=s.angle_deg / diameter - 1,
                                    power_rel_err=float(np.dot(s.irradiance_rgb, sun_mod.LUMA)) / power - 1,
                                    irradiance_kept_max_rel=irradiance_kept(test, ex2))
                    rows.append(dict(srow, split="synthetic", category="synthetic"))
            print(f"{part} {path.name} [{cat}] {ex.reason}", flush=True)

    real = [r for r in rows if r["split"] in ("train", "eval")]
    labelled = [r for r in real if r["category"] in SUN + NOT_SUN]

    is_sun = is_sun_row

    def rates(rs, t):
        pos = [r for r in rs if r["category"] in SUN]
        neg = [r for r in rs if r["category"] in NOT_SUN]
        tpr = np.mean([is_sun(r, t) for r in pos]) if pos else float("nan")
        fpr = np.mean([is_sun(r, t) for r in neg]) if neg else float("nan")
        return float(tpr), float(fpr), len(pos), len(neg)

    train_l = [r for r in labelled if r["split"] == "train"]
    grid = np.round(np.arange(0.05, 0.95, 0.05), 2)
    balanced = [(rates(train_l, t)[0] - rates(train_l, t)[1], -abs(t - sun_mod.MIN_SHARE), t) for t in grid]
    best_t = max(balanced)[2]
    lines = ["| split | threshold | suns found (true positive rate) | no-sun maps given a sun (false positive rate) | sun / no-sun maps |",
             "|---|---|---|---|---|"]
    for part in ("train", "eval"):
        for t in sorted({sun_mod.MIN_SHARE, best_t}):
            tpr, fpr, npos, nneg = rates([r for r in labelled if r["split"] == part], t)
            lines.append(f"| {part} | {t:.2f} | {tpr:.2f} | {fpr:.2f} | {npos} / {nneg} |")
    by_cat = {}
    for r in real:
        by_cat.setdefault(r["category"], []).append(r["share"])
    lines += ["", "| category | maps | median share | given a sun at the default threshold |", "|---|---|---|---|"]
    for cat, shares in sorted(by_cat.items()):
        given = np.mean([is_sun(r, sun_mod.MIN_SHARE) for r in real if r["category"] == cat])
        lines.append(f"| {cat} | {len(shares)} | {np.median(shares):.2f} | {given:.2f} |")
    syn = [r for r in rows if r["split"] == "synthetic"]
    found = [r for r in syn if r["found"]]
    lines += ["", "| synthetic suns (evaluation maps) | diameter | n | found | direction error deg (median / max) "
              "| diameter error (median abs / max abs) | power error (median abs / max abs) | irradiance kept (max rel) |",
              "|---|---|---|---|---|---|---|---|"]
    for diameter in DIAMETERS:
        rs = [r for r in syn if r["diameter_deg"] == diameter]
        fs = [r for r in rs if r["found"]]
        if not fs:
            continue
        de = np.array([r["direction_err_deg"] for r in fs])
        ae = np.abs([r["diameter_rel_err"] for r in fs])
        pe = np.abs([r["power_rel_err"] for r in fs])
        ik = np.array([r["irradiance_kept_max_rel"] for r in fs])
        lines.append(f"| | {diameter:g} deg | {len(rs)} | {len(fs)} | {np.median(de):.3f} / {de.max():.3f} | "
                     f"{np.median(ae):.1%} / {ae.max():.1%} | {np.median(pe):.1%} / {pe.max():.1%} | {ik.max():.2%} |")
    kept = [r["irradiance_kept_max_rel"] for r in real if "irradiance_kept_max_rel" in r]
    if kept:
        lines += ["", f"real maps given a sun: {len(kept)}; irradiance of (map without sun + lamp) vs map at 64 "
                      f"normals: largest relative difference {max(kept):.2%} (median {np.median(kept):.2%})"]
    lines.append(f"threshold with the best true-minus-false positive rate on training maps: {best_t:.2f}; "
                 f"shipped default: {sun_mod.MIN_SHARE}")
    if args.reconstruct:
        rec = reconstructions(rows, part=args.reconstruct_split)
        rows += [dict(r, split="reconstruction", category="reconstruction") for r in rec]
        lines += reconstruction_table(rec)
    table = "\n".join(lines)
    print(table)
    (out / "sun_eval.md").write_text(table + "\n")
    (out / "sun_eval.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
