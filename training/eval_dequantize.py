"""Does dequantization remove 8-bit banding without blurring edges? Measure it.

    python training/eval_dequantize.py [--max-width 1024]

For each evaluation reference (never trained on: the evaluation split of ../shared/data/hdr and
Blender's studio lights), an 8-bit sRGB PNG is synthesized (2% clipped), then linearized with the
true curve, once as is and once after :func:`crf.dequantize.dequantize`. Errors are measured against
the exposed reference, in the sRGB-encoded domain (in code values, 1 = one 8-bit step) so dark
and bright regions count alike:

* smooth regions: pixels whose 5x5 neighbourhood in the reference varies by less than 2 code
  values (where banding is visible);
* edges: pixels whose neighbourhood varies by more than 20 code values (where blurring shows);
* clipped pixels are excluded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ldr2hdr.evaluation import references, synth
from ldr2hdr.inference import crf
from ldr2hdr.inference.crf.dequantize import dequantize

ROOT = Path(__file__).resolve().parents[1]


def local_range(img: np.ndarray, radius: int = 2) -> np.ndarray:
    """Max minus min over a (2r+1)^2 window of the per-pixel channel mean, HxW."""
    t = torch.from_numpy(np.ascontiguousarray(img.mean(axis=-1)))[None, None]
    k = 2 * radius + 1
    hi = F.max_pool2d(F.pad(t, (radius,) * 4, mode="replicate"), k, stride=1)
    lo = -F.max_pool2d(F.pad(-t, (radius,) * 4, mode="replicate"), k, stride=1)
    return (hi - lo)[0, 0].numpy()


def measure(ref: np.ndarray) -> dict:
    ldr, info = synth.synthesize(ref, "srgb", 0.02, "png")
    exposed = np.clip(ref * info["exposure_scale"], 0, 1)
    truth_code = synth.srgb_encode(exposed) * 255
    inv = crf.srgb_inverse()
    rng = local_range(truth_code.astype(np.float32))
    keep = ~info["clip_mask"]
    smooth, edges = keep & (rng < 2.0), keep & (rng > 20.0)
    out = {"smooth_fraction": float(smooth.mean()), "edge_fraction": float(edges.mean())}
    for name, src in (("plain", ldr), ("dequantized", dequantize(ldr))):
        code = synth.srgb_encode(crf.linearize(src, inv)) * 255
        err = (code - truth_code) ** 2
        out[f"{name}_smooth_rmse"] = float(np.sqrt(err[smooth].mean())) if smooth.any() else float("nan")
        out[f"{name}_edge_rmse"] = float(np.sqrt(err[edges].mean())) if edges.any() else float("nan")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-width", type=int, default=1024)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "dequantize.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for path in references.find_references(references.default_reference_paths()):
        ref = references.load_reference(path, args.max_width)
        rows.append({"reference": ref.label, **measure(ref.pixels)})
    keys = ["plain_smooth_rmse", "dequantized_smooth_rmse", "plain_edge_rmse", "dequantized_edge_rmse"]
    mean = {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "mean": mean}, indent=1))
    print(f"{len(rows)} references (8-bit sRGB PNG, 2% clipped); error in 8-bit code values, lower is better\n")
    print("| region | without dequantization | with dequantization |\n|---|---|---|")
    print(f"| smooth (local range < 2 codes) | {mean['plain_smooth_rmse']:.3f} | {mean['dequantized_smooth_rmse']:.3f} |")
    print(f"| edges (local range > 20 codes) | {mean['plain_edge_rmse']:.3f} | {mean['dequantized_edge_rmse']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
