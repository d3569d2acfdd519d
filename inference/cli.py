"""The ``ldr2hdr`` command line.

Every subcommand takes image files and/or folders and writes one result per input into
``-o OUTDIR``. A bad input gets one line on stderr naming the file and the reason; the
batch goes on and the command exits with status 1 at the end if anything failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable

from . import __version__
from .batch import add_step_arguments, run_batch
from .errors import Ldr2HdrError


DESCRIPTION = """\
Turn ordinary photos (JPEG/PNG/TIFF/WebP, often 360 panoramas) into linear HDR images
(OpenEXR, Linear Rec.709, scene-referred) that can light a 3D scene.

The chain has three steps, each available alone:
  estimate-crf  recover the camera's response curve        -> OUTDIR/<name>.crf.json
  linearize     undo that curve (and 8-bit banding)        -> OUTDIR/<name>.exr
  restore       also bring back clipped highlights         -> OUTDIR/<name>.exr
  reconstruct   all three (what you usually want)          -> OUTDIR/<name>.exr
  extract-sun   the sun of an HDR panorama as lamp parameters + the map without it
  relight       preview an HDR map lighting spheres on a ground plane (Cycles; needs bpy)
  eval          score methods on HDR references (the evaluation harness)
  demo          run reconstruct on a real HDR panorama shipped with Blender

Examples:
  ldr2hdr reconstruct photo.jpg -o out --preview
  ldr2hdr reconstruct shots/ pano.jpg -o out --crf-json --preview --panorama auto
  ldr2hdr linearize photo.jpg -o out --crf gamma2.2
  ldr2hdr extract-sun out/pano.exr -o out
  ldr2hdr relight out/pano.exr -o relight.png --extract-sun
  ldr2hdr demo -o out
"""

STEP_HELP = {
    "estimate-crf": "estimate the camera response curve of each image and write <name>.crf.json",
    "linearize": "undo the camera curve: write relative linear radiance <name>.exr",
    "restore": "linearize and restore clipped highlights (a linear .exr from 'linearize' is restored as is)",
    "reconstruct": "all three steps: estimate the curve, linearize, restore highlights",
}

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ldr2hdr", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ldr2hdr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for step, text in STEP_HELP.items():
        p = sub.add_parser(step, help=text, description=text)
        add_step_arguments(p, step)
    from .lighting import command as sun_command

    ps = sub.add_parser("extract-sun", help="write the sun of HDR panoramas as lamp parameters and the map without it",
                        description=sun_command.__doc__.split("\n\n")[0].split(": ", 1)[1])
    sun_command.add_arguments(ps)
    from .lighting import relight_command

    pr = sub.add_parser("relight", help="render spheres on a ground plane lit by an HDR map with Cycles (needs bpy)",
                        description=relight_command.DESCRIPTION)
    relight_command.add_arguments(pr)
    from ..evaluation import harness

    pe = sub.add_parser("eval", help="score methods on HDR references (synthesized LDR inputs)",
                        description="Evaluation harness: synthesize LDR inputs from HDR references, run each "
                                    "method and baseline, and write a markdown table and JSON.")
    harness.add_eval_arguments(pe)
    pd = sub.add_parser("demo", help="reconstruct a real HDR panorama shipped inside Blender's bpy wheel",
                        description="Takes a real HDR panorama from the bpy wheel (default: sunrise), renders "
                                    "it to an 8-bit JPEG through Blender's Filmic tone curve, reconstructs it and "
                                    "writes <name>.exr, <name>.preview.png and <name>.crf.json to OUTDIR.")
    pd.add_argument("-o", "--output", default="out", metavar="OUTDIR", help="output folder (default: out)")
    pd.add_argument("--hdr", default="sunrise", help="studio light name or path to an .exr/.hdr (default: sunrise)")
    pd.add_argument("--view", default="Filmic", help="Blender view transform used as the camera curve (default: Filmic)")
    return parser

def run_demo(args) -> int:
    from . import demo

    paths = demo.run_demo(args.hdr, Path(args.output), view=args.view)
    for label, p in paths.items():
        print(f"{label:8s} {p}")
    return 0


def report_errors(work: Callable[[], int], out_of_memory: str | None = None) -> int:
    """``work()``'s exit status, with an error the user should see printed as one line (status 2)
    and Ctrl-C as "interrupted" (130); with ``out_of_memory`` (a file name) running out of memory
    is one such line too."""
    try:
        return work()
    except Ldr2HdrError as exc:
        print(f"ldr2hdr: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        if out_of_memory is None:
            raise
        print(f"ldr2hdr: error: {out_of_memory}: out of memory", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ldr2hdr: interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="ldr2hdr: %(levelname)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    return report_errors(lambda: _run_command(args))


def _run_command(args) -> int:
    if args.command == "eval":
        from ..evaluation import harness

        return harness.run_eval(args)
    if args.command == "demo":
        return run_demo(args)
    if args.command == "extract-sun":
        from .lighting import command as sun_command

        return sun_command.run(args)
    if args.command == "relight":
        from .lighting import relight_command

        return relight_command.run(args)
    return run_batch(args.command, args)


if __name__ == "__main__":
    sys.exit(main())
