"""Train the per-source energy estimator (Restore Highlights, second design).

    python training/train_energy.py                 # build or reuse the examples, fit, score, install

One command, seeded, resumable (the examples are cached in ``runs/energy/``; building them
takes about 25 minutes for the training split and 10 for the evaluation split on 2 cores,
fitting about 3 minutes). Steps:

1. Examples (``energy_data.py``): every training reference x 16 simulated photos, every
   evaluation reference x 10 (2 %, 8 %, then random clip fractions).
2. Group 5-fold cross-validation over whole scenes on the training split: the estimator
   against the baselines a model must beat: leave the clip level (``clip``), the ratio rule
   ``budget-const`` (fill every clipped pixel so that the clipped region holds ``2**c`` times
   the unclipped energy, ``c`` the median over the training folds) and one constant boost
   per source.
3. The shipped model, fitted on the whole training split, scored once on the held-out
   evaluation split (never used to choose anything).
4. ``weights/energy_trees.safetensors`` and its manifest entry (sha256, data, command, metrics).

The model (see ``inference/highlights/energy.py``): scikit-learn gradient-boosted trees
(absolute-error loss; rows weighted by the geometric mean of their shares of the photo's clip-level
and true clipped energy; every estimate aimed ``--boost-shift`` = 0.3 stops low) for two
targets, ``log2(E / fill)`` and ``log2(E / E_unclipped)``, averaged; and two quantile models
(16 %, 84 %) of the first for the uncertainty. scikit-learn is needed for training only.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import energy_data  # noqa: E402
import split  # noqa: E402

from ldr2hdr.inference import weights as weights_mod  # noqa: E402
from ldr2hdr.inference.highlights import energy, sources, trees  # noqa: E402

logger = logging.getLogger("train_energy")
PARAMS = dict(max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=40, l2_regularization=1.0)
CATEGORY_NOTES = Path(split.HDR_ROOT).parent / "SOURCES.md"


def load_or_build(path: Path, paths: list[Path], per_reference: int, seed: int, harness: bool,
                  through_pipeline: bool = False, shard: tuple[int, int] = (0, 1), weights_dir: str = "",
                  bank_curves: bool = False) -> dict:
    if path.is_file():
        logger.info("reusing %s", path)
        return np.load(path, allow_pickle=True).item()  # our own cache file, written below
    data = energy_data.build(paths, per_reference=per_reference, seed=seed, harness_fractions=harness,
                             through_pipeline=through_pipeline, shard=shard, weights_dir=weights_dir,
                             bank_curves=bank_curves)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, data, allow_pickle=True)
    tmp.replace(path)
    return data


def keep_photos(data: dict, keep) -> dict:
    """``data`` with only the photos whose entry of ``keep`` (one bool per photo) is true, photo
    indices renumbered."""
    kept = [i for i, k in enumerate(keep) if k]
    if len(kept) == len(data["images"]):
        return data
    new = {old: k for k, old in enumerate(kept)}
    return dict(data, rows=[dict(r, img=new[r["img"]]) for r in data["rows"] if r["img"] in new],
                images=[data["images"][i] for i in kept])


def finite_photos(data: dict) -> dict:
    """``data`` without the photos that have a non-finite source energy (a render with an
    infinite pixel), photo indices renumbered."""
    bad = {r["img"] for r in data["rows"] if not (np.isfinite(r["E"]) and np.isfinite(r["fill"])
                                                    and np.all(np.isfinite(r["feats"])))}
    if bad:
        logger.warning("dropping %d photos with non-finite energies or features", len(bad))
    return keep_photos(data, [i not in bad for i in range(len(data["images"]))])


def render_kind(render_dir: Path, photo: dict) -> str:
    """``outdoor`` or ``indoor``: the kind ``render_scenes.py`` wrote beside the rendered panorama."""
    meta = json.loads((render_dir / (Path(photo["name"]).stem + ".json")).read_text())
    return str(meta["kind"])


def merge(*datasets: dict) -> dict:
    """Concatenate example sets (photo indices renumbered)."""
    rows, images = [], []
    for data in datasets:
        offset = len(images)
        rows += [dict(r, img=r["img"] + offset) for r in data["rows"]]
        images += data["images"]
    return dict(rows=rows, images=images, feature_names=datasets[0]["feature_names"])


def pipeline_examples(args, shards: range) -> list[dict]:
    """The examples made through the pipeline's own linearization, one cache file per shard."""
    n = args.pipeline_shards
    # the photos go through the camera curve the pipeline takes (--weights-dir's where it has one):
    # one cache per curve network and trust file
    from ldr2hdr.inference import pipeline

    settings = pipeline.Settings(weights_dir=args.weights_dir)
    tag = "_".join(weights_mod.sha256_of(pipeline.weights_file(settings, f) or weights_mod.WEIGHTS_DIR / f)[:8]
                   for f in ("crf_net.safetensors", "crf_shrink.safetensors"))
    mix = "_bank" if args.bank_curves else ""
    return [load_or_build(Path(args.cache) / f"train_pipeline_seed{args.seed}_per{args.pipeline_per_reference}_"
                          f"crf{tag}{mix}_shard{i}of{n}.npy", split.train_files(), args.pipeline_per_reference,
                          args.seed + 2, False, through_pipeline=True, shard=(i, n), weights_dir=args.weights_dir,
                          bank_curves=args.bank_curves) for i in shards]


def arrays(data: dict) -> dict:
    rows, ims = data["rows"], data["images"]
    d = dict(X=np.array([r["feats"] for r in rows]), fill=np.array([r["fill"] for r in rows]),
             E=np.array([r["E"] for r in rows]), img=np.array([r["img"] for r in rows]),
             names=np.array([r["name"] for r in rows]), images=ims, omega=np.array([r["omega"] for r in rows]))
    d["y"] = np.log2(np.maximum(d["E"], 1e-12) / d["fill"])
    d["offset"] = -d["X"][:, sources.FEATURE_NAMES.index("log2_fill_over_unclipped")]
    d["share"] = d["fill"] / np.array([im["fill_total"] for im in ims])[d["img"]]
    d["share_true"] = d["E"] / np.array([im["e_clip_true"] for im in ims])[d["img"]]
    return d


def subset(d: dict, rows: np.ndarray) -> dict:
    """The rows ``rows`` (whole photos) of an :func:`arrays` dict, photos renumbered."""
    keep, img = np.unique(d["img"][rows], return_inverse=True)
    out = {k: v[rows] for k, v in d.items() if isinstance(v, np.ndarray)}
    out.update(img=img.reshape(-1), images=[d["images"][i] for i in keep])
    return out


def score(d: dict, boost: np.ndarray) -> dict:
    """Per photo: clipped-energy error (stops) and irradiance error (64 normals, panoramas)."""
    ims, img = d["images"], d["img"]
    gain = np.exp2(boost)
    pred = np.bincount(img, d["fill"] * gain, len(ims))
    err, irr = [], []
    for i, im in enumerate(ims):
        err.append(np.log2(max(pred[i], 1e-30) / im["e_clip_true"]))
        if im["pano"]:
            p = im["irr_open"] + np.tensordot(gain[img == i], im["fill_irr"], 1)
            t = im["irr_true"]
            irr.append(float(np.mean(np.linalg.norm(p - t, axis=1) / np.linalg.norm(t, axis=1))))
    err = np.array(err)
    return dict(energy_abs=float(np.mean(np.abs(err))), energy_bias=float(np.mean(err)),
                energy_median=float(np.median(np.abs(err))), irradiance=float(np.mean(irr)),
                irradiance_median=float(np.median(irr)), photos=len(ims)), err


def budget_const(d: dict, c: float) -> np.ndarray:
    alpha = np.array([2.0 ** c * im["e_open"] / im["fill_total"] for im in d["images"]])
    return np.log2(alpha[d["img"]])


def source_weights(d: dict, how: str) -> np.ndarray:
    """Per-source fit weights: its share of the photo's clip-level energy (``fill``), of its true
    clipped energy (``true``: the share that source's error has in the photo's energy error), or
    the geometric mean of the two (``geo``); a number ``a`` gives ``fill**(1-a) * true**a``."""
    alpha = {"fill": 0.0, "geo": 0.5, "true": 1.0}.get(how)
    alpha = float(how) if alpha is None else alpha
    return d["share"] ** (1.0 - alpha) * d["share_true"] ** alpha


#: Features the estimate may be made to rise with (``--monotone``): how much a source's blob would
#: grow at 1, 2 and 3 stops more exposure (a hotter core makes a wider region near the clip level).
#: Better in CV, mixed in the harness: not in the shipped trees (docs/energy.md).
MONOTONE_INCREASING = tuple(f"log2_growth{t}" for t in sources.GROWTH_LEVELS)


def monotone_constraints(names: tuple[str, ...] = MONOTONE_INCREASING) -> list[int]:
    unknown = set(names) - set(sources.FEATURE_NAMES)
    if unknown:
        raise ValueError(f"unknown features {sorted(unknown)}")
    return [1 if f in names else 0 for f in sources.FEATURE_NAMES]


def fit_parts(d: dict, idx: np.ndarray, seed: int, quantiles: bool = True, shift: float = 0.0,
              monotone: tuple[str, ...] = (), min_samples_leaf: int = PARAMS["min_samples_leaf"]) -> dict:
    from sklearn.ensemble import HistGradientBoostingRegressor

    X, w = d["X"][idx], d["weight"][idx]
    params = dict(PARAMS, monotonic_cst=monotone_constraints(monotone), min_samples_leaf=min_samples_leaf)
    parts = {}
    y = d["y"] - shift  # absolute-error and quantile boosting are shift-equivariant: every estimate moves by -shift
    specs = [("mean_fill", y, dict(loss="absolute_error")), ("mean_open", y - d["offset"], dict(loss="absolute_error"))]
    if quantiles:
        specs += [("q16", y, dict(loss="quantile", quantile=0.16)), ("q84", y, dict(loss="quantile", quantile=0.84))]
    for name, target, extra in specs:
        m = HistGradientBoostingRegressor(**params, **extra, random_state=seed).fit(X, target[idx], sample_weight=w)
        parts[name] = trees.export_sklearn(m)
    if not quantiles:
        parts["q16"] = parts["q84"] = parts["mean_fill"]
    return parts


def learning_curve(train: dict, real: np.ndarray, counts: list[int], repeats: int, seed: int, shift: float,
                   min_samples_leaf: int) -> dict[int, dict]:
    """Group 5-fold CV over scenes with the trees fitted on ``K`` randomly chosen training scenes of each
    fold only (``repeats`` draws per fold and ``K``): how the error falls with the number of scenes.
    Only the real scenes in ``real`` count (rendered panoramas are left out of these fits). Returns per
    ``K`` the photo-weighted mean energy |err| and irradiance over every fold and draw."""
    from sklearn.model_selection import GroupKFold

    rng = np.random.default_rng(seed)
    names = train["names"]
    out: dict[int, list] = {k: [] for k in counts}
    for tr, te in GroupKFold(5).split(real, groups=names[real]):
        tr, te = real[tr], real[te]
        scenes = np.unique(names[tr])
        for _ in range(repeats):
            for k in counts:
                pick = rng.choice(scenes, size=min(k, len(scenes)), replace=False)
                parts = fit_parts(train, tr[np.isin(names[tr], pick)], seed, quantiles=False, shift=shift,
                                  min_samples_leaf=min_samples_leaf)
                boost, _ = energy.EnergyModel(parts, sources.FEATURE_NAMES).predict(train["X"][te])
                cv, _ = score(subset(train, te), boost)
                out[k].append((cv["energy_abs"], cv["irradiance"], cv["photos"]))
    table = {}
    for k, rows in out.items():
        a = np.array(rows)
        table[k] = {"energy_abs": round(float(np.average(a[:, 0], weights=a[:, 2])), 3),
                    "irradiance": round(float(np.average(a[:, 1], weights=a[:, 2])), 3), "fits": len(rows)}
    return table


def categories() -> dict[str, str]:
    import re

    out = {}
    if CATEGORY_NOTES.is_file():
        for line in CATEGORY_NOTES.read_text().splitlines():
            m = re.search(r"`hdr/[a-z_]+/([^`]*)`.*\| ([^|]*) \|$", line)
            if m:
                out[m.group(1)] = (m.group(2).split(";")[-1].strip() or "equirect (first 32)") if "equirect" in m.group(2) else "photo"
    return out


def by_category(d: dict, err: np.ndarray) -> dict:
    cats = categories()
    out: dict[str, list] = {}
    for im, e in zip(d["images"], err):
        out.setdefault(cats.get(im["name"], "other"), []).append(abs(e))
    return {k: round(float(np.mean(v)), 3) for k, v in sorted(out.items())}


def by_class(d: dict, boosts: dict[str, np.ndarray], classify_with: np.ndarray, min_share: float = 0.01) -> dict:
    """Mean per-source |log2(estimated / true energy)| by the class the shipped rule gives each
    source (``energy.classify`` on the estimator's boost), over sources holding at least
    ``min_share`` of their photo's clipped energy; ``boosts``: method name -> per-source boost."""
    from types import SimpleNamespace

    from ldr2hdr.evaluation.references import image_size

    cls = np.empty(len(d["y"]), dtype=object)
    sizes: dict[str, tuple[int, int]] = {}
    paths = {p.name: p for p in split.hdr_files()}
    for i, im in enumerate(d["images"]):
        sel = np.nonzero(d["img"] == i)[0]
        if im["pano"]:
            shape = (sources.WORK_WIDTH // 2, sources.WORK_WIDTH)
        else:
            if im["name"] not in sizes:
                w, h = image_size(paths[im["name"]])
                sizes[im["name"]] = sources.work_shape(h, w, False)
            shape = sizes[im["name"]]
        view = SimpleNamespace(features=d["X"][sel], fill=d["fill"][sel], solid_angle=d["omega"][sel],
                               panorama=bool(im["pano"]), shape=shape, count=len(sel))
        cls[sel] = energy.classify(view, classify_with[sel])
    share = d["E"] / np.array([im["e_clip_true"] for im in d["images"]])[d["img"]]
    keep = share >= min_share
    out = {}
    for c in energy.CLASSES:
        m = keep & (cls == c)
        if m.any():
            out[c] = {"sources": int(m.sum()), **{name: round(float(np.mean(np.abs(b[m] - d["y"][m]))), 3)
                                                   for name, b in boosts.items()}}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-reference", type=int, default=16)
    ap.add_argument("--eval-per-reference", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default="runs/energy")
    ap.add_argument("--out", default=str(weights_mod.WEIGHTS_DIR / energy.WEIGHTS_NAME))
    ap.add_argument("--no-install", action="store_true", help="score only; write no weights")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pipeline-per-reference", type=int, default=8,
                    help="also this many photos per training reference through a training camera curve, PNG or "
                         "JPEG, and the pipeline's own curve estimate and dequantization (0: none)")
    ap.add_argument("--pipeline-shards", type=int, default=2,
                    help="the pipeline examples are built and cached in this many parts")
    ap.add_argument("--renders", default=None, metavar="DIR",
                    help="also train on the rendered panoramas in DIR (training/render_scenes.py: Blender's physical "
                         "sky with its sun, rooms lit by lamps); they join every training fold and are never scored")
    ap.add_argument("--render-kinds", default="outdoor,indoor",
                    help="which rendered panoramas: outdoor (physical sky and sun), indoor (rooms lit by lamps), or both")
    ap.add_argument("--per-render", type=int, default=6, help="simulated photos per rendered panorama")
    ap.add_argument("--render-weight", type=float, default=1.0,
                    help="weight of a rendered photo's sources against a real photo's in the fit")
    ap.add_argument("--weight", default="geo",
                    help="weight of a source in the fit: its share of the photo's clip-level energy (fill), of its "
                         "true clipped energy (true), their geometric mean (geo, the shipped trees), or a number a: "
                         "fill**(1-a) * true**a")
    ap.add_argument("--boost-shift", type=float, default=0.3, metavar="STOPS",
                    help="fit every estimate this many stops lower (the irradiance error punishes too much light "
                         "more than too little; chosen on the CV folds, see docs/energy.md)")
    ap.add_argument("--min-samples-leaf", type=int, default=PARAMS["min_samples_leaf"], metavar="N",
                    help="fewest sources in a leaf of the trees (larger: less fitted to single scenes)")
    ap.add_argument("--monotone", default="", metavar="F1,F2",
                    help="features the estimate may only rise with, e.g. " + ",".join(MONOTONE_INCREASING)
                         + " (measured, not shipped: docs/energy.md); default none")
    ap.add_argument("--bank-curves", action="store_true",
                    help="the pipeline photos also use CurveBank's film-like and camera curves (30 %%; measured, "
                         "not shipped)")
    ap.add_argument("--save-oof", default=None, metavar="FILE.npy",
                    help="also fit the quantile models in the CV folds and save the out-of-fold estimates here")
    ap.add_argument("--weights-dir", default="", metavar="DIR",
                    help="the pipeline photos use the curve weights in DIR where it has them (a candidate curve)")
    ap.add_argument("--build-shard", type=int, default=None, metavar="I",
                    help="only build (and cache) part I of the pipeline examples, then exit: run one process per "
                         "part to use every core")
    ap.add_argument("--scene-counts", default="", metavar="K1,K2",
                    help="only measure the learning curve: CV with the trees fitted on K random training scenes per "
                         "fold (each K, --repeats draws), print the table, write nothing")
    ap.add_argument("--repeats", type=int, default=2, help="draws of the scenes per fold and K (--scene-counts)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import os

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from sklearn.model_selection import GroupKFold

    monotone = tuple(f for f in args.monotone.split(",") if f)
    monotone_constraints(monotone)  # unknown names fail before any work
    cache = Path(args.cache)
    if args.build_shard is not None:
        pipeline_examples(args, range(args.build_shard, args.build_shard + 1))
        return 0
    clean = load_or_build(cache / f"train_seed{args.seed}_per{args.per_reference}.npy", split.train_files(),
                          args.per_reference, args.seed, False)
    extra = pipeline_examples(args, range(args.pipeline_shards)) if args.pipeline_per_reference else []
    renders = []
    if args.renders:
        files = sorted(Path(args.renders).glob("render_*.exr"))
        if not files:
            logger.error("no render_*.exr in %s", args.renders)
            return 2
        kinds = set(args.render_kinds.split(","))
        if kinds - {"outdoor", "indoor"}:
            logger.error("--render-kinds takes outdoor and/or indoor, not %s", args.render_kinds)
            return 2
        made = finite_photos(load_or_build(
            cache / f"renders_{Path(args.renders).name}_{len(files)}_seed{args.seed}_per{args.per_render}.npy",
            files, args.per_render, args.seed + 3, False))
        renders = [keep_photos(made, [render_kind(Path(args.renders), im) in kinds for im in made["images"]])]
    train = arrays(merge(clean, *extra, *renders))
    rendered = np.char.startswith(train["names"].astype(str), "render_")
    train["weight"] = np.where(rendered, args.render_weight, 1.0) * source_weights(train, args.weight)
    real = np.nonzero(~rendered)[0]
    if args.scene_counts:
        counts = [int(k) for k in args.scene_counts.split(",")]
        for k, row in learning_curve(train, real, counts, args.repeats, args.seed, args.boost_shift,
                                     args.min_samples_leaf).items():
            logger.info("learning curve: %3d training scenes per fold: %s", k, row)
        return 0
    held = arrays(load_or_build(cache / f"eval_seed{args.seed + 1}_per{args.eval_per_reference}.npy",
                                split.eval_files(include_studio_lights=False), args.eval_per_reference, args.seed + 1, True))
    logger.info("training: %d photos, %d sources; evaluation: %d photos, %d sources",
                len(train["images"]), len(train["y"]), len(held["images"]), len(held["y"]))
    t0 = time.time()
    oof, oof_half, oof_budget, oof_const = (np.zeros(len(train["y"])) for _ in range(4))
    oof_parts = np.zeros((len(train["y"]), 2))
    for tr, te in GroupKFold(5).split(real, groups=train["names"][real]):
        tr, te = np.concatenate([real[tr], np.nonzero(rendered)[0]]), real[te]  # renders: fit, never scored
        parts = fit_parts(train, tr, args.seed, quantiles=bool(args.save_oof), shift=args.boost_shift,
                          min_samples_leaf=args.min_samples_leaf,
                          monotone=monotone)
        model = energy.EnergyModel(parts, sources.FEATURE_NAMES)
        oof[te], oof_half[te] = model.predict(train["X"][te])
        if args.save_oof:  # the two targets' own estimates, to weigh them offline
            oof_parts[te, 0] = trees.predict(parts["mean_fill"], train["X"][te])
            oof_parts[te, 1] = trees.predict(parts["mean_open"], train["X"][te]) + train["offset"][te]
        trr = np.intersect1d(tr, real)
        tr_imgs = np.unique(train["img"][trr])
        c = float(np.median([np.log2(train["images"][i]["e_clip_true"] / train["images"][i]["e_open"]) for i in tr_imgs]))
        oof_budget[te] = budget_const(train, c)[te]
        oof_const[te] = float(np.average(train["y"][trr], weights=train["share"][trr]))
    if args.save_oof:  # out-of-fold estimates of the real training photos, for offline rules on top of them
        np.save(args.save_oof, {"boost": oof[real], "half": oof_half[real], "parts": oof_parts[real],
                                "data": subset(train, real)}, allow_pickle=True)
    cv = {}
    scored = subset(train, real)
    for name, b in (("estimator", oof), ("budget-const", oof_budget), ("constant-boost", oof_const),
                    ("clip", np.zeros(len(oof)))):
        cv[name], err = score(scored, b[real])
        cv[name]["by_category"] = by_category(scored, err)
        logger.info("CV %-15s %s", name, {k: v for k, v in cv[name].items() if k != "by_category"})
    # budget-const's constant: median over the clean sRGB photos (evaluation/methods.BUDGET_CONST_LOG2)
    c_all = float(np.median([np.log2(im["e_clip_true"] / im["e_open"]) for im in clean["images"]]))
    parts = fit_parts(train, np.arange(len(train["y"])), args.seed, shift=args.boost_shift, monotone=monotone,
                      min_samples_leaf=args.min_samples_leaf)
    model = energy.model_from_arrays(energy.arrays_from_model(parts))
    boost, half = model.predict(held["X"])
    heldout = {}
    for name, b in (("estimator", boost), ("budget-const", budget_const(held, c_all)), ("clip", np.zeros(len(boost)))):
        heldout[name], err = score(held, b)
        heldout[name]["by_category"] = by_category(held, err)
        logger.info("held-out %-12s %s", name, {k: v for k, v in heldout[name].items() if k != "by_category"})
    classes = by_class(held, {"estimator": boost, "budget-const": budget_const(held, c_all),
                              "clip": np.zeros(len(boost))}, boost)
    logger.info("held-out per source class: %s", classes)
    inside = np.abs(held["y"] - boost) <= half
    logger.info("held-out: %.0f %% of sources inside their 68 %% interval; budget-const c = %.3f (%.0f s)",
                100 * inside.mean(), c_all, time.time() - t0)
    if args.no_install:
        return 0
    from safetensors.numpy import save_file

    out = Path(args.out)
    save_file(energy.arrays_from_model(parts), str(out))
    weights_mod.record_weights_file(
        out, kind="energy estimator (per clipped source: log2 true / clip-level energy), gradient-boosted trees as arrays",
        command="python training/train_energy.py" + (f" --seed {args.seed}" if args.seed else "")
        + f" --weight {args.weight} --boost-shift {args.boost_shift} --min-samples-leaf {args.min_samples_leaf}"
        + (f" --monotone {args.monotone}" if monotone else "") + (" --bank-curves" if args.bank_curves else "")
        + (f" --renders {args.renders} --render-kinds {args.render_kinds} --per-render {args.per_render}"
           f" --render-weight {args.render_weight}"
           if args.renders else ""),
        data=f"training/split.py train_files(): {len(clean['images'])} sRGB photos (8 bit, 0.5-15 % clipped, random yaw "
             f"and mirror)" + (f" plus {sum(len(x['images']) for x in extra)} through training camera curves (sRGB, DoRF "
                               "training curves, gamma 1.8-2.6, CurveBank darktable/NUS/sigmoid/film/log/picture-style "
                               "curves), PNG or JPEG q90, linearized by the pipeline's own curve "
                               "estimate" if extra else "")
             + f": {len(train['images'])} photos, {len(train['y'])} sources"
             + (f", of them {int(rendered.sum())} from {len(renders[0]['images'])} photos of rendered panoramas "
                "(training/render_scenes.py)" if renders else ""),
        metrics={"cv_group5_over_scenes": cv, "heldout_eval_split": heldout,
                 "heldout_sources_inside_68pct": round(float(inside.mean()), 3),
                 "heldout_per_source_class": classes,
                 "budget_const_log2_ratio": round(c_all, 4),
                 "protocol": "energy: |log2(sum of estimated source energies / true clipped energy)| per photo; "
                             "irradiance: mean relative error at 64 normals, clipped sources filled flat at the estimate"})
    logger.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
