"""Fit how far the learned camera curve is trusted over plain sRGB (Estimate CRF, second design).

    python training/fit_crf_shrink.py              # build or reuse the examples, fit, score, install

The CRF network's estimate scatters around the true curve by about 0.04 (RMSE of the inverse
curve) whatever the curve is, so on a plain-sRGB image (renders, screenshots, web images, many
phones) it is worse than assuming sRGB, and on camera curves close to sRGB it gains little.
The shipped answer blends the two: ``inverse = srgb + w * (estimate - srgb)``, where the weight
``w`` grows with how far the estimate sits from sRGB (``d``, the RMSE between the two curves):
an estimate inside the network's own noise around sRGB is sRGB (``w = 0``, returned exactly),
one far from it is trusted. ``w(d)`` is piecewise linear in ``log2 d`` with fixed knots, fitted
by minimizing the mean inverse-curve RMSE over the examples.

Examples (training split only, seeded, cached in ``runs/crf_shrink/``): every training HDR
x ``--per-scene`` photos: the whole image or a random perspective view (384 px), a clip fraction
log-uniform in 0.5-15 %, a camera curve that is plain sRGB with probability ``--srgb-share``
(default 0.3) and otherwise a training curve of ``crf_curves.CurveBank`` (DoRF training split,
darktable base curves, NUS cameras, parametric film-like and gamma curves), PNG or JPEG q90; the
shipped network's estimate and its true gray-axis curve are kept.

Checked with group 5-fold cross-validation over whole scenes, then written as
``weights/crf_shrink.safetensors`` (knots and weights) with a manifest entry; the held-out numbers
come from ``training/eval_crf.py`` (curves and scenes never used here).

``--camera`` scores the same fit for photos whose EXIF names a camera: a camera's JPEG engine
applies its own tone curve, never plain sRGB, so the examples without the plain-sRGB ones are the
prior. It fits full trust at every distance (the network's curve alone), which is what
``pipeline.estimate_crf`` returns for such photos; nothing is written.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))
import crf_curves  # noqa: E402
import crf_data  # noqa: E402

from ldr2hdr.inference import crf  # noqa: E402
from ldr2hdr.inference import weights as weights_mod  # noqa: E402
from ldr2hdr.inference.crf import network as crf_net  # noqa: E402
from ldr2hdr.inference.crf import shrink  # noqa: E402

logger = logging.getLogger("fit_crf_shrink")


def rmse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean((a - b) ** 2, axis=-1))


def build(per_scene: int, srgb_share: float, seed: int, weights: Path | None = None,
          prior: str = "original") -> dict:
    bank = crf_curves.CurveBank.load(prior)
    scenes = crf_data.load_training_scenes(max_width=512)
    srgb = crf.srgb_inverse().curves[0]
    est, true, fam, name, conf = [], [], [], [], []
    t0 = time.time()
    for si, scene in enumerate(scenes):
        rng = np.random.default_rng([seed, si])
        for _ in range(per_scene):
            ldr, curves, family, _, _ = crf_data.whole_photo(scene, rng, bank, srgb, srgb_share)
            inv = crf_net.estimate_crf_learned(ldr, weights=weights, shrink=False)
            est.append(inv.curves.mean(0))
            true.append(curves.mean(0))
            fam.append(family)
            name.append(scene.name)
            conf.append(inv.confidence)
        logger.info("%d/%d %s (%.0f s)", si + 1, len(scenes), scene.name, time.time() - t0)
    return dict(est=np.array(est), true=np.array(true), family=np.array(fam), name=np.array(name),
                confidence=np.array(conf))


def fit(d_est: np.ndarray, est: np.ndarray, true: np.ndarray, srgb: np.ndarray) -> np.ndarray:
    """Weights at :data:`shrink.KNOTS` minimizing the mean RMSE of ``srgb + w(d) (est - srgb)``;
    non-decreasing in ``d`` (more trust the farther the estimate is from sRGB) and at most 1."""
    from scipy.optimize import minimize

    def weights_of(steps):
        return np.minimum(np.cumsum(np.maximum(steps, 0.0)), 1.0)

    def loss(steps):
        w = shrink.weight(d_est, weights_of(steps))
        return float(np.mean(rmse(srgb + w[:, None] * (est - srgb), true)))

    n = len(shrink.KNOTS)
    best = None
    for start in (np.full(n, 0.5 / n), np.r_[0.0, np.full(n - 1, 1.0 / (n - 1))], np.r_[np.zeros(n - 2), 0.5, 0.5]):
        r = minimize(loss, start, method="Powell", bounds=[(0.0, 1.0)] * n)
        if best is None or r.fun < best.fun:
            best = r
    return np.round(weights_of(best.x), 4)


def fit_expected(d: np.ndarray, err: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """Expected RMSE at :data:`shrink.KNOTS`: least squares of ``err`` on the same piecewise-linear
    interpolation in ``log2 d`` that :func:`shrink.weight` uses, non-negative."""
    eye = np.eye(len(shrink.KNOTS))
    basis = np.stack([shrink.weight(d, eye[k]) for k in range(len(shrink.KNOTS))], axis=1)
    a = basis.T @ basis + ridge * eye
    return np.round(np.maximum(np.linalg.solve(a, basis.T @ err), 0.0), 4)


def summary(est: np.ndarray, true: np.ndarray, family: np.ndarray) -> dict:
    e = rmse(est, true)
    out = {"all": round(float(e.mean()), 4)}
    for f in sorted(set(family)):
        out[f] = round(float(e[family == f].mean()), 4)
    s = family == "srgb"
    out["srgb_within_0.01"] = round(float(np.mean(e[s] <= 0.01)), 3) if s.any() else None
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-scene", type=int, default=12)
    ap.add_argument("--srgb-share", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default="runs/crf_shrink")
    ap.add_argument("--no-install", action="store_true", help="score only; write nothing")
    ap.add_argument("--weights", type=Path, default=None,
                    help="the CRF network to fit the trust for (default: the shipped weights/crf_net.safetensors)")
    ap.add_argument("--prior", default="original", choices=sorted(crf_curves.PRIORS),
                    help="the training curves' family probabilities (as train_crf.py --prior)")
    ap.add_argument("--camera", action="store_true",
                    help="score the trust for photos from a camera (EXIF names one): the examples without plain "
                         "sRGB; writes nothing")
    ap.add_argument("--out", type=Path, default=None,
                    help="where to write the trust file (default: weights/crf_shrink.safetensors)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from sklearn.model_selection import GroupKFold

    net = args.weights or crf_net.WEIGHTS_FILE
    # the examples hold the network's estimates: one cache file per network
    tag = ("" if args.weights is None else "_" + weights_mod.sha256_of(net)[:12]) + \
        ("" if args.prior == "original" else f"_{args.prior}")
    path = Path(args.cache) / f"examples_seed{args.seed}_per{args.per_scene}_srgb{args.srgb_share}{tag}.npz"
    if path.is_file():
        data = dict(np.load(path))
    else:
        data = build(args.per_scene, args.srgb_share, args.seed, args.weights, args.prior)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path.with_suffix(".tmp.npz"), **data)
        path.with_suffix(".tmp.npz").replace(path)
    if args.camera:
        data = {k: v[data["family"] != "srgb"] for k, v in data.items()}
    est, true, family, names = data["est"], data["true"], data["family"], data["name"]
    srgb = crf.srgb_inverse().curves[0]
    d = rmse(est, srgb)
    oof = np.zeros_like(est)
    oof_conf = np.zeros(len(est))
    for tr, te in GroupKFold(5).split(est, groups=names):
        wk = fit(d[tr], est[tr], true[tr], srgb)
        oof[te] = srgb + shrink.weight(d[te], wk)[:, None] * (est[te] - srgb)
        shipped_tr = srgb + shrink.weight(d[tr], wk)[:, None] * (est[tr] - srgb)
        ek = fit_expected(d[tr], rmse(shipped_tr, true[tr]))
        oof_conf[te] = [shrink.confidence(float(x), ek, float(c)) for x, c in zip(d[te], data["confidence"][te])]
    srgb_all = np.repeat(srgb[None], len(est), axis=0)
    cv = {"network": summary(est, true, family), "srgb": summary(srgb_all, true, family),
          "shrunk": summary(oof, true, family)}
    for k, v in cv.items():
        logger.info("CV %-8s %s", k, v)
    from scipy.stats import spearmanr

    oof_err = rmse(oof, true)
    cv["confidence_error_rank_corr"] = {
        "shipped": round(float(spearmanr(oof_conf, oof_err)[0]), 3),
        "network_only": round(float(spearmanr(data["confidence"], oof_err)[0]), 3)}
    logger.info("CV rank correlation confidence vs. error: %s", cv["confidence_error_rank_corr"])
    wk = fit(d, est, true, srgb)
    ek = fit_expected(d, rmse(srgb + shrink.weight(d, wk)[:, None] * (est - srgb), true))
    logger.info("knots (log2 d) %s -> weights %s, expected RMSE %s", list(shrink.KNOTS), list(wk), list(ek))
    if args.no_install or args.camera:
        return 0
    from safetensors.numpy import save_file

    out = args.out or weights_mod.WEIGHTS_DIR / shrink.FILE_NAME
    save_file({"knots_log2_rmse": np.array(shrink.KNOTS, np.float64), "weights": wk.astype(np.float64),
               "expected_rmse": ek.astype(np.float64)}, str(out))
    weights_mod.record_weights_file(
        out, kind="trust in the learned camera curve over sRGB, by the estimate's distance from sRGB, and the "
                  "returned curve's expected RMSE there (the confidence)",
        command="python training/fit_crf_shrink.py" + (f" --seed {args.seed}" if args.seed else ""),
        data=f"training split: {len(est)} simulated photos ({args.per_scene} per scene, {args.srgb_share:.0%} plain sRGB, "
             "the rest crf_curves.CurveBank training curves), PNG or JPEG q90",
        metrics={"cv_group5_over_scenes_inverse_crf_rmse": cv})
    logger.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
