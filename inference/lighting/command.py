"""``ldr2hdr extract-sun``: the sun of each HDR panorama as lamp parameters plus the map without it.

For every input map ``NAME.exr`` (or ``.hdr``), writes to ``OUTDIR``:

A map written by ``ldr2hdr reconstruct`` lists its clipped light sources in its header; when
the map shows no compact sun but that list's brightest source is a sun, its clipped blob's light
above the clip level becomes the lamp (see :func:`.sun.extract_sun`).

* ``NAME.sun.json``: the sun (direction, angular diameter, colour, irradiance/strength, share
  of the light facing it) or ``"sun": null`` with the reason (overcast, indoor, ...);
* ``NAME.nosun.exr``: the map with exactly the sun's light removed (only when there is a sun;
  the sun's parameters are also in its header).

A bad input gets one line on stderr naming the file and the reason; the batch goes on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import __version__, io
from ..batch import _write_json_atomic, inputs_and_output
from ..errors import Ldr2HdrError, OutputExistsError
from . import sun as sun_mod

UNITS = ("direction: unit vector toward the sun, +Y up, -Z at the map's centre column; u, v: image coordinates "
         "(0..1, left to right, top to bottom); azimuth 0 at the centre column, growing to the right; angle_deg: "
         "angular diameter; irradiance_rgb and strength (its largest channel): irradiance on a surface facing the "
         "sun in the map's units x sr (W/m^2 for a map in W/m^2/sr; Blender's Sun strength at World strength 1)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="HDR equirectangular maps (.exr, .hdr) and/or folders of them")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created if needed)")
    p.add_argument("--min-share", type=float, default=sun_mod.MIN_SHARE,
                   help="least part of the light on a surface facing the brightest compact source that makes it "
                        f"a sun (default {sun_mod.MIN_SHARE})")
    p.add_argument("--max-angle", type=float, default=sun_mod.MAX_SUN_ANGLE_DEG, metavar="DEG",
                   help="largest angular diameter of a sun; larger compact lights (softboxes, windows) are not "
                        f"extracted (default {sun_mod.MAX_SUN_ANGLE_DEG:g})")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def listed_sources(path: Path) -> list | None:
    """The light sources ``ldr2hdr reconstruct`` listed in an EXR's header, or None (another
    program's map, or an unreadable entry: the map alone decides)."""
    try:
        sources = json.loads(io.read_exr_metadata(path).get("sources") or "null")
    except (Ldr2HdrError, ValueError, TypeError):
        return None
    return sources if isinstance(sources, list) else None


def _one(path: Path, out: Path, args) -> str:
    img = io.read_image(path)
    if not img.is_hdr:
        raise Ldr2HdrError("not an HDR map (8/16-bit image): run 'ldr2hdr reconstruct' on it first", path)
    json_path, exr_path = out / f"{path.stem}.sun.json", out / f"{path.stem}.nosun.exr"
    for p in (json_path, exr_path):
        if p.exists() and not args.overwrite:
            raise OutputExistsError("output exists (use --overwrite to replace it)", p)
    try:
        result = sun_mod.extract_sun(img.pixels, min_share=args.min_share, max_angle_deg=args.max_angle,
                                     sources=listed_sources(path))
    except Ldr2HdrError as exc:
        raise Ldr2HdrError(exc.reason, path) from None
    record = {"source_file": str(path.resolve()), "software": f"ldr2hdr {__version__}", "units": UNITS,
              "reason": result.reason, "sun": result.sun.to_dict() if result.sun else None,
              "candidate": result.candidate.to_dict() if result.candidate and not result.sun else None}
    if result.sun is not None:
        io.write_exr(exr_path, result.without_sun, overwrite=args.overwrite,
                     metadata={"source_file": str(path.resolve()), "sun": json.dumps(result.sun.to_dict())})
        record["map_without_sun"] = exr_path.name
    _write_json_atomic(json_path, record, overwrite=args.overwrite)
    return result.reason


def run(args) -> int:
    files, out = inputs_and_output(args)
    failures = 0
    for path in files:
        try:
            print(f"{path.name}: {_one(path, out, args)}")
        except Ldr2HdrError as exc:
            failures += 1
            print(f"ldr2hdr: error: {exc}", file=sys.stderr)
        except MemoryError:
            failures += 1
            print(f"ldr2hdr: error: {path}: out of memory", file=sys.stderr)
    return 1 if failures else 0
