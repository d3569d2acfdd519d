"""The embedded default input: a real HDR panorama from the bpy wheel, photographed.

``ldr2hdr demo`` takes one of Blender's studio-light HDRIs (real captures from Poly Haven,
shipped inside the ``bpy`` wheel), exposes it so a few percent of pixels clip, applies a real
tone curve (one of Blender's OCIO view transforms, Filmic by default) and saves an 8-bit
JPEG, just as a camera would. Then it runs ``reconstruct`` on that JPEG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..evaluation import synth
from . import io
from .batch import add_step_arguments, run_batch
from .errors import Ldr2HdrError

DEMO_CLIP_FRACTION = 0.03


def studio_light_dir() -> Path:
    """Folder of Blender's studio-light HDRIs inside the installed bpy wheel (bpy not imported)."""
    folder = synth.bpy_datafile("studiolights/world")
    if folder is None:
        raise Ldr2HdrError("Blender's studio lights not found: install the bpy wheel (pip install bpy==5.0.1)")
    return folder


def resolve_hdr(name: str) -> Path:
    """A studio-light name (``sunrise``) or a path to an HDR file."""
    p = Path(name)
    if p.suffix.lower() in (".exr", ".hdr"):
        return p
    candidate = studio_light_dir() / f"{name}.exr"
    if not candidate.is_file():
        names = ", ".join(sorted(q.stem for q in studio_light_dir().glob("*.exr")))
        raise Ldr2HdrError(f"no studio light named {name!r} (choose one of {names})")
    return candidate


def make_ldr(hdr: np.ndarray, view: str = "Filmic") -> np.ndarray:
    """Expose ``hdr`` so DEMO_CLIP_FRACTION of pixels clip and apply a Blender view transform.
    Returns display values, float32 HxWx3 in [0, 1] (JPEG-encode them to get the photo)."""
    key = view.lower().replace(" ", "-")
    if key not in synth.VIEW_TRANSFORMS:
        raise Ldr2HdrError(f"unknown view {view!r} (choose one of {', '.join(synth.VIEW_TRANSFORMS.values())})")
    exposed = hdr * synth.exposure_for_clip_fraction(hdr, DEMO_CLIP_FRACTION)
    display = synth.apply_curve(exposed, key)
    return np.asarray(display, dtype=np.float32)


def run_demo(hdr_name: str, outdir: Path, view: str = "Filmic") -> dict[str, Path]:
    """Write ``<name>.jpg`` (the photo) and reconstruct it into ``outdir``; return the paths."""
    src = resolve_hdr(hdr_name)
    ref = io.read_image(src)
    outdir.mkdir(parents=True, exist_ok=True)
    jpg = outdir / f"{src.stem}.jpg"
    io.write_jpeg(jpg, make_ldr(ref.pixels, view), quality=90)
    parser = argparse.ArgumentParser(prog="ldr2hdr reconstruct")
    add_step_arguments(parser, "reconstruct")
    args = parser.parse_args([str(jpg), "-o", str(outdir), "--crf-json", "--preview", "--overwrite", "-q"])
    try:
        rc = run_batch("reconstruct", args)
    except Ldr2HdrError as exc:
        raise Ldr2HdrError(f"reconstruct failed on the demo input: {exc.reason}", jpg) from None
    if rc != 0:
        raise Ldr2HdrError(f"reconstruct failed on the demo input (status {rc})", jpg)
    return {"photo": jpg, "hdr": outdir / f"{src.stem}.exr", "preview": outdir / f"{src.stem}.preview.png",
            "curve": outdir / f"{src.stem}.crf.json"}
