"""Render the relighting scene with Cycles (CPU): lit by an equirectangular HDR map and/or a Sun lamp.

:func:`render` takes a linear map (float32 ``HxWx3``, top-down rows, 2:1) and/or a
:class:`Lamp` and returns the render as float32 ``HxWx3`` linear values, top-down rows. It
builds the scene of :mod:`.stage` in a new Blender scene and removes everything it created
afterwards, so it can run inside a Blender session without touching the user's file (the
user's own last render stays in "Render Result": renders are kept per scene). :func:`preview`
renders and composes the panels of ``ldr2hdr relight``; Blender's Relight Preview operator
calls it in-process, so this module imports only numpy-only parts of the package at the top
(Blender's Python has neither torch nor, in every build, OpenImageIO).

Run as ``python -m ldr2hdr.render.relight MAP.exr -o preview.png [...]`` it is the worker behind
``ldr2hdr relight`` (same arguments: :func:`ldr2hdr.inference.lighting.relight_command.add_arguments`).

Orientation (checked by rendering: ``tests/render/test_relight.py``): Blender's Environment
Texture (equirectangular, no mapping) shows the image's centre column along world +X, the
column at 3/4 of the width along -Y and the top row at +Z, so a map direction ``(x, y, z)`` of
:func:`ldr2hdr.inference.imaging.equirect_directions` (+Y up, centre column along -Z, the
column at 3/4 of the width along +X) is ``(-z, -x, y)`` in Blender's world axes (a rotation,
no mirroring). A light shines along its local -Z, so a Sun lamp's local +Z points at the sun.
A Sun lamp's strength is the irradiance (W/m^2) it gives a surface facing it, the unit of
:attr:`ldr2hdr.inference.lighting.sun.Sun.strength`.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    import bpy
except ImportError:  # reported by main(); `ldr2hdr relight` checks before starting this module
    bpy = None

# Numpy-only modules here (see the module docstring); the command's file handling (inference.io,
# inference.cli, which need OpenImageIO and torch) is imported where the command needs it.
from ..inference.errors import Ldr2HdrError, OutputExistsError
from ..inference.imaging import blender_world_direction
from ..inference.lighting import relight_command, sun as sun_mod
from . import stage

SPHERE_SEGMENTS = (64, 32)
MAX_BOUNCES = 4


@dataclass(frozen=True)
class Lamp:
    """A Sun lamp, in the map's conventions.

    Attributes:
        direction: unit vector towards the sun (``equirect_directions`` convention: +Y up,
            the map's centre column along -Z).
        strength: irradiance on a surface facing it (the map's units x sr; W/m^2 for a map in
            W m^-2 sr^-1): Blender's Sun strength at World strength 1.
        color: RGB, each channel in 0..1.
        angle_deg: angular diameter (degrees).
    """

    direction: tuple[float, float, float]
    strength: float
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    angle_deg: float = 0.53

    @classmethod
    def from_sun(cls, sun: sun_mod.Sun) -> "Lamp":
        return cls(tuple(sun.direction), sun.strength, tuple(sun.color), sun.angle_deg)


#: A map direction in Blender's world axes as the Environment Texture shows it.
map_direction_to_blender = blender_world_direction


def turned_to_blender(direction, rotation: float = 0.0) -> tuple[float, float, float]:
    """A map direction in Blender's world axes (:func:`map_direction_to_blender`) after the
    World's Mapping node turns the map by ``rotation`` (radians, its Rotation Z): the Mapping
    node turns the texture lookup by +rotation, so what the map shows turns by -rotation about
    Z (as the Extract Sun lamp's driver does)."""
    x, y, z = map_direction_to_blender(direction)
    c, s = math.cos(rotation), math.sin(rotation)
    return (c * x + s * y, -s * x + c * y, z)


# --------------------------------------------------------------------------- building the scene

def _require_bpy():
    if bpy is None:
        raise Ldr2HdrError(relight_command.BPY_MISSING)


class _Scene:
    """The scene of :mod:`.stage` in a new Blender scene; :meth:`remove` deletes every datablock
    it made."""

    def __init__(self):
        self.made = []
        self.scene = None

    def build(self, width: int, samples: int, denoise: bool, engine: str = "cycles") -> None:
        self.scene = self._keep(bpy.data.scenes.new("ldr2hdr relight"))
        height, width = stage.panel_shape(width)
        self._render_settings(width, height, samples, denoise)
        if engine == "eevee":
            self.scene.render.engine = "BLENDER_EEVEE"
            self.scene.eevee.taa_render_samples = samples
            self.scene.eevee.use_shadows = True
        self._camera()
        self._add_mesh("ldr2hdr ground", self._ground_mesh(), (0.0, 0.0, 0.0),
                       self._material("ldr2hdr ground", diffuse=stage.GROUND_ALBEDO))
        self._add_mesh("ldr2hdr diffuse sphere", self._sphere_mesh(), stage.DIFFUSE_CENTRE,
                       self._material("ldr2hdr diffuse", diffuse=stage.DIFFUSE_ALBEDO))
        self._add_mesh("ldr2hdr glossy sphere", self._sphere_mesh(), stage.GLOSSY_CENTRE,
                       self._material("ldr2hdr glossy", metal=stage.GLOSSY_COLOR))

    def _keep(self, datablock):
        self.made.append(datablock)
        return datablock

    def _render_settings(self, width: int, height: int, samples: int, denoise: bool) -> None:
        scene = self.scene
        render = scene.render
        render.engine = "CYCLES"
        render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
        render.film_transparent = False
        render.use_file_extension = True
        cycles = scene.cycles
        cycles.device = "CPU"
        cycles.samples = samples
        cycles.use_adaptive_sampling = False  # same noise level in every panel
        cycles.use_denoising = bool(denoise)
        cycles.seed = 0
        cycles.max_bounces = MAX_BOUNCES
        cycles.diffuse_bounces = 2
        cycles.glossy_bounces = 2
        cycles.transmission_bounces = 0
        cycles.volume_bounces = 0
        cycles.transparent_max_bounces = 0
        cycles.caustics_reflective = False
        cycles.caustics_refractive = False
        # The default indirect clamp (10) is in absolute units: it would darken maps in W/m^2/sr
        # and not maps in relative units. No clamp keeps every map's light unbiased.
        cycles.sample_clamp_direct = 0.0
        cycles.sample_clamp_indirect = 0.0
        view = scene.view_settings
        view.view_transform, view.look, view.exposure, view.gamma = "Standard", "None", 0.0, 1.0
        fmt = render.image_settings
        if hasattr(fmt, "media_type"):  # 5.0: the media type comes before the file format
            fmt.media_type = "IMAGE"
        fmt.file_format = "OPEN_EXR"
        fmt.color_depth = "32"
        fmt.exr_codec = "ZIP"

    def _camera(self) -> None:
        from mathutils import Matrix

        data = self._keep(bpy.data.cameras.new("ldr2hdr camera"))
        data.lens, data.sensor_width, data.sensor_fit = stage.LENS_MM, stage.SENSOR_MM, "HORIZONTAL"
        data.clip_start, data.clip_end = 0.05, 4.0 * stage.GROUND_HALF_SIZE
        obj = self._keep(bpy.data.objects.new("ldr2hdr camera", data))
        axes, loc = stage.camera_axes(), stage.CAMERA_LOCATION
        obj.matrix_world = Matrix([[*map(float, axes[i]), float(loc[i])] for i in range(3)] + [[0.0, 0.0, 0.0, 1.0]])
        self.scene.collection.objects.link(obj)
        self.scene.camera = obj

    def _material(self, name: str, *, diffuse: float | None = None, metal: float | None = None):
        mat = self._keep(bpy.data.materials.new(name))
        if bpy.app.version < (5, 0, 0):
            mat.use_nodes = True
        tree = mat.node_tree
        output = next(n for n in tree.nodes if n.bl_idname == "ShaderNodeOutputMaterial")
        for node in [n for n in tree.nodes if n != output]:
            tree.nodes.remove(node)
        if diffuse is not None:
            bsdf = tree.nodes.new("ShaderNodeBsdfDiffuse")  # Lambertian: roughness 0
            bsdf.inputs["Color"].default_value = (diffuse, diffuse, diffuse, 1.0)
        else:
            bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
            bsdf.inputs["Base Color"].default_value = (metal, metal, metal, 1.0)
            bsdf.inputs["Metallic"].default_value = 1.0
            bsdf.inputs["Roughness"].default_value = stage.GLOSSY_ROUGHNESS
        tree.links.new(bsdf.outputs[0], output.inputs["Surface"])
        return mat

    def _sphere_mesh(self):
        import bmesh

        mesh = self._keep(bpy.data.meshes.new("ldr2hdr sphere"))
        bm = bmesh.new()
        try:
            bmesh.ops.create_uvsphere(bm, u_segments=SPHERE_SEGMENTS[0], v_segments=SPHERE_SEGMENTS[1],
                                      radius=stage.RADIUS)
            bm.to_mesh(mesh)
        finally:
            bm.free()
        mesh.shade_smooth()
        return mesh

    def _ground_mesh(self):
        s = stage.GROUND_HALF_SIZE
        mesh = self._keep(bpy.data.meshes.new("ldr2hdr ground"))
        mesh.from_pydata([(-s, -s, 0.0), (s, -s, 0.0), (s, s, 0.0), (-s, s, 0.0)], [], [(0, 1, 2, 3)])
        return mesh

    def _add_mesh(self, name, mesh, location, material) -> None:
        mesh.materials.append(material)
        obj = self._keep(bpy.data.objects.new(name, mesh))
        obj.location = tuple(float(c) for c in location)
        self.scene.collection.objects.link(obj)

    def set_world(self, world_map: np.ndarray | None, rotation: float = 0.0, strength: float = 1.0) -> None:
        world = self._keep(bpy.data.worlds.new("ldr2hdr world"))
        if bpy.app.version < (5, 0, 0):
            world.use_nodes = True
        tree = world.node_tree
        background = next(n for n in tree.nodes if n.bl_idname == "ShaderNodeBackground")
        background.inputs["Strength"].default_value = float(strength)
        if world_map is None:
            background.inputs["Color"].default_value = (0.0, 0.0, 0.0, 1.0)
        else:
            h, w = world_map.shape[:2]
            image = self._keep(bpy.data.images.new("ldr2hdr map", w, h, alpha=True, float_buffer=True))
            image.colorspace_settings.name = "Linear Rec.709"  # before the pixels: a change regenerates them
            rgba = np.ones((h, w, 4), np.float32)
            rgba[..., :3] = world_map[::-1, :, :3]  # Blender's rows run bottom-up
            image.pixels.foreach_set(rgba.ravel())
            texture = tree.nodes.new("ShaderNodeTexEnvironment")
            texture.image = image
            texture.projection = "EQUIRECTANGULAR"
            tree.links.new(texture.outputs["Color"], background.inputs["Color"])
            if rotation:  # as Set World Lighting turns it: Generated coordinates -> Mapping (Z)
                coords = tree.nodes.new("ShaderNodeTexCoord")
                mapping = tree.nodes.new("ShaderNodeMapping")
                mapping.inputs["Rotation"].default_value[2] = float(rotation)
                tree.links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
                tree.links.new(mapping.outputs["Vector"], texture.inputs["Vector"])
        self.scene.world = world

    def set_lamp(self, lamp: Lamp, rotation: float = 0.0, strength: float = 1.0) -> None:
        from mathutils import Vector

        light = self._keep(bpy.data.lights.new("ldr2hdr sun", "SUN"))
        light.energy = float(lamp.strength) * float(strength)
        light.color = tuple(float(c) for c in lamp.color)
        light.angle = math.radians(lamp.angle_deg)
        obj = self._keep(bpy.data.objects.new("ldr2hdr sun", light))
        obj.location = (0.0, 0.0, 5.0)
        obj.rotation_mode = "QUATERNION"
        # a light shines along its local -Z: its +Z points at the sun
        obj.rotation_quaternion = Vector(turned_to_blender(lamp.direction, rotation)).to_track_quat("Z", "Y")
        self.scene.collection.objects.link(obj)

    def render(self) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="ldr2hdr-relight-") as folder:
            self.scene.render.filepath = str(Path(folder) / "render")
            had_render_result = any(image.type == "RENDER_RESULT" for image in bpy.data.images)
            try:
                bpy.ops.render.render(write_still=True, scene=self.scene.name)
            finally:
                if not had_render_result:  # the render made Blender's "Render Result" image: not ours to leave
                    for image in [i for i in bpy.data.images if i.type == "RENDER_RESULT"]:
                        bpy.data.images.remove(image)
            written = sorted(Path(folder).glob("render*.exr"))
            if len(written) != 1:
                raise Ldr2HdrError(f"Blender wrote no render (found {[p.name for p in written]})")
            return _read_render(written[0])

    def remove(self) -> None:
        collections = {
            bpy.types.Scene: bpy.data.scenes, bpy.types.Object: bpy.data.objects, bpy.types.Mesh: bpy.data.meshes,
            bpy.types.Material: bpy.data.materials, bpy.types.Camera: bpy.data.cameras,
            bpy.types.Light: bpy.data.lights, bpy.types.World: bpy.data.worlds, bpy.types.Image: bpy.data.images,
        }
        for datablock in reversed(self.made):  # objects before their data, the scene last
            for kind, collection in collections.items():
                if isinstance(datablock, kind):
                    collection.remove(datablock)
                    break
        self.made = []


def _read_render(path: Path) -> np.ndarray:
    """The EXR Cycles wrote, as float32 ``HxWx3`` top-down, read by Blender itself (OpenImageIO's
    Python module is not part of every Blender)."""
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        image.colorspace_settings.name = "Non-Color"  # the values as written, no conversion
        count = len(image.pixels)  # decodes the file
        width, height = image.size[:]
        channels = image.channels
        if count == 0 or count != width * height * channels:
            raise Ldr2HdrError(f"cannot read Blender's render {path.name}")
        buffer = np.empty(width * height * channels, np.float32)
        image.pixels.foreach_get(buffer)
    finally:
        bpy.data.images.remove(image)
    return np.ascontiguousarray(buffer.reshape(height, width, channels)[::-1, :, :3])


def render(world_map: np.ndarray | None, lamp: Lamp | None = None, *, width: int = relight_command.DEFAULT_SIZE,
           samples: int = relight_command.DEFAULT_SAMPLES, denoise: bool = False, rotation: float = 0.0,
           strength: float = 1.0, engine: str = "cycles") -> np.ndarray:
    """Render the :mod:`.stage` scene lit by ``world_map`` and/or ``lamp`` with Cycles on the CPU
    (or EEVEE: ``engine="eevee"``, slow without a GPU; ``training/check_eevee_sun.py``).

    Args:
        world_map: linear equirectangular map, float ``HxWx3`` (2:1, top-down rows), as the
            World at strength 1; ``None`` for a black world.
        lamp: a Sun lamp added to the scene, or ``None``.
        width: image width in pixels (height ``stage.panel_shape(width)[0]``).
        samples: Cycles samples per pixel (fixed: no adaptive sampling).
        denoise: run Cycles' denoiser.
        rotation, strength: the World's Mapping Rotation Z (radians) and Background strength
            (Set World Lighting's): the map turns, the lamp turns with it, and both scale.

    Returns:
        float32 ``HxWx3`` linear render (Standard view, no exposure), top-down rows.

    Raises:
        Ldr2HdrError: bpy is not available, or Blender wrote no readable render.
    """
    _require_bpy()
    built = _Scene()
    try:
        if engine not in ("cycles", "eevee"):
            raise ValueError(f"engine must be 'cycles' or 'eevee', not {engine!r}")
        built.build(width, samples, denoise, engine)
        built.set_world(None if world_map is None else np.asarray(world_map, np.float32), rotation, strength)
        if lamp is not None:
            built.set_lamp(lamp, rotation, strength)
        return built.render()
    finally:
        built.remove()


# --------------------------------------------------------------------------- the command

@contextlib.contextmanager
def _quiet_native_output():
    """Send what Blender and Cycles print on the process's stdout/stderr (progress, device
    warnings) to a temporary file; it is shown only when the block fails."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            log.seek(0)
            tail = log.read()[-4000:].decode(errors="replace").strip()
            if tail:
                print(tail, file=sys.stderr)
            raise
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def check_map(pixels: np.ndarray, what: str = "map", source=None) -> np.ndarray:
    """``pixels`` as float32 ``HxWx3`` when they are an equirectangular (2:1, at least 8 rows) map.

    Raises:
        Ldr2HdrError: not ``HxWx3`` or not 2:1 (naming ``source``, a path or an image name).
    """
    pixels = np.asarray(pixels, np.float32)
    if pixels.ndim != 3 or pixels.shape[2] < 3:
        raise Ldr2HdrError(f"not an RGB {what}: shape {pixels.shape}", source)
    h, w = pixels.shape[:2]
    if h < 8 or abs(w - 2 * h) > max(1, round(0.01 * w)):
        raise Ldr2HdrError(f"not an equirectangular {what}: {w}x{h} is not 2:1", source)
    return pixels[..., :3]


def _read_map(path: str, what: str) -> np.ndarray:
    from ..inference import io

    img = io.read_image(path)
    if not img.is_hdr:
        raise Ldr2HdrError(f"not an HDR map ({img.bits}-bit {img.format} image): relight needs a linear "
                           ".exr or .hdr (run 'ldr2hdr reconstruct' on a photo first)", path)
    return check_map(img.pixels, what, path)


def _check_output(path: Path, overwrite: bool) -> None:
    if path.suffix.lower() != ".png":
        raise Ldr2HdrError("the preview is written as PNG: name it .png", path)
    if path.is_dir():
        raise Ldr2HdrError("is a folder, cannot write an image there", path)
    if not path.parent.is_dir():
        raise Ldr2HdrError(f"output folder does not exist: {path.parent}", path)
    if path.exists() and not overwrite:
        raise OutputExistsError("output file exists (use --overwrite to replace it)", path)


def _shadow_direction(extraction: sun_mod.Extraction, rotation: float = 0.0):
    """Blender direction of the light whose shadow is measured: the sun, else the brightest
    compact light; None when there is neither."""
    light = extraction.sun or extraction.candidate
    return None if light is None else turned_to_blender(light.direction, rotation)


def _measure(image: np.ndarray, direction) -> tuple[float, str]:
    mean = stage.sphere_mean(image, stage.DIFFUSE)
    if direction is None:
        return mean, "shadow edge n/a (no compact light)"
    edge = stage.shadow_edge(image, direction)
    if edge.width_px is None:
        return mean, f"shadow edge n/a ({edge.note})"
    return mean, f"shadow edge {edge.width_px:.1f} px ({edge.note}, contrast {100 * edge.contrast:.0f} %)"


@dataclass(frozen=True)
class Panel:
    """One rendered (or skipped) panel of a preview.

    Attributes:
        label: the short text drawn on it ("map", "map - sun + lamp", "no sun", "reference").
        image: the linear render, float32 ``HxWx3`` top-down; None when it was not rendered.
        line: what was measured on it (or why it was not rendered), as printed by the command.
        seconds: render time.
    """

    label: str
    image: np.ndarray | None
    line: str
    seconds: float = 0.0


@dataclass(frozen=True)
class Preview:
    """The panels side by side: ``image`` holds display values (sRGB-encoded, ``HxWx3`` in
    [0, 1], top-down), all panels at the linear exposure ``gain`` chosen on the first."""

    image: np.ndarray
    panels: list[Panel]
    gain: float


def preview(hdr: np.ndarray, found: sun_mod.Extraction, *, name: str = "map", extract_sun: bool = False,
            reference: np.ndarray | None = None, found_ref: sun_mod.Extraction | None = None,
            reference_name: str = "reference", width: int = relight_command.DEFAULT_SIZE,
            samples: int = relight_command.DEFAULT_SAMPLES, denoise: bool = False, rotation: float = 0.0,
            strength: float = 1.0, log=None, isolate=contextlib.nullcontext) -> Preview:
    """Render the panels of ``ldr2hdr relight`` (and of Blender's Relight Preview) and compose them.

    Args:
        hdr: the linear 2:1 map (:func:`check_map`), as the World at strength 1.
        found: :func:`ldr2hdr.inference.lighting.sun.extract_sun` of ``hdr``.
        name: how lines name the map.
        extract_sun: add the panel lit by the map without its sun plus the Sun lamp made from it
            (a dark "no sun" placeholder when ``found`` has no sun).
        reference, found_ref, reference_name: a reference map, its extraction and its name: adds
            a panel lit by it.
        width, samples, denoise: :func:`render`'s.
        rotation, strength: the World's turn (radians) and strength, as :func:`render` takes
            them, for every panel (the reference too: it shows the same place).
        log: called with each line as it comes (the sun's verdict, then one line per panel).
        isolate: a context manager each render runs in (the command hides Cycles' output).

    Raises:
        Ldr2HdrError: bpy is missing, or Blender wrote no readable render.
    """
    log = log or (lambda line: None)
    log(f"{name}: {found.reason}")
    if rotation or strength != 1.0:
        log(f"World: turned {math.degrees(rotation):.4g} deg about the vertical, strength {strength:.4g}")
    if reference is not None and found_ref is not None:
        log(f"{reference_name} (reference): {found_ref.reason}")

    height, panel_width = stage.panel_shape(width)
    # (label, map, lamp, shadow direction, description) per panel; None map and lamp: a placeholder
    plans = [("map", hdr, None, _shadow_direction(found, rotation), "map")]
    if extract_sun:
        if found.sun is not None:
            lamp = Lamp.from_sun(found.sun)
            plans.append(("map - sun + lamp", found.without_sun, lamp, turned_to_blender(lamp.direction, rotation),
                          f"map without sun + Sun lamp (strength {lamp.strength * strength:.4g}, "
                          f"{lamp.angle_deg:.2f} deg across)"))
        else:
            plans.append(("no sun", None, None, None, "map without sun + Sun lamp"))
    if reference is not None:
        direction = None if found_ref is None else _shadow_direction(found_ref, rotation)
        plans.append(("reference", reference, None, direction, f"reference {reference_name}"))

    panels = []
    for index, (text, world_map, lamp, direction, description) in enumerate(plans, start=1):
        if world_map is None and lamp is None:
            line = f"panel {index} {description}: not rendered: {found.reason}"
            panels.append(Panel(text, None, line))
            log(line)
            continue
        start = time.perf_counter()
        with isolate():
            image = render(world_map, lamp, width=width, samples=samples, denoise=denoise, rotation=rotation,
                           strength=strength)
        seconds = time.perf_counter() - start
        mean, edge = _measure(image, direction)
        line = (f"panel {index} {description}: diffuse sphere mean {mean:.4g} (linear), {edge}, "
                f"rendered in {seconds:.1f} s")
        panels.append(Panel(text, image, line, seconds))
        log(line)

    gain = stage.exposure_for(panels[0].image)
    composed = stage.compose([p.image for p in panels], [p.label for p in panels], gain, (height, panel_width))
    return Preview(composed, panels, gain)


def run(args: argparse.Namespace) -> int:
    """The work of ``ldr2hdr relight``: validate, render the panels, print the numbers, write the PNG."""
    from ..inference import io
    from ..inference.lighting.command import listed_sources

    output = Path(args.output)
    _check_output(output, args.overwrite)
    hdr = _read_map(args.map, "map")
    reference = None if args.reference is None else _read_map(args.reference, "reference map")
    try:
        found = sun_mod.extract_sun(hdr, sources=listed_sources(Path(args.map)))
        found_ref = None if reference is None else sun_mod.extract_sun(reference)
    except Ldr2HdrError as exc:
        raise Ldr2HdrError(exc.reason, args.map) from None
    result = preview(hdr, found, name=Path(args.map).name, extract_sun=args.extract_sun, reference=reference,
                     found_ref=found_ref, reference_name=Path(args.reference).name if args.reference else "reference",
                     width=args.size, samples=args.samples, denoise=args.denoise,
                     rotation=math.radians(args.rotation), strength=args.strength, log=print,
                     isolate=_quiet_native_output)
    io.write_png(output, result.image, overwrite=args.overwrite)
    print(f"wrote {output} ({result.image.shape[1]}x{result.image.shape[0]}, {len(result.panels)} panels, "
          f"exposure x{result.gain:.4g} from panel 1 for all)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ldr2hdr relight", description=relight_command.DESCRIPTION)
    relight_command.add_arguments(parser)
    args = parser.parse_args(argv)
    if bpy is None:
        print(f"ldr2hdr: error: {relight_command.BPY_MISSING}", file=sys.stderr)
        return 2
    from ..inference.cli import report_errors

    return report_errors(lambda: run(args), out_of_memory=args.map)


if __name__ == "__main__":
    sys.exit(main())
