"""``ldr2hdr relight``: a Cycles preview of what an HDR map does to a small scene.

Renders a white diffuse sphere, a glossy metal sphere and a white ground plane lit by the map
(and, with ``--extract-sun``, by the map without its sun plus a Sun lamp made from it; with
``--reference``, by a reference map), side by side in one PNG with one exposure for all
panels, and prints per panel the diffuse sphere's mean linear luminance and the width of its
shadow's edge in pixels.

The rendering needs Blender's Python module ``bpy``, which this package never imports: the
command runs :mod:`ldr2hdr.render.relight` in a subprocess of the same interpreter, which
parses the same arguments (:func:`add_arguments`) and does the work.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys

from ..errors import Ldr2HdrError

RENDER_MODULE = "ldr2hdr.render.relight"
BPY_MISSING = "relight needs Blender's Python module bpy (pip install bpy==5.0.1) or run it inside Blender"
DESCRIPTION = (
    "Render, with Blender's Cycles on the CPU, a white diffuse sphere, a glossy metal sphere and a white "
    "ground plane lit by an HDR map; with --extract-sun also by the map without its sun plus a Sun lamp made "
    "from it, with --reference also by a reference map. The panels go side by side into one PNG with one "
    "exposure for all. Printed per panel: the diffuse sphere's mean linear luminance and the width in pixels "
    "of its shadow's edge (10-90 % of a step fitted across the shadow's far tip, along the sun's direction). "
    "Needs Blender's Python module bpy.")
DEFAULT_SIZE = 160
DEFAULT_SAMPLES = 64


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0.0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments (shared by ``ldr2hdr relight`` and the render module)."""
    p.add_argument("map", help="HDR equirectangular map (.exr, .hdr; 2:1)")
    p.add_argument("-o", "--output", required=True, metavar="PNG", help="the preview image to write (.png)")
    p.add_argument("--reference", metavar="EXR", help="a reference HDR map: adds a panel lit by it")
    p.add_argument("--extract-sun", action="store_true",
                   help="add a panel lit by the map without its sun plus a Sun lamp made from it")
    p.add_argument("--size", type=_positive_int, default=DEFAULT_SIZE, metavar="PX",
                   help=f"width of each panel in pixels (height 3/4 of it; default {DEFAULT_SIZE})")
    p.add_argument("--samples", type=_positive_int, default=DEFAULT_SAMPLES,
                   help=f"Cycles samples per pixel (default {DEFAULT_SAMPLES})")
    p.add_argument("--rotation", type=float, default=0.0, metavar="DEG",
                   help="turn the map about the vertical axis as the World's Mapping rotation Z does (degrees)")
    p.add_argument("--strength", type=_positive_float, default=1.0,
                   help="World strength: the map and the Sun lamp are scaled by it (default 1)")
    p.add_argument("--denoise", action="store_true",
                   help="run Cycles' denoiser (off by default: the numbers are measured on the raw renders)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def forward_arguments(args: argparse.Namespace) -> list[str]:
    """Command-line arguments that make :func:`add_arguments`' parser give back ``args``."""
    out = ["-o", args.output, "--size", str(args.size), "--samples", str(args.samples),
           "--rotation", repr(float(args.rotation)), "--strength", repr(float(args.strength))]
    if args.reference is not None:
        out += ["--reference", args.reference]
    for flag in ("extract_sun", "denoise", "overwrite"):
        if getattr(args, flag):
            out.append("--" + flag.replace("_", "-"))
    return out + ["--", args.map]


def run(args: argparse.Namespace) -> int:
    """Run the render module in a subprocess; its exit status is the command's.

    Raises:
        Ldr2HdrError: bpy cannot be found by this interpreter.
    """
    if importlib.util.find_spec("bpy") is None:
        raise Ldr2HdrError(BPY_MISSING)
    command = [sys.executable, "-m", RENDER_MODULE, *forward_arguments(args)]
    return subprocess.run(command, check=False).returncode
