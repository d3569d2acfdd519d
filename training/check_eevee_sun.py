"""Does the Sun lamp that Extract Sun makes light an EEVEE scene as the map's own sun does?

    python training/check_eevee_sun.py [--size 128] [--samples 16]

Renders the relighting stage (``render/stage.py``: a white diffuse sphere, a glossy sphere, a
white ground) with EEVEE and with Cycles, lit by (a) the map and (b) the map without its sun plus
the Sun lamp made from it, for a synthetic 2.5-degree sun over a dim sky and for Blender's own
``sunset.exr`` and ``sunrise.exr`` studio lights. Prints per render the diffuse sphere's mean
and the width of its shadow's edge (10-90 %, pixels). EEVEE extracts a sun of its own from the
World (its World > Sun threshold, default 10); the lamp replaces that with the measured one.

Without a GPU EEVEE renders through a software OpenGL: a minute or two per render, most of it
compiling shaders. Nothing here is trained; it is a measurement (docs/lighting.md).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _synthetic_sun(height: int) -> np.ndarray:
    """A dim sky (0.05 above the horizon, 0.015 below) and a 2.5-degree sun 40 degrees up, giving
    irradiance 3 facing it (``eval_sun.add_disc``: white, anti-aliased edge)."""
    from eval_sun import add_disc
    from ldr2hdr.inference.imaging import equirect_directions

    dirs = equirect_directions(height, 2 * height)
    e, a = math.radians(40.0), math.radians(-60.0)
    c = np.array([math.cos(e) * math.sin(a), math.sin(e), -math.cos(e) * math.cos(a)])
    sky = np.where(dirs[..., 1:2] > 0, 0.05, 0.015).repeat(3, axis=-1).astype(np.float32)
    return add_disc(sky, c, 2.5, 3.0, color=(1.0, 1.0, 1.0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=128, help="panel width (pixels)")
    ap.add_argument("--samples", type=int, default=16)
    args = ap.parse_args(argv)

    import bpy

    from ldr2hdr.inference import io
    from ldr2hdr.inference.lighting import sun as sun_mod
    from ldr2hdr.render import relight, stage

    world_dir = Path(bpy.utils.system_resource("DATAFILES")) / "studiolights" / "world"
    maps = {"synthetic 2.5 deg sun": _synthetic_sun(256)}
    for name in ("sunset", "sunrise"):
        maps[name] = io.read_image(world_dir / f"{name}.exr").pixels[..., :3]
    for name, hdr in maps.items():
        found = sun_mod.extract_sun(hdr)
        print(f"{name}: {found.reason}", flush=True)
        if found.sun is None:
            continue
        lamp = relight.Lamp.from_sun(found.sun)
        toward = relight.map_direction_to_blender(lamp.direction)
        for engine in ("cycles", "eevee"):
            means = []
            for label, world_map, light in (("map", hdr, None), ("map - sun + lamp", found.without_sun, lamp)):
                start = time.perf_counter()
                image = relight.render(world_map, light, width=args.size, samples=args.samples, engine=engine)
                seconds = time.perf_counter() - start
                edge = stage.shadow_edge(image, toward)
                means.append(stage.sphere_mean(image, stage.DIFFUSE))
                width = "n/a" if edge.width_px is None else f"{edge.width_px:.1f} px"
                print(f"  {engine:6s} {label:16s} diffuse sphere mean {means[-1]:.4f}, shadow edge {width} "
                      f"({edge.note}), {seconds:.0f} s", flush=True)
            print(f"  {engine:6s} lamp / map sphere mean: {means[1] / means[0]:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
