"""Render synthetic HDR panoramas with coherent light sources (Blender Cycles, CPU).

    python training/render_scenes.py --count 200 --out runs/renders [--size 512] [--samples 16]

Why: the TRAIN split has 3 sunlit panoramas and few intense lamps, and a sun or lamp
pasted into a real photo (``highlight_data.add_light_sources``) does not light the scene
around it, so the network cannot tell it from a bright sky and learns a global boost
instead (docs/experiments.md). In a rendered scene the source and what it lights agree:
a sun casts shadows and brightens the ground by as much as its energy says; a lamp lights
the walls of its room. These renders give the network clipped sources whose energy is
written in the unclipped context.

Scenes (one seed each, ``--seed + i``; a file that already exists is skipped, so a rerun
continues):

* outdoor (``--outdoor`` fraction, default 0.6): Blender's physical sky (multiple
  scattering, random sun elevation -2..70 degrees, azimuth, air/aerosol density; sometimes
  without a sun disc), a textured ground and 4-24 boxes, towers, cylinders and spheres
  with random diffuse, glossy or metallic materials at 2-80 m;
* indoor: a room 3-14 m wide with textured walls, 1-5 emissive lamps (small spheres,
  ceiling panels, discs; 2,700-6,500 K; radiance over 10 stops), 0-2 emissive windows,
  some furniture.

Output: ``<out>/render_<seed>.exr`` (32-bit float, linear Rec.709, equirect ``size x
size/2``, row 0 = zenith) and ``<out>/render_<seed>.json`` (the scene parameters).
Only Blender (the ``bpy`` module of the project's environment) is needed; nothing is
downloaded. These images are training data only (never evaluation: they are not real).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from ldr2hdr.inference import crf

ROOT = Path(__file__).resolve().parents[1]


def _kelvin_rgb(k: float) -> tuple[float, float, float]:
    """Approximate linear Rec.709 colour of a black body (normalized to max 1), 1,500-10,000 K."""
    t = k / 100.0
    r = 255.0 if t <= 66 else 329.7 * (t - 60) ** -0.1332
    g = 99.47 * math.log(t) - 161.1 if t <= 66 else 288.1 * (t - 60) ** -0.0755
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5 * math.log(t - 10) - 305.0)
    lin = crf.srgb_to_linear(np.clip(np.array([r, g, b]) / 255.0, 0.0, 1.0))
    return tuple(float(v) for v in lin / max(lin.max(), 1e-6))


def _between(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Uniform in [lo, hi], or the midpoint when the range is empty (a small room, a big window)."""
    return float(rng.uniform(lo, hi)) if hi > lo else 0.5 * (lo + hi)


def _material(bpy, rng: np.random.Generator, name: str, *, albedo=(0.03, 0.7), textured: bool = True,
              metallic_p: float = 0.1):
    mat = bpy.data.materials.new(name)
    nt = mat.node_tree
    bsdf = nt.nodes.get("Principled BSDF")
    base = rng.uniform(*albedo) * np.clip(rng.normal(1.0, 0.25, 3), 0.3, 1.7)
    base = np.clip(base, 0.005, 0.95)
    if textured:
        noise = nt.nodes.new("ShaderNodeTexNoise")
        noise.inputs["Scale"].default_value = float(rng.uniform(0.5, 20.0))
        ramp = nt.nodes.new("ShaderNodeValToRGB")
        other = np.clip(base * rng.uniform(0.3, 1.6, 3), 0.005, 0.95)
        ramp.color_ramp.elements[0].color = (*base, 1.0)
        ramp.color_ramp.elements[1].color = (*other, 1.0)
        nt.links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
        nt.links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    else:
        bsdf.inputs["Base Color"].default_value = (*base, 1.0)
    metallic = rng.random() < metallic_p
    bsdf.inputs["Metallic"].default_value = 1.0 if metallic else 0.0
    bsdf.inputs["Roughness"].default_value = float(rng.uniform(0.05, 0.5) if metallic or rng.random() < 0.3
                                                   else rng.uniform(0.5, 1.0))
    return mat


def _emission(bpy, name: str, color, strength: float):
    mat = bpy.data.materials.new(name)
    nt = mat.node_tree
    for n in list(nt.nodes):
        if n.type != "OUTPUT_MATERIAL":
            nt.nodes.remove(n)
    em = nt.nodes.new("ShaderNodeEmission")
    em.inputs["Color"].default_value = (*color, 1.0)
    em.inputs["Strength"].default_value = float(strength)
    nt.links.new(em.outputs["Emission"], nt.nodes["Material Output"].inputs["Surface"])
    return mat


def _add(bpy, kind: str, location, scale, mat, rotation=(0.0, 0.0, 0.0)):
    ops = {"cube": bpy.ops.mesh.primitive_cube_add, "sphere": bpy.ops.mesh.primitive_uv_sphere_add,
           "cylinder": bpy.ops.mesh.primitive_cylinder_add, "plane": bpy.ops.mesh.primitive_plane_add,
           "disc": bpy.ops.mesh.primitive_circle_add}
    kwargs = {"fill_type": "NGON"} if kind == "disc" else {}
    ops[kind](location=location, rotation=rotation, **kwargs)
    obj = bpy.context.active_object
    obj.scale = scale
    obj.data.materials.append(mat)
    return obj


def _outdoor(bpy, scene, rng: np.random.Generator) -> dict:
    world = bpy.data.worlds.new("world")
    scene.world = world
    nt = world.node_tree
    sky = nt.nodes.new("ShaderNodeTexSky")
    sky.sky_type = "MULTIPLE_SCATTERING"
    elev = float(rng.uniform(-2.0, 70.0))
    sky.sun_elevation = math.radians(elev)
    sky.sun_rotation = float(rng.uniform(0, 2 * math.pi))
    sky.air_density = float(rng.uniform(0.5, 3.0))
    sky.aerosol_density = float(rng.uniform(0.0, 6.0))
    sky.altitude = float(rng.uniform(0.0, 1500.0))
    sky.sun_disc = bool(rng.random() > 0.12)
    nt.links.new(sky.outputs[0], nt.nodes["Background"].inputs["Color"])
    _add(bpy, "plane", (0, 0, 0), (400, 400, 1), _material(bpy, rng, "ground", albedo=(0.04, 0.45), metallic_p=0.0))
    n_obj = int(rng.integers(4, 25))
    for i in range(n_obj):
        kind = str(rng.choice(["cube", "cube", "sphere", "cylinder"]))
        ang = rng.uniform(0, 2 * math.pi)
        if kind == "cube" and rng.random() < 0.4:  # a building / wall
            sx, sy, sz = rng.uniform(1, 12), rng.uniform(1, 12), rng.uniform(2, 30)
        else:
            s = rng.uniform(0.2, 3.0)
            sx, sy, sz = s * rng.uniform(0.5, 2), s * rng.uniform(0.5, 2), s * rng.uniform(0.5, 2)
        # never around the camera (at the origin): the nearest face at least 1.5 m away
        near = 1.5 + 1.5 * max(sx, sy)
        dist = float(np.exp(rng.uniform(math.log(near), math.log(max(near * 1.5, 80.0)))))
        _add(bpy, kind, (dist * math.cos(ang), dist * math.sin(ang), sz), (sx, sy, sz),
             _material(bpy, rng, f"m{i}", metallic_p=0.15), rotation=(0, 0, float(rng.uniform(0, math.pi))))
    return {"kind": "outdoor", "sun_elevation_deg": elev, "sun_disc": sky.sun_disc, "air_density": sky.air_density,
            "aerosol_density": sky.aerosol_density, "objects": n_obj, "camera_height": float(rng.uniform(1.2, 3.0))}


def _indoor(bpy, scene, rng: np.random.Generator) -> dict:
    world = bpy.data.worlds.new("world")
    scene.world = world
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
    w, d, h = float(rng.uniform(3, 14)), float(rng.uniform(3, 14)), float(rng.uniform(2.4, 5.0))
    # floor, ceiling and four walls as separate planes (their own materials)
    _add(bpy, "plane", (0, 0, 0), (w / 2, d / 2, 1), _material(bpy, rng, "floor", albedo=(0.05, 0.6)))
    _add(bpy, "plane", (0, 0, h), (w / 2, d / 2, 1), _material(bpy, rng, "ceiling", albedo=(0.3, 0.9), metallic_p=0))
    wall = _material(bpy, rng, "wall", albedo=(0.1, 0.85), metallic_p=0.0)
    for x, y, rz, half in ((w / 2, 0, math.pi / 2, d / 2), (-w / 2, 0, math.pi / 2, d / 2),
                           (0, d / 2, 0, w / 2), (0, -d / 2, 0, w / 2)):
        _add(bpy, "plane", (x, y, h / 2), (half, h / 2, 1), wall if rng.random() < 0.7 else
             _material(bpy, rng, "wall2", albedo=(0.1, 0.85), metallic_p=0.0), rotation=(math.pi / 2, 0, rz))
    n_furn = int(rng.integers(0, 8))
    for i in range(n_furn):
        sx, sy, sz = rng.uniform(0.2, 1.2), rng.uniform(0.2, 1.2), rng.uniform(0.2, 1.0)
        _add(bpy, "cube", (_between(rng, -w / 2 + sx, w / 2 - sx), _between(rng, -d / 2 + sy, d / 2 - sy), sz),
             (sx, sy, sz), _material(bpy, rng, f"f{i}", metallic_p=0.1))
    lamps = []
    for i in range(int(rng.integers(1, 6))):
        kind = str(rng.choice(["sphere", "panel", "disc"]))
        color = _kelvin_rgb(float(rng.uniform(2700, 6500)))
        strength = float(2.0 ** rng.uniform(2.0, 12.0))
        if kind == "sphere":
            r = float(rng.uniform(0.03, 0.25))
            loc = (_between(rng, -w / 2 + 0.5, w / 2 - 0.5), _between(rng, -d / 2 + 0.5, d / 2 - 0.5), _between(rng, 1.0, h - r))
            _add(bpy, "sphere", loc, (r, r, r), _emission(bpy, f"l{i}", color, strength))
        else:
            size = (float(rng.uniform(0.1, 1.5)), float(rng.uniform(0.1, 1.5)), 1.0)
            if kind == "disc":
                size = (size[0] * 0.5, size[0] * 0.5, 1.0)
            loc = (_between(rng, -w / 2 + 1, w / 2 - 1), _between(rng, -d / 2 + 1, d / 2 - 1), h - 0.01)
            strength /= 4.0  # big emitters: less radiance for the same power
            _add(bpy, "plane" if kind == "panel" else "disc", loc, size, _emission(bpy, f"l{i}", color, strength),
                 rotation=(math.pi, 0, 0))
        lamps.append({"kind": kind, "strength": strength})
    windows = []
    for i in range(int(rng.choice([0, 0, 1, 2]))):
        strength = float(2.0 ** rng.uniform(0.0, 7.0))
        color = tuple(float(c) for c in np.clip(np.array([0.75, 0.85, 1.0]) * rng.uniform(0.8, 1.2, 3), 0, None))
        ww, wh = float(rng.uniform(0.5, 2.5)), float(rng.uniform(0.8, 2.0))
        if rng.random() < 0.5:
            x = (w / 2 - 0.01) * (1 if rng.random() < 0.5 else -1)
            loc, rot = (x, _between(rng, -d / 2 + ww, d / 2 - ww), _between(rng, wh / 2 + 0.5, h - wh / 2 - 0.1)), (math.pi / 2, 0, math.pi / 2)
        else:
            y = (d / 2 - 0.01) * (1 if rng.random() < 0.5 else -1)
            loc, rot = (_between(rng, -w / 2 + ww, w / 2 - ww), y, _between(rng, wh / 2 + 0.5, h - wh / 2 - 0.1)), (math.pi / 2, 0, 0)
        _add(bpy, "plane", loc, (ww / 2, wh / 2, 1), _emission(bpy, f"win{i}", color, strength), rotation=rot)
        windows.append({"strength": strength})
    cam_xy = (_between(rng, -w / 2 + 0.5, w / 2 - 0.5), _between(rng, -d / 2 + 0.5, d / 2 - 0.5))
    return {"kind": "indoor", "room": [w, d, h], "lamps": lamps, "windows": windows, "furniture": n_furn,
            "camera_xy": cam_xy, "camera_height": float(rng.uniform(1.0, min(2.0, h - 0.3)))}


def render_one(seed: int, out_dir: Path, size: int, samples: int, outdoor: float, threads: int) -> Path:
    import bpy

    rng = np.random.default_rng(seed)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.seed = seed
    scene.cycles.max_bounces = 3
    scene.cycles.use_denoising = True
    scene.render.threads_mode = "FIXED"
    scene.render.threads = threads
    scene.render.resolution_x, scene.render.resolution_y = size, size // 2
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"
    cam = bpy.data.cameras.new("cam")
    cam.type = "PANO"
    cam.panorama_type = "EQUIRECTANGULAR"
    cam_obj = bpy.data.objects.new("cam", cam)
    scene.collection.objects.link(cam_obj)
    scene.camera = cam_obj
    info = _outdoor(bpy, scene, rng) if rng.random() < outdoor else _indoor(bpy, scene, rng)
    x, y = info.get("camera_xy", (0.0, 0.0))
    cam_obj.location = (x, y, info["camera_height"])
    cam_obj.rotation_euler = (math.pi / 2, 0.0, float(rng.uniform(0, 2 * math.pi)))
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    t0 = time.perf_counter()
    bpy.ops.render.render(write_still=False)
    path = out_dir / f"render_{seed:05d}.exr"
    tmp = out_dir / f".render_{seed:05d}.tmp.exr"
    bpy.data.images["Render Result"].save_render(str(tmp), scene=scene)
    tmp.replace(path)
    info.update(seed=seed, size=[size // 2, size], samples=samples, seconds=round(time.perf_counter() - t0, 2))
    (out_dir / f"render_{seed:05d}.json").write_text(json.dumps(info, indent=1))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "renders")
    ap.add_argument("--size", type=int, default=512, help="panorama width (height is half)")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--outdoor", type=float, default=0.6)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    done = 0
    for i in range(args.count):
        seed = args.seed + i
        if (args.out / f"render_{seed:05d}.exr").is_file():
            continue
        path = render_one(seed, args.out, args.size, args.samples, args.outdoor, args.threads)
        done += 1
        print(f"{path.name} ({(time.perf_counter() - t0) / done:.1f} s each)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
