"""``ldr2hdr.extract_sun``: replace the sun of the World's HDR map by a Sun lamp.

A sun that is a few very bright pixels of the environment gives soft, noisy shadows; a Sun
lamp gives sharp, clean ones. The map's sun is measured and removed by
:func:`..inference.lighting.sun.extract_sun`; here its light goes to a Sun lamp
("ldr2hdr Sun") and the World shows "<image> (no sun)", so map + lamp light the scene as the
map alone did. Drivers keep the lamp on the map's sun when the World's rotation or strength
changes.

Re-runs start again from the original map (recorded on the "(no sun)" image), so the sun is
never removed twice, and they update the same lamp and image. A map without a sun changes
nothing: the operator reports why and returns ``CANCELLED`` (so no undo step is added).
"""

import json
import math

import bpy
from bpy.props import StringProperty

from ..inference.errors import Ldr2HdrError
from ..nodes import world
from . import images

STEP = "extract-sun"
#: On the "(no sun)" image: the image it was made from (an ID pointer, which also keeps that
#: image in the saved file although no node shows it any more).
SOURCE_IMAGE = "ldr2hdr_sun_source"


def original_image(image):
    """The map ``image`` was made from when it is an earlier "(no sun)" result, else ``image``.

    Raises:
        Ldr2HdrError: ``image`` is a "(no sun)" result whose original is gone.
    """
    if image.get(images.TAG_STEP) != STEP:
        return image
    source = image.get(SOURCE_IMAGE)
    if not isinstance(source, bpy.types.Image):
        raise Ldr2HdrError(f"{image.name!r} is a map without its sun, and the map it came from is gone")
    return source


def _result_of(source):
    for image in bpy.data.images:
        if image.get(images.TAG_STEP) == STEP and image.get(SOURCE_IMAGE) == source:
            return image
    return None


def measure_sun(image):
    """Find the sun of ``image`` (or of the map it was made from); changes nothing.

    Returns:
        ``(source, extraction)``: the image read and the core's :class:`Extraction`.

    Raises:
        Ldr2HdrError: no pixels, not a 2:1 panorama, non-finite values, a lost original.
    """
    source = original_image(image)
    return source, extract_sun_from_pixels(images.image_pixels(source), listed_sources(source))


def listed_sources(image):
    """The light sources Reconstruct HDR listed on ``image`` (custom property), or None."""
    try:
        sources = json.loads(image.get("ldr2hdr_sources") or "null")
    except (TypeError, ValueError):
        return None
    return sources if isinstance(sources, list) else None


def extract_sun_from_pixels(pixels, sources=None):
    # Imported on first use, so registering the add-on loads none of the inference package
    # (the core is numpy only: it runs in Blender's own Python, which has no torch).
    try:
        from ..inference.lighting.sun import extract_sun
    except ImportError as exc:
        raise Ldr2HdrError(f"the sun extraction cannot be loaded in Blender's Python ({exc})") from None
    return extract_sun(pixels, sources=sources)


def apply_sun(scene, source, extraction):
    """Light ``scene`` with the measured sun as a lamp and the map without it.

    The World's environment shows "<source> (no sun)" (a packed float image, replaced on
    re-runs) with its strength and rotation kept, and the scene's Sun lamp is created or
    updated. Returns the lamp object.
    """
    sun = extraction.sun
    result = images.store_image(f"{source.name} (no sun)", extraction.without_sun, previous=_result_of(source),
                                tags={images.TAG_STEP: STEP, images.TAG_SOURCE: source.name,
                                      SOURCE_IMAGE: source})
    scene_world = world.set_environment_image(scene, result)
    return world.set_sun_lamp(scene, scene_world, sun.direction, sun.strength, sun.color,
                              math.radians(sun.angle_deg), map_image=result, record=json.dumps(sun.to_dict()))


def source_of_world(scene):
    """The map the scene's World shows through ldr2hdr's chain (its original when sunless).

    Raises:
        Ldr2HdrError: the World has no ldr2hdr environment image.
    """
    env = world.environment_node(scene.world)
    if env is None or env.image is None:
        raise Ldr2HdrError("the World has no ldr2hdr environment image: run Set World Lighting first, "
                           "or pass image=\"<image name>\"")
    return original_image(env.image)


def describe(sun, lamp):
    return (f"{lamp.name}: strength {lamp.data.energy:.4g} W/m\u00b2, {sun.angle_deg:.2f}\u00b0 across, "
            f"elevation {sun.elevation_deg:.1f}\u00b0, {100 * sun.share:.0f} % of the light facing it")


class LDR2HDR_OT_extract_sun(bpy.types.Operator):
    """Replace the sun of the World's HDR map by a Sun lamp (sharp shadows, less noise) and
show the map without it. Source: the World's environment image, or the image named by image="""

    bl_idname = "ldr2hdr.extract_sun"
    bl_label = "Extract Sun"
    bl_options = {"REGISTER", "UNDO"}

    image: StringProperty(name="Image", description="Name of the HDR map (default: the World's environment image)",
                          default="")

    def execute(self, context):
        scene = context.scene
        if scene is None:
            self.report({"ERROR"}, f"{self.bl_label}: no scene")
            return {"CANCELLED"}
        try:
            source, extraction = measure_sun(self._source_image(scene))
        except Ldr2HdrError as exc:
            self.report({"ERROR"}, f"{self.bl_label}: {exc}")
            return {"CANCELLED"}
        if extraction.sun is None:
            self.report({"WARNING"}, f"{self.bl_label}: {source.name}: {extraction.reason}; nothing changed")
            return {"CANCELLED"}
        lamp = apply_sun(scene, source, extraction)
        if not images.has_linear_pixels(source):
            self.report({"WARNING"}, f"{self.bl_label}: {source.name} is an LDR image, so its sun is clipped and "
                                     "the lamp too weak; run Reconstruct HDR first")
        self.report({"INFO"}, f"{self.bl_label}: {describe(extraction.sun, lamp)}")
        return {"FINISHED"}

    def _source_image(self, scene):
        if not self.image:
            return source_of_world(scene)
        return images.named_image(self.image)
