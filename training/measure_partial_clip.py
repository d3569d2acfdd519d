"""How much of a clipped region's true energy sits in pixels clipped in only some channels.

    python training/measure_partial_clip.py [--split train|eval] [--curve srgb]

For each panorama of the split (``training/split.py``), made an 8-bit photo with ``synth`` at 2 %
and 8 % clipped (PNG, so no JPEG ringing), prints the share of clipped pixels (any channel at the top
code) that are not clipped in all three channels, and the share of the region's true luminance
energy (solid-angle weighted, from the reference) those partially clipped pixels hold. A pixel with
a channel left unclipped still carries part of its radiance in that channel; where that share is
large, an estimate of the energy from the unclipped channels (with the source's colour) could tell
the energy trees what their features do not. A measurement for the next design, nothing fitted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import split  # noqa: E402
import train_energy  # noqa: E402

from ldr2hdr.evaluation import synth  # noqa: E402
from ldr2hdr.evaluation.references import read_hdr  # noqa: E402
from ldr2hdr.inference.highlights.sources import CLIP_CODE, pixel_solid_angle  # noqa: E402
from ldr2hdr.inference.imaging import luminance  # noqa: E402


def partial_shares(hdr: np.ndarray, curve: str, clip_fraction: float) -> tuple[float, float]:
    """``(partially clipped / clipped pixels, their share of the clipped region's true energy)``."""
    ldr, _ = synth.synthesize(hdr, curve, clip_fraction, "png")
    clipped = ldr >= CLIP_CODE  # per channel, at the top code as the energy step counts it
    any_c, all_c = clipped.any(axis=-1), clipped.all(axis=-1)
    weights = pixel_solid_angle(*hdr.shape[:2], True)
    energy = luminance(hdr) * weights
    partial = any_c & ~all_c
    return (float(partial.sum() / max(any_c.sum(), 1)),
            float(energy[partial].sum() / max(energy[any_c].sum(), 1e-30)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=("train", "eval"), default="train")
    ap.add_argument("--curve", default="srgb")
    args = ap.parse_args(argv)
    files = split.train_files() if args.split == "train" else split.eval_files(include_studio_lights=False)
    category = train_energy.categories()
    rows = []
    for path in files:
        hdr = read_hdr(path)
        if hdr.shape[1] != 2 * hdr.shape[0]:
            continue  # panoramas only: solid angles
        for cf in (0.02, 0.08):
            px, en = partial_shares(hdr, args.curve, cf)
            rows.append((category.get(Path(path).name, "other"), Path(path).name, cf, px, en))
            print(f"{rows[-1][0]:13s} {rows[-1][1]:42s} {cf:.2f}  partially clipped {px:.2f} of the clipped "
                  f"pixels, {en:.3f} of their true energy")
    print("\nmean share of the true clipped energy in partially clipped pixels, by category:")
    for cat in sorted({r[0] for r in rows}):
        v = [r[4] for r in rows if r[0] == cat]
        print(f"  {cat:13s} {np.mean(v):.3f} ({len(v)} photos)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
