"""How much of the default pipeline's lighting error is the energy estimate, and how much the curve?

    python training/eval_energy_ceiling.py --shard 0/2 --out runs/ceiling/eval_0.jsonl   # and 1/2
    python training/eval_energy_ceiling.py --summary runs/ceiling/eval_*.jsonl

The harness protocol (``ldr2hdr eval --curves srgb,agx,khronos-pbr-neutral,dorf-11 --codecs jpeg90``:
the same 8-bit photos, clipped 2 % and 8 %, the same global alignment and metrics), on the
panoramas only, with the pipeline's steps called one by one so that the energy given to each
clipped source can be swapped for an oracle's. Per photo, decoded with the pipeline's curve
(``learned``) and with sRGB (``srgb``), the variants are:

* ``clip``: nothing restored (the linearized photo);
* ``ship``: the default (highlight network, energy trees, cores) as it was when the table of
  docs/energy.md was made, before the cap on unclipped restored pixels (``energy.cap_unclipped``,
  which moved the harness's irradiance by 0.002) and before a sun's core moved to the top of its
  blob (``energy._sun_direction``, 0.0015); every variant here leaves those pixels as the network
  made them and puts every core at the blob's deepest point, so the variants stay comparable;
* ``o_tot``: the trees' share of energy between the sources, scaled so the photo's clipped region
  holds its true energy (the total is right, the split between sources is the trees');
* ``o_src``: every source at its true energy (network shape, cores as the default makes them);
* ``o_src_flat``: every source at its true energy, spread flat over its clipped pixels;
* ``o_shape``: every source at the default's energy, shaped inside the source like the reference
  (what a perfect shape would be worth with today's energies);
* ``perfect``: the clipped pixels replaced by the aligned reference (what the curve alone costs).

Nothing is trained or tuned here. ``--split train`` runs the training references instead, with
the DoRF *training* curves ``dorf-0`` and ``dorf-100`` in place of the evaluation's AgX, Khronos
and DoRF test curves (``srgb,filmic,dorf-0,dorf-100``), for choices that must not see the
evaluation split. Each photo is a JSON line; ``--summary`` prints the table of docs/energy.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import split  # noqa: E402

VARIANTS = ("clip", "ship", "o_tot", "o_src", "o_src_flat", "o_shape", "perfect")
DECODES = ("learned", "srgb")
EVAL_CURVES = "srgb,agx,khronos-pbr-neutral,dorf-11"
TRAIN_CURVES = "srgb,filmic,dorf-0,dorf-100"
CLIP_FRACTIONS = (0.02, 0.08)


def variants(ldr: np.ndarray, ref: np.ndarray, clip_mask: np.ndarray, decode: str, model) -> tuple[dict, dict]:
    """The variants' HDR images of one photo decoded as ``decode``, and a few per-photo numbers."""
    from ldr2hdr.evaluation import metrics
    from ldr2hdr.inference import pipeline
    from ldr2hdr.inference.crf.curves import srgb_inverse
    from ldr2hdr.inference.highlights import energy, sources as S

    settings = pipeline.Settings(panorama="on")
    inv = pipeline.estimate_crf(ldr, settings) if decode == "learned" else srgb_inverse()
    lin, mask = pipeline.linearize(ldr, inv, settings)
    scene = energy.find_clipped(lin, ldr, panorama=True)
    net = pipeline.restore_highlights(lin, ldr, mask, settings)
    src = scene.sources
    out = {"clip": lin.copy()}
    info: dict = {"sources": int(src.count), "srgb_distance": inv.details.get("srgb_distance"),
                  "trust": inv.details.get("trust"), "confidence": float(inv.confidence)}
    if src.count == 0:
        out["ship"] = net
        return out, info
    s = metrics.align_scale(lin, ref, ~clip_mask)
    boost, _ = model.predict(src.features)
    est = src.fill * np.exp2(boost)
    true_raw = S.source_energy(src, (ref @ S.LUMA) * scene.clipped) / s
    true = np.maximum(true_raw, src.fill)  # a clipped pixel is at least its clip level

    def rescaled(base: np.ndarray, target: np.ndarray, cores: bool = True) -> np.ndarray:
        core = np.log2(target / src.fill) >= energy.HOT_STOPS if cores else None
        return energy.rescale_sources(base.copy(), scene.linear, scene.clipped, src, target, core=core)

    out["ship"] = rescaled(net, est)
    out["o_tot"] = rescaled(net, est * true_raw.sum() / est.sum())
    out["o_src"] = rescaled(net, true)
    out["o_src_flat"] = rescaled(lin, true, cores=False)
    perfect = lin.copy()
    perfect[clip_mask] = ref[clip_mask] / s
    out["perfect"] = perfect
    shaped = lin.copy()  # the reference inside the detected clipped pixels, never below the fill
    inside = clip_mask & scene.clipped
    shaped[inside] = np.maximum(ref[inside] / s, lin[inside])
    out["o_shape"] = energy.rescale_sources(shaped, scene.linear, scene.clipped, src, est)
    info.update(estimate_over_true=float(np.log2(est.sum() / true_raw.sum())),
                fill_over_true=float(np.log2(src.fill.sum() / true_raw.sum())))
    return out, info


def score(img: np.ndarray, ref: np.ndarray, clip_mask: np.ndarray, cache: dict) -> dict:
    """The harness's lighting numbers for one prediction (its own :func:`evaluation.samples.score`,
    so alignment and metrics are the harness's); ``cache`` is shared by one reference's photos."""
    from ldr2hdr.evaluation.samples import score as harness_score

    row = harness_score(img, ref, clip_mask, panorama=True, cache=cache)
    return {"energy": row["clipped_energy_bias_stops"], "irradiance": row["irradiance_rel_error"],
            "diffuse": row["sphere_diffuse_rmse"], "glossy": row["sphere_glossy_rmse"]}


def run(paths: list[Path], curves: list[str], out_file: Path, decodes=DECODES) -> None:
    from ldr2hdr.evaluation import synth
    from ldr2hdr.evaluation.references import MAX_WIDTH, load_reference
    from ldr2hdr.evaluation.samples import _stable_int
    from ldr2hdr.inference.highlights import energy

    model = energy.load_model()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    done = set()  # resumable: photos already in the file are not made again
    if out_file.is_file():
        for line in out_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                done.add((r["reference"], r["curve"], r["clip"]))
    with open(out_file, "a", encoding="utf-8") as fh:
        for path in paths:
            ref = load_reference(path, MAX_WIDTH)
            if not ref.panorama:
                continue
            cache: dict = {}  # the reference's sphere renders and PU21 encoding
            for curve in curves:
                for clip in CLIP_FRACTIONS:
                    if (ref.label, curve, clip) in done:
                        continue
                    rng = np.random.default_rng(_stable_int(0, ref.label, curve, clip, "jpeg90"))
                    ldr, info = synth.synthesize(ref.pixels, curve, clip, "jpeg90", rng, dorf_path=synth.DEFAULT_DORF_PATH)
                    row = {"reference": ref.label, "curve": curve, "clip": clip}
                    for decode in decodes:
                        images, extra = variants(ldr, ref.pixels, info["clip_mask"], decode, model)
                        row[decode] = {"info": extra, **{v: score(img, ref.pixels, info["clip_mask"], cache)
                                                         for v, img in images.items()}}
                    fh.write(json.dumps(row) + "\n")
                    fh.flush()


def summary(files: list[str]) -> str:
    """Mean (median) of every variant and decode, then the irradiance per curve."""
    rows = [json.loads(line) for f in files for line in open(f, encoding="utf-8") if line.strip()]
    lines = [f"{len(rows)} photos", "",
             "| decode | variant | energy \\|err\\| (stops) | irradiance | diffuse sphere | glossy sphere |",
             "|---|---|---|---|---|---|"]
    decodes = [d for d in DECODES if all(d in r for r in rows)]
    for decode in decodes:
        for v in VARIANTS:
            if not any(v in r[decode] for r in rows):
                continue
            cells = []
            for key in ("energy", "irradiance", "diffuse", "glossy"):
                vals = np.array([abs(r[decode][v][key]) if key == "energy" else r[decode][v][key]
                                 for r in rows if v in r[decode]], float)
                cells.append(f"{np.nanmean(vals):.3f} ({np.nanmedian(vals):.3f})")
            lines.append(f"| {decode} | {v} | " + " | ".join(cells) + " |")
    lines += ["", "| curve | " + " | ".join(f"{d} {v}" for d in decodes for v in ("ship", "o_src", "perfect")) + " |",
              "|---|" + "---|" * (3 * len(decodes))]
    for curve in sorted({r["curve"] for r in rows}):
        sub = [r for r in rows if r["curve"] == curve]
        cells = [f"{np.nanmean([r[d][v]['irradiance'] for r in sub if v in r[d]]):.3f}"
                 for d in decodes for v in ("ship", "o_src", "perfect")]
        lines.append(f"| {curve} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=("eval", "train"), default="eval")
    ap.add_argument("--curves", default=None, help=f"default: {EVAL_CURVES} (eval), {TRAIN_CURVES} (train)")
    ap.add_argument("--shard", default="0/1", metavar="I/N")
    ap.add_argument("--out", default="runs/ceiling/eval.jsonl",
                    help="JSON lines, appended; photos already there are skipped (resumable)")
    ap.add_argument("--decodes", default=",".join(DECODES), help="curves to decode with (learned, srgb)")
    ap.add_argument("--summary", nargs="+", default=None, metavar="JSONL")
    args = ap.parse_args(argv)
    if args.summary:
        print(summary(args.summary))
        return 0
    from ldr2hdr.evaluation.references import default_reference_paths

    i, n = (int(v) for v in args.shard.split("/"))
    paths = default_reference_paths() if args.split == "eval" else split.train_files()
    curves = (args.curves or (EVAL_CURVES if args.split == "eval" else TRAIN_CURVES)).split(",")
    run(list(paths)[i::n], curves, Path(args.out), tuple(args.decodes.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
