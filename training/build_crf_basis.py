"""Build the inverse-CRF PCA basis from the DoRF training curves.

    python training/build_crf_basis.py [--dorf ../shared/data/crf/dorf/dorfCurvesInv.mat]

Reads the 201 measured DoRF inverse curves, keeps the 191 of the common training split
(numpy RandomState(730) shuffle, last 10 held out for testing), and writes the mean and the
first 11 principal components to weights/crf_pca.safetensors with a manifest entry.
Deterministic: the same input gives the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parent.parent

from ldr2hdr.inference import crf
from ldr2hdr.inference.weights import record_weights_file

DEFAULT_DORF = ROOT.parent / "shared" / "data" / "crf" / "dorf" / "dorfCurvesInv.mat"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dorf", type=Path, default=DEFAULT_DORF)
    ap.add_argument("--components", type=int, default=11)
    ap.add_argument("--out", type=Path, default=crf.PCA_BASIS_FILE)
    args = ap.parse_args(argv)

    curves = crf.load_dorf(args.dorf)
    train, test = crf.dorf_split(len(curves))
    mean, comps, var = crf.build_pca_basis(curves[train], args.components)
    # How well does the basis represent unseen curves? (projection error on the test split)
    proj = mean + ((curves[test] - mean) @ comps.T) @ comps
    rmse_test = float(np.sqrt(np.mean((proj - curves[test]) ** 2)))
    save_file({"mean": mean.astype(np.float32), "components": comps.astype(np.float32)}, str(args.out),
              metadata={"source": "DoRF dorfCurvesInv.mat invI, training split (191 curves)",
                        "split": "numpy RandomState(730) shuffle of 201, last 10 held out"})
    entry = record_weights_file(
        args.out,
        kind="inverse-CRF PCA basis (mean + components, 1024 samples)",
        data="DoRF (Columbia CAVE) 191 training curves; test split held out",
        command="python training/build_crf_basis.py",
        metrics={"explained_variance": round(float(var.sum()), 6),
                 "projection_rmse_dorf_test": round(rmse_test, 6)},
    )
    print(f"wrote {args.out} ({entry['size']} bytes): {args.components} components explain "
          f"{var.sum():.4%} of the variance; projection RMSE on the 10 test curves {rmse_test:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
