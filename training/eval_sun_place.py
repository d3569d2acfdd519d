"""Where is the sun inside its clipped blob? Direction error of the core's centre.

    python training/eval_sun_place.py --split train --curve srgb     # about 2 minutes on one core
    python training/eval_sun_place.py --split eval --curve agx

Every panorama of the split labelled ``sun`` in SOURCES.md whose reference has a sun
(``extract_sun``), made an 8-bit photo (the given curve, PNG and JPEG q90, 2 %, 5 % and 8 %
clipped) and decoded as sRGB; its clipped sources found as the pipeline finds them. For the source
nearest the reference's sun, the angle between the true sun and the centre each rule gives:

- ``deepest``: what survives the most erosions of the blob's white part (the lamps' rule);
- ``top<t>``: of the white part's pixels at least ``t`` times as deep as its deepest (angular
  distance to its edge), the highest (:func:`energy._sun_direction`; the shipped ``t`` is
  ``energy.CORE_THICKNESS``).

Prints the median / mean error per codec and clip fraction, and writes the rows as JSON lines.
Nothing is trained; the threshold was chosen on the training split.
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

from ldr2hdr.evaluation import synth  # noqa: E402
from ldr2hdr.evaluation.references import load_reference  # noqa: E402
from ldr2hdr.inference.highlights import energy  # noqa: E402
from ldr2hdr.inference.highlights import sources as srcs  # noqa: E402
from ldr2hdr.inference.imaging import equirect_directions  # noqa: E402
from ldr2hdr.inference.lighting import sun as sun_mod  # noqa: E402

THICKNESS = (0.5, 0.7, 0.8, 0.9)


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(min(1.0, float(np.dot(a, b)))))


def rows_for(path: Path, curve: str) -> list[dict]:
    ref = np.asarray(load_reference(path, 1024).pixels, np.float64)
    ref_sun = sun_mod.extract_sun(ref.astype(np.float32)).sun
    if ref_sun is None:
        return []
    true = np.asarray(ref_sun.direction)
    out = []
    for clip in (0.02, 0.05, 0.08):
        for codec in ("png", "jpeg90"):
            ldr, _ = synth.synthesize(ref, curve, clip, codec)
            found = srcs.find_sources(synth.srgb_decode(ldr).astype(np.float32), ldr, True)
            if found.count == 0:
                continue
            dirs = equirect_directions(*found.shape)
            on = found.labels > 0
            i = int(found.labels[on][np.argmax(dirs[on] @ true)]) - 1
            row = {"file": path.name, "clip": clip, "codec": codec,
                   "deepest": angle_deg(true, energy._deepest_direction(found, i))}
            for t in THICKNESS:
                row[f"top{t}"] = angle_deg(true, energy._sun_direction(found, i, thick=t))
            out.append(row)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=("train", "eval"), default="train")
    ap.add_argument("--curve", default="srgb")
    ap.add_argument("--out", type=Path, default=None, help="JSON lines (default runs/sun_place/SPLIT_CURVE.jsonl)")
    args = ap.parse_args(argv)
    cats = categories()
    files = [p for p in (split.train_files() if args.split == "train" else split.eval_files())
             if cats.get(p.name, "") == "sun"]
    rows = []
    for path in files:
        rows += rows_for(path, args.curve)
        print(path.name, flush=True)
    out = args.out or Path("runs/sun_place") / f"{args.split}_{args.curve}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rules = ["deepest"] + [f"top{t}" for t in THICKNESS]
    groups = [(f"{c} {f:.0%}", [r for r in rows if r["codec"] == c and r["clip"] == f])
              for c in ("png", "jpeg90") for f in (0.02, 0.05, 0.08)] + [("all", rows)]
    print(f"{len({r['file'] for r in rows})} sun panoramas, {len(rows)} photos; degrees, median / mean")
    print("| photos | " + " | ".join(rules) + " |")
    for name, rs in groups:
        if rs:
            print(f"| {name} ({len(rs)}) | " + " | ".join(
                f"{np.median([r[k] for r in rs]):.1f} / {np.mean([r[k] for r in rs]):.1f}" for k in rules) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
